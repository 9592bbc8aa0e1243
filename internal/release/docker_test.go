package release

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction: its keyword in upper case and
// the rest of the line, continuations joined.
type instruction struct{ cmd, args string }

// stage is one FROM ... AS name block of a Dockerfile.
type stage struct {
	name, base string
	index      int
	body       []instruction
}

// dockerStages parses a Dockerfile into its stages by name (an unnamed
// stage is named by its index), enough to check what each image runs as.
func dockerStages(t *testing.T, path string) map[string]*stage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stages := map[string]*stage{}
	var cur *stage
	var line strings.Builder
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if line.Len() == 0 && (l == "" || strings.HasPrefix(l, "#")) {
			continue
		}
		if c, ok := strings.CutSuffix(l, "\\"); ok {
			line.WriteString(c + " ")
			continue
		}
		line.WriteString(l)
		cmd, args, _ := strings.Cut(line.String(), " ")
		line.Reset()
		in := instruction{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			var rest []string
			for _, w := range f {
				if !strings.HasPrefix(w, "--") {
					rest = append(rest, w)
				}
			}
			cur = &stage{base: rest[0], index: n, name: strconv.Itoa(n)}
			if len(rest) == 3 && strings.EqualFold(rest[1], "AS") {
				cur.name = rest[2]
			}
			stages[cur.name] = cur
			n++
			continue
		}
		if cur == nil {
			if in.cmd != "ARG" {
				t.Fatalf("%s: %s before the first FROM", path, in.cmd)
			}
			continue
		}
		cur.body = append(cur.body, in)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stages
}

func (s *stage) last(cmd string) (string, bool) {
	for i := len(s.body) - 1; i >= 0; i-- {
		if s.body[i].cmd == cmd {
			return s.body[i].args, true
		}
	}
	return "", false
}

// GitHub runs a Docker action as root and documents that its image must not
// set USER; the server image runs unprivileged and is the default target.
func TestDockerfileImages(t *testing.T) {
	stages := dockerStages(t, filepath.Join(root(t), "Dockerfile"))
	act, ok := stages["action"]
	if !ok {
		t.Fatalf("no stage named action in the Dockerfile: %v", stages)
	}
	if u, ok := act.last("USER"); ok {
		t.Errorf("the action stage sets USER %s: GitHub requires Docker actions to run as root", u)
	}
	if ep, _ := act.last("ENTRYPOINT"); !strings.Contains(ep, "/tern") {
		t.Errorf("the action stage's ENTRYPOINT %q is not tern (action.yml passes the command as the first argument)", ep)
	}
	var final *stage
	for _, s := range stages {
		if final == nil || s.index > final.index {
			final = s
		}
	}
	if final.name != "server" {
		t.Errorf("the last stage (docker build's default) is %q, want server", final.name)
	}
	u, ok := final.last("USER")
	if !ok || u == "" || regexp.MustCompile(`^(root|0)(:|$)`).MatchString(u) {
		t.Errorf("the server stage's USER is %q (set %v), want a non-root user", u, ok)
	}
	if ep, _ := final.last("ENTRYPOINT"); !strings.Contains(ep, "/tern") {
		t.Errorf("the server stage's ENTRYPOINT %q is not tern", ep)
	}
}

// dockerIgnored reports whether Docker leaves path (slash-separated,
// relative to the context) out of the build context under patterns: a
// pattern matches the path or one of its parent directories; `**` matches
// any number of directories.
func dockerIgnored(patterns []string, path string) bool {
	parts := strings.Split(path, "/")
	for _, p := range patterns {
		re := regexp.MustCompile("^" + globRegexp(strings.TrimPrefix(filepath.ToSlash(filepath.Clean(p)), "/")) + "$")
		for i := 1; i <= len(parts); i++ {
			if re.MatchString(strings.Join(parts[:i], "/")) {
				return true
			}
		}
	}
	return false
}

func globRegexp(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case strings.HasPrefix(p[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(p[i:], "**"):
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	return b.String()
}

func TestDockerIgnoredPatterns(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		want          bool
	}{
		{".git", ".git/HEAD", true},
		{"**/*_test.go", "bot/bot_test.go", true},
		{"**/*_test.go", "bot_test.go", true},
		{"**/testdata", "report/testdata/x.golden", true},
		{"*.md", "README.md", true},
		{"*.md", "docs/x.md", false},
		{"e2e", "e2e/doc.go", true},
		{"e2e", "bot/e2e.go", false},
	} {
		if got := dockerIgnored([]string{tc.pattern}, tc.path); got != tc.want {
			t.Errorf("%q on %q: %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
}

// .dockerignore keeps the build context small (no .git, no tests) and
// never leaves out a file `go build ./cmd/tern` needs: go.mod, go.sum and
// every Go or embedded file of the module's packages the binary imports.
func TestDockerignore(t *testing.T) {
	dir := root(t)
	b, err := os.ReadFile(filepath.Join(dir, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "!") {
			t.Fatalf(".dockerignore: exceptions (%s) are not understood by this test", l)
		}
		patterns = append(patterns, l)
	}
	for _, p := range []string{".git/config", "internal/release/docker_test.go"} {
		if !dockerIgnored(patterns, p) {
			t.Errorf(".dockerignore sends %s to the build context", p)
		}
	}
	cmd := exec.Command("go", "list", "-deps", "-f", `{{if .Module}}{{if .Module.Main}}{{.Dir}}|{{join .GoFiles ","}}|{{join .EmbedFiles ","}}{{end}}{{end}}`, "./cmd/tern")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	need := []string{"go.mod", "go.sum"}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(l, "|")
		if len(f) != 3 {
			continue
		}
		rel, err := filepath.Rel(dir, f[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range append(strings.Split(f[1], ","), strings.Split(f[2], ",")...) {
			if g != "" {
				need = append(need, filepath.ToSlash(filepath.Join(rel, g)))
			}
		}
	}
	if len(need) < 10 {
		t.Fatalf("go list found only %v", need)
	}
	for _, p := range need {
		if dockerIgnored(patterns, p) {
			t.Errorf(".dockerignore leaves out %s, which the build needs", p)
		}
	}
}
