package plan

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/internal/testdb"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestLintGolden plans small changes under lint policies and compares the
// findings, check by check, with testdata/lint.golden (go test ./plan
// -run TestLintGolden -update rewrites it).
func TestLintGolden(t *testing.T) {
	const pk = "CREATE TABLE keep (id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY);\n"
	cases := []struct {
		name          string
		live, desired string
		rows          []string
		policy        config.Lint
	}{
		{
			name:    "defaults: the changes that lose data are unsafe",
			live:    pk + "CREATE TABLE gone (id int unsigned NOT NULL PRIMARY KEY);\nCREATE TABLE t (id int unsigned NOT NULL PRIMARY KEY, a varchar(20), b int, code varchar(10), UNIQUE KEY uk (code), KEY ix_b (b)) ENGINE=InnoDB;",
			desired: pk + "CREATE TABLE t (id int unsigned NOT NULL PRIMARY KEY, a varchar(10) NOT NULL, code varchar(10)) ENGINE=InnoDB;",
		},
		{
			name:    "a new table without a primary key, with a signed auto-increment, a long index and another charset",
			live:    pk,
			desired: pk + "CREATE TABLE logs (n int NOT NULL AUTO_INCREMENT, msg varchar(255) NOT NULL, note varchar(100) CHARACTER SET latin1, KEY (n), KEY ix_msg (msg), KEY ix_short (msg(100))) DEFAULT CHARSET=utf8mb4;\nCREATE TABLE legacy (id int unsigned NOT NULL PRIMARY KEY) DEFAULT CHARSET=latin1;",
		},
		{
			name:    "a NOT NULL column without a default on a table that holds rows",
			live:    pk + "CREATE TABLE t (id int unsigned NOT NULL PRIMARY KEY);\nCREATE TABLE empty_t (id int unsigned NOT NULL PRIMARY KEY);",
			rows:    []string{"INSERT INTO t VALUES (1)"},
			desired: pk + "CREATE TABLE t (id int unsigned NOT NULL PRIMARY KEY, b int NOT NULL);\nCREATE TABLE empty_t (id int unsigned NOT NULL PRIMARY KEY, b int NOT NULL);",
		},
		{
			name:    "an altered column and index are checked as new ones",
			live:    pk + "CREATE TABLE t (id int unsigned NOT NULL PRIMARY KEY, n int NOT NULL, s varchar(100), KEY ix_s (s));",
			desired: pk + "CREATE TABLE t (id int unsigned NOT NULL PRIMARY KEY, n int NOT NULL, s varchar(250), KEY ix_s (s), KEY ix_n (n, s));",
		},
		{
			name:    "policy: levels set by tern.yaml, a charset and a key length",
			live:    pk + "CREATE TABLE gone (id int unsigned NOT NULL PRIMARY KEY);\nCREATE TABLE t (id int unsigned NOT NULL PRIMARY KEY, b int);",
			desired: pk + "CREATE TABLE t (id int unsigned NOT NULL PRIMARY KEY);\nCREATE TABLE bare (n int, s varchar(200)) DEFAULT CHARSET=latin1;\nCREATE TABLE wide (id int unsigned NOT NULL PRIMARY KEY, s varchar(100), KEY (s)) DEFAULT CHARSET=utf8mb4;",
			policy: config.Lint{Checks: map[string]string{CheckDropTable: "off", CheckDropColumn: "warning", CheckNoPrimaryKey: "error"},
				Charset: "latin1", MaxIndexBytes: 300},
		},
	}
	ctx := context.Background()
	srv := testdb.Server(t)
	var b strings.Builder
	for _, c := range cases {
		live, _ := testdb.Open(t, "plan_lint")
		execAll(t, live, tableSQL(mustParse(t, c.live)))
		execAll(t, live, c.rows)
		d := mustParse(t, c.desired)
		d.Lint = c.policy
		pl, err := (&Planner{}).Plan(ctx, d, live, srv)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		fmt.Fprintf(&b, "== %s\n", c.name)
		for i, s := range pl.Statements {
			fmt.Fprintf(&b, "%d: %s\n", i+1, strings.Join(strings.Fields(s.DDL), " "))
		}
		for _, f := range pl.Findings {
			subject := f.Table
			if f.Column != "" {
				subject += "." + f.Column
			}
			if f.Index != "" {
				subject += " index " + f.Index
			}
			fmt.Fprintf(&b, "  %-7s %-24s %s @%d: %s\n", f.Severity, f.Check, subject, f.Statement+1, f.Message)
		}
		b.WriteString("\n")
	}
	golden(t, "lint", b.String())
}

// An unknown check id in tern.yaml's lint.checks fails the plan, naming
// the key and the known ids, before anything reaches a server.
func TestLintUnknownCheck(t *testing.T) {
	d := mustParse(t, "CREATE TABLE t (id int PRIMARY KEY);")
	d.Lint = config.Lint{Checks: map[string]string{"no-primary-keys": "error"}}
	_, err := (&Planner{}).Plan(context.Background(), d, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "tern.yaml: lint.checks.no-primary-keys: unknown check (known: drop-table,") {
		t.Errorf("err = %v", err)
	}
}

// Every check has a stable id, a default level and a one-line doc, and the
// README's config reference lists each id.
func TestLintChecksDocumented(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range LintChecks() {
		if seen[c.ID] || c.Doc == "" || (c.Level != config.LintError && c.Level != config.LintWarning) {
			t.Errorf("check %+v: duplicate id, no doc or a bad default level", c)
		}
		seen[c.ID] = true
		if !strings.Contains(string(readme), "| `"+c.ID+"` | "+c.Level+" | ") {
			t.Errorf("README.md's lint table lacks the row of %s (| `%s` | %s | ...)", c.ID, c.ID, c.Level)
		}
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./plan -run TestLintGolden -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got ---\n%s\n--- want ---\n%s", name, path, got, want)
	}
}

// A foreign key to a table that no schema file creates fails the plan
// with the file and the line of its REFERENCES, before anything reaches a
// server.
func TestMissingReferenceHasFileLine(t *testing.T) {
	d, err := Parse([]File{
		{Path: "db/shop/customers.sql", Data: []byte("CREATE TABLE customers (id int PRIMARY KEY);\n")},
		{Path: "db/shop/orders.sql", Data: []byte("-- orders\nCREATE TABLE orders (\n  id int PRIMARY KEY,\n  customer_id int,\n  item_id int,\n  FOREIGN KEY (customer_id) REFERENCES customers (id),\n  FOREIGN KEY (item_id) REFERENCES `items` (id)\n);\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = (&Planner{}).Plan(context.Background(), d, nil, nil)
	want := "db/shop/orders.sql:7: table `orders`: a foreign key references table `items`, which no schema file creates"
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}
