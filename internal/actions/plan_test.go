package actions

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ternhq/tern/plan"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func TestSplitArgs(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  --dir .  -d shop\n-e staging ", []string{"--dir", ".", "-d", "shop", "-e", "staging"}},
		{`--dir "my checkout" -e 'prod env'`, []string{"--dir", "my checkout", "-e", "prod env"}},
		{`--dsn 'u:p"w@tcp(h)/x' a\ b "say \"hi\" \n" ''`, []string{"--dsn", `u:p"w@tcp(h)/x`, "a b", `say "hi" \n`, ""}},
		{`$(id) ; rm -rf / | x`, []string{"$(id)", ";", "rm", "-rf", "/", "|", "x"}},
	} {
		got, err := SplitArgs(tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("SplitArgs(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{`"open`, `'open`, `trailing\`} {
		if _, err := SplitArgs(bad); err == nil {
			t.Errorf("SplitArgs(%q): want an error", bad)
		}
	}
}

func TestFailOn(t *testing.T) {
	changes := &plan.Plan{Statements: []plan.Statement{{Table: "t", Kind: plan.KindAlter, DDL: "ALTER TABLE `t` DROP COLUMN `b`"}}}
	unsafe := &plan.Plan{Statements: changes.Statements, Findings: []plan.Finding{{Severity: plan.SeverityError, Table: "t"}}}
	blocking := &plan.Plan{Statements: changes.Statements, Findings: []plan.Finding{{Severity: plan.SeverityBlocking, Table: "t"}}}
	warned := &plan.Plan{Statements: changes.Statements, Findings: []plan.Finding{{Severity: plan.SeverityWarning, Table: "t"}}}
	none := &plan.Plan{}
	for _, tt := range []struct {
		in    string
		p     *plan.Plan
		fails bool
	}{
		{"", unsafe, false}, {"never", unsafe, false},
		{"unsafe", unsafe, true}, {"unsafe", changes, false},
		// a statement that would block writes on a big table needs
		// --allow-blocking to apply: as unsafe as a lost column for a gate
		{"unsafe", blocking, true}, {"never", blocking, false}, {"unsafe", warned, false},
		{"changes", changes, true}, {"changes", none, false},
	} {
		f, err := ParseFailOn(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Fails(tt.p) != ""; got != tt.fails {
			t.Errorf("fail-on %q on %d statements, %d findings: fails %v, want %v", tt.in, len(tt.p.Statements), len(tt.p.Findings), got, tt.fails)
		}
	}
	if _, err := ParseFailOn("always"); err == nil || !strings.Contains(err.Error(), "unsafe, changes, never") {
		t.Errorf("ParseFailOn(always) = %v", err)
	}
}

// TestWritePlan: outputs and the step summary (testdata/plan_summary.golden,
// rewritten by go test ./internal/actions -update).
func TestWritePlan(t *testing.T) {
	p := &plan.Plan{Statements: []plan.Statement{
		{Table: "orders", Kind: plan.KindCreate, DDL: "CREATE TABLE `orders` (\n  `id` bigint unsigned NOT NULL,\n  PRIMARY KEY (`id`)\n)"},
		{Table: "users", Kind: plan.KindAlter, DDL: "ALTER TABLE `users` DROP COLUMN `legacy`"},
	}, Findings: []plan.Finding{{Check: plan.CheckDropColumn, Severity: plan.SeverityError, Table: "users", Column: "legacy", Statement: 1, Message: "drops column legacy: its data is lost"}}}
	var out bytes.Buffer
	a, outputs, summary := newAction(t, &out)
	WritePlan(a, "acme/shop, database shop, environment staging", p)
	gotOut := read(t, outputs)
	for k, v := range map[string]string{"changes": "true", "statements": "2", "unsafe": "1", "blocking": "0"} {
		if !strings.Contains(gotOut, k+"<<_GitHubActionsFileCommandDelimeter_\n"+v+"\n_GitHubActionsFileCommandDelimeter_\n") {
			t.Errorf("GITHUB_OUTPUT lacks %s=%s:\n%s", k, v, gotOut)
		}
	}
	got := read(t, summary)
	path := filepath.Join("testdata", "plan_summary.golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/actions -update)", err)
	}
	if got != string(want) {
		t.Errorf("step summary differs from %s:\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}
