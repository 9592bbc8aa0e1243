package hermetic

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// moduleRoot is the directory holding go.mod, two levels above this package.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod at %s: %v", root, err)
	}
	return root
}

// escapes reports why the string literal lit, written in a file in dir,
// names a path outside root, or "" when it does not.
func escapes(root, dir, lit string) string {
	for _, marker := range []string{"shared/fixtures", "shared/schemas", "shared/bench", "/work/"} {
		if strings.Contains(lit, marker) {
			return "names " + marker
		}
	}
	if !strings.Contains(lit, "..") || strings.ContainsAny(lit, " \n\t") {
		return ""
	}
	p := filepath.Clean(filepath.Join(dir, filepath.FromSlash(lit)))
	rel, err := filepath.Rel(root, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "resolves to " + p + ", outside the module"
	}
	return ""
}

func TestNoPathOutsideModule(t *testing.T) {
	root := moduleRoot(t)
	fset := token.NewFileSet()
	var bad []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "hermetic_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			if why := escapes(root, filepath.Dir(path), s); why != "" {
				bad = append(bad, fset.Position(lit.Pos()).String()+": "+strconv.Quote(s)+" "+why)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Errorf("%s: keep test inputs under testdata/ inside the module", b)
	}
}

func TestEscapes(t *testing.T) {
	root := filepath.FromSlash("/m")
	dir := filepath.Join(root, "plan")
	for _, tc := range []struct {
		lit  string
		want bool
	}{
		{"../testdata/schemas", false},
		{"../../shared/schemas", true},
		{"../..", true},
		{"testdata/x.golden", false},
		{"/work/shared/bench", true},
		{"a .. b", false},
	} {
		if got := escapes(root, dir, tc.lit) != ""; got != tc.want {
			t.Errorf("escapes(%q) = %v, want %v", tc.lit, got, tc.want)
		}
	}
}
