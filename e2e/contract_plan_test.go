package e2e

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

// Schema files are untrusted (CONTRACT §3): anything but plain CREATE
// TABLE, and SQL that does not parse, fails the plan with `file:line:
// reason` on a completed/failure `Plan failed` check, and nothing reaches
// the live schema.
func TestContractPlanRefusesUntrustedSchemaFiles(t *testing.T) {
	c := newContract(t, "  lease: 1m", "5s")
	cases := []struct {
		name, sql string
		line      int
	}{
		{"create select", "-- a copy\nCREATE TABLE t_sel AS SELECT * FROM users;\n", 2},
		{"create like", "\n\nCREATE TABLE t_like LIKE users;\n", 3},
		{"temporary", "CREATE TEMPORARY TABLE t_tmp (id INT PRIMARY KEY);\n", 1},
		{"data directory", "CREATE TABLE t_dd (id INT PRIMARY KEY) DATA DIRECTORY = '/tmp';\n", 1},
		{"index directory", "CREATE TABLE t_id (id INT PRIMARY KEY) ENGINE=MyISAM INDEX DIRECTORY = '/tmp';\n", 1},
		{"connect engine", "CREATE TABLE t_conn (id INT PRIMARY KEY) ENGINE=CONNECT TABLE_TYPE=MYSQL CONNECTION='mysql://root@127.0.0.1:3306/mysql/db';\n", 1},
		{"federated engine", "CREATE TABLE t_fed (id INT PRIMARY KEY) ENGINE=FEDERATED CONNECTION='mysql://root@127.0.0.1:3306/mysql/db';\n", 1},
		{"connect engine in a MariaDB executable comment", "CREATE TABLE t_exec (id INT PRIMARY KEY) /*M!100000 ENGINE=CONNECT TABLE_TYPE=MYSQL CONNECTION='mysql://root@127.0.0.1:3306/mysql/db' */;\n", 1},
		{"not a create table", "CREATE TABLE t_ok (id INT PRIMARY KEY);\n\nDROP TABLE users;\n", 3},
		{"insert", "CREATE TABLE t_ok2 (id INT PRIMARY KEY);\nINSERT INTO users (name) VALUES ('x');\n", 2},
		{"does not parse", "CREATE TABLE t_bad (\n  id INT PRIMARY KEY,\n  name VARCHAR(10) NOT NULL DEFALT 'x'\n);\n", 3},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, head := 100+i, sha(100+i)
			files := shopFiles(usersV1 + ";\n")
			files["db/shop/evil.sql"] = tc.sql
			c.openPR(n, head, files)
			run := c.waitCheck(head, "tern/shop/staging", "Plan failed")
			if run.GetStatus() != "completed" || run.GetConclusion() != "failure" {
				t.Errorf("plan failed run is %s/%s, want completed/failure", run.GetStatus(), run.GetConclusion())
			}
			where := fmt.Sprintf("db/shop/evil.sql:%d", tc.line)
			out := run.GetOutput()
			if s := out.GetTitle() + out.GetSummary() + out.GetText(); !strings.Contains(s, where) {
				t.Errorf("check does not say %q:\n%s", where, s)
			}
			planComment := c.botComments(n)
			if len(planComment) != 1 || !strings.Contains(planComment[0].GetBody(), where) {
				t.Errorf("plan comment does not say %q: %v", where, bodies(planComment))
			}
			if agg := c.check(head, "tern"); agg == nil || agg.GetConclusion() == "success" {
				t.Errorf("aggregate with a failed plan: %+v", agg)
			}
		})
	}
	var tables int
	if err := c.staging.QueryRow(`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 1 {
		t.Errorf("staging holds %d tables after the refused plans, want users alone", tables)
	}
}

// A target whose DSN carries a password that cannot connect: the plan of
// that environment fails, and the password appears in no comment, check
// run or log line (CONTRACT §6).
func TestContractNoPasswordInPlanFailure(t *testing.T) {
	const password = "Pw-e2e-contract-never-shown"
	c := newContractWith(t, "  lease: 1m", "5s", "shop_owner:"+password+"@tcp(127.0.0.1:3306)/shop_nowhere?timeout=2s")
	head := sha(200)
	c.openPR(20, head, shopFiles(usersV2))
	c.waitCheck(head, "tern/shop/staging", "Awaiting apply")
	c.waitCheck(head, "tern/shop/production", "")
	run := c.check(head, "tern/shop/production")
	if run.GetConclusion() == "success" {
		t.Errorf("production's plan on an unreachable target concluded success: %q", run.GetOutput().GetTitle())
	}
	var seen []string
	for _, r := range c.gh.CheckRuns(repoName, head) {
		o := r.GetOutput()
		seen = append(seen, o.GetTitle(), o.GetSummary(), o.GetText())
	}
	for _, cm := range c.gh.Comments(repoName, 20) {
		seen = append(seen, cm.GetBody())
	}
	seen = append(seen, c.srv.stdout.String(), c.srv.stderr.String())
	for _, s := range seen {
		if strings.Contains(s, password) {
			t.Fatalf("the target's password appeared in:\n%s", tail(s, 2000))
		}
	}
}

// Long DDL folds into <details> and no comment or check run output passes
// GitHub's limits (CONTRACT §6): 60 new tables of commented columns, about
// 200,000 characters of DDL, planned and applied.
func TestContractLongDDLFitsGitHubLimits(t *testing.T) {
	c := newContract(t, "  lease: 1m", "10s")
	files := shopFiles(usersV1 + ";\n")
	total := 0
	for i := 0; i < 60; i++ {
		var b strings.Builder
		fmt.Fprintf(&b, "CREATE TABLE wide_%02d (\n  id BIGINT NOT NULL,\n", i)
		for j := 0; j < 20; j++ {
			fmt.Fprintf(&b, "  column_with_a_long_name_%02d VARCHAR(20) NULL COMMENT '%s',\n", j, strings.Repeat("x", 120))
		}
		b.WriteString("  PRIMARY KEY (id)\n);\n")
		total += b.Len()
		files[fmt.Sprintf("db/shop/wide_%02d.sql", i)] = b.String()
	}
	if total < 2*65536 {
		t.Fatalf("the test's DDL is %d characters, want well over 65,536", total)
	}
	head := sha(300)
	c.openPR(30, head, files)
	c.waitCheck(head, "tern/shop/staging", "Awaiting apply")
	c.comment(30, "alice", "/tern apply -e staging")
	c.waitCheck(head, "tern/shop/staging", "Applied")
	var tables int
	if err := c.staging.QueryRow(`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE 'wide\_%'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 60 {
		t.Errorf("staging has %d wide tables, want 60", tables)
	}

	comments := c.botComments(30)
	if len(comments) < 2 {
		t.Fatalf("want a plan comment and an apply comment, got %d comments", len(comments))
	}
	sawDetails := false
	for _, cm := range comments {
		if n := utf8.RuneCountInString(cm.GetBody()); n > 65536 {
			t.Errorf("comment %d has %d characters", cm.GetID(), n)
		}
		sawDetails = sawDetails || strings.Contains(cm.GetBody(), "<details>")
	}
	if !sawDetails {
		t.Error("no comment folds the long DDL into <details>")
	}
	for _, r := range c.gh.CheckRuns(repoName, head) {
		o := r.GetOutput()
		for _, f := range []string{o.GetSummary(), o.GetText()} {
			if n := utf8.RuneCountInString(f); n > 65535 {
				t.Errorf("check run %s output field has %d characters", r.GetName(), n)
			}
		}
	}
	// Every write to GitHub was accepted: nothing failed on a limit.
	for _, r := range c.gh.Requests() {
		if r.Method != "GET" && r.Status >= 400 {
			t.Errorf("%s %s answered %d", r.Method, r.Path, r.Status)
		}
	}
}
