package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/store"
)

// `tern recover` exits 0 when the pass ran, here with an apply that failed
// for good; in GitHub Actions mode it writes the counts as outputs and the
// applies to the step summary.
func TestRecoverExitsZeroWhenApplyFails(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	live, liveName := testdb.Open(t, "e2e_fail_live")
	if _, err := live.Exec("CREATE TABLE t1 (id BIGINT NOT NULL PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	const sha = "badc0de000000000000000000000000000000001"
	w.gh.SetBase(repoName, map[string]string{"tern.yaml": ternYAML})
	w.gh.OpenPR(repoName, 3, sha, map[string]string{"tern.yaml": ternYAML})
	cfg := w.config(mysqlTarget("shop", "staging", liveDSN(t, liveName), "2s"), "  max_attempts: 3")

	// A plan whose CREATE TABLE meets a table that exists: it fails for good.
	ddl := "CREATE TABLE `t1` (\n  `id` bigint NOT NULL,\n  PRIMARY KEY (`id`)\n)"
	d, err := plan.Parse([]plan.File{{Path: "db/shop/t1.sql", Data: []byte(ddl + ";\n")}})
	if err != nil {
		t.Fatal(err)
	}
	sp := &store.Plan{Repository: repoName, PR: 3, HeadSHA: sha, InstallationID: installation, Database: "shop", Environment: "staging",
		DesiredHash: d.Hash(), Desired: d.Marshal(), Lint: []byte("[]"),
		Statements: []store.Statement{{Table: "t1", Kind: plan.KindCreate, DDL: ddl}}}
	if err := w.st.SavePlan(ctx, sp); err != nil {
		t.Fatal(err)
	}
	a, err := w.st.CreateApply(ctx, sp, "alice", false, 3)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	outputs, stepSummary := filepath.Join(dir, "output"), filepath.Join(dir, "summary")
	for _, f := range []string{outputs, stepSummary} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := w.startEnv([]string{"GITHUB_ACTIONS=true", "GITHUB_OUTPUT=" + outputs, "GITHUB_STEP_SUMMARY=" + stepSummary},
		"recover", "--config", cfg)
	if code := p.wait(t); code != 0 {
		t.Fatalf("tern recover exited %d, want 0 (the pass ran)\n%s", code, p.stderr.String())
	}
	stdout := p.stdout.String()
	w.noSecrets("tern recover", stdout+p.stderr.String())
	if sum := parseSummary(t, stdout); sum != (summary{Failed: 1}) {
		t.Errorf("summary %+v, want failed=1", sum)
	}
	if want := fmt.Sprintf("apply %d acme/shop#3 shop/staging: failed", a.ID); !strings.Contains(stdout, want) {
		t.Errorf("stdout lacks %q:\n%s", want, stdout)
	}
	if !strings.Contains(stdout, "::error") {
		t.Errorf("no error annotation for the failed apply:\n%s", stdout)
	}
	b, err := os.ReadFile(outputs)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"recovered", "retrying", "failed", "rescued"} {
		want := "0"
		if k == "failed" {
			want = "1"
		}
		if !regexp.MustCompile(`(?m)^` + k + `(=` + want + `$|<<)`).Match(b) {
			t.Errorf("GITHUB_OUTPUT lacks %s=%s:\n%s", k, want, b)
		}
	}
	if b, err := os.ReadFile(stepSummary); err != nil || !strings.Contains(string(b), fmt.Sprintf("%d", a.ID)) {
		t.Errorf("step summary does not name apply %d (%v):\n%s", a.ID, err, b)
	}
	if got, err := w.st.Apply(ctx, a.ID); err != nil || got.State != store.Failed {
		t.Errorf("apply after the pass: %+v (%v), want failed", got, err)
	}
}

// `tern recover` exits non-zero, saying why, when it cannot run: the store
// does not answer, or the config is bad (the key named with its path). No
// password reaches the output.
func TestRecoverCannotRun(t *testing.T) {
	w := newWorld(t)
	base := func(store, github, targets, recovery string) string {
		return fmt.Sprintf("store:\n%s\ngithub:\n  api_url: %s\n%s\ntargets:\n%s\nrecovery:\n%s\n", store, w.gh.URL, github, targets, recovery)
	}
	goodStore := "  dsn: ${TERN_STORE_DSN}"
	goodGitHub := "  app_id: ${TERN_GITHUB_APP_ID}\n  private_key: ${TERN_GITHUB_PRIVATE_KEY}"
	goodTarget := mysqlTarget("shop", "staging", testdb.ServerDSN()+"shop", "10s")
	const password = "pw-e2e-never-printed"

	cases := []struct {
		name   string
		config string // "" runs without --config
		want   string
	}{
		{"store refuses connections", base("  dsn: tern:"+password+"@tcp(127.0.0.1:1)/tern", goodGitHub, goodTarget, "  lease: 1m"), "open store"},
		{"store rejects the password", base("  dsn: root:"+password+"@tcp(127.0.0.1:3306)/tern", goodGitHub, goodTarget, "  lease: 1m"), "open store"},
		{"target without a DSN", base(goodStore, goodGitHub, "  - {repository: acme/shop, database: shop, environment: staging, mysql: {lock_wait_timeout: 10s}}", "  lease: 1m"), "targets[0].mysql.dsn: required"},
		{"second target without a database", base(goodStore, goodGitHub, goodTarget+"\n  - {repository: acme/shop, environment: production, mysql: {dsn: \"x@tcp(h:1)/y\"}}", "  lease: 1m"), "targets[1].database: required"},
		{"unset variable", base("  dsn: ${E2E_SURELY_UNSET}", goodGitHub, goodTarget, "  lease: 1m"), "store.dsn: environment variable E2E_SURELY_UNSET is not set"},
		{"no app id", base(goodStore, "  private_key: ${TERN_GITHUB_PRIVATE_KEY}", goodTarget, "  lease: 1m"), "github.app_id: required"},
		{"lease too short", base(goodStore, goodGitHub, goodTarget, "  lease: 10ms"), "recovery.lease: must be at least 1s"},
		{"misspelt key", base(goodStore, goodGitHub, goodTarget, "  lese: 1m"), "lese"},
		{"no config", "", "no config"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"recover"}
			if c.config != "" {
				args = append(args, "--config", writeFile(t, "tern-server.yaml", c.config))
			}
			stdout, stderr, code := w.run(args...)
			if code == 0 {
				t.Fatalf("exit 0, want non-zero\nstdout:\n%s", stdout)
			}
			if !strings.Contains(stderr, c.want) {
				t.Errorf("stderr lacks %q:\n%s", c.want, stderr)
			}
			if summaryLine.MatchString(stdout) {
				t.Errorf("printed a summary line though no pass ran:\n%s", stdout)
			}
			if strings.Contains(stdout+stderr, password) {
				t.Errorf("the store password reached the output:\n%s", stderr)
			}
			w.noSecrets("tern recover", stdout+stderr)
		})
	}
}

// `tern migrate` creates the store's tables (twice is fine), and
// `tern version` prints the version and commit stamped at build time.
func TestMigrateAndVersion(t *testing.T) {
	w := newWorld(t)
	storeDB, storeName := testdb.Open(t, "e2e_migrate")
	w.env["TERN_STORE_DSN"] = liveDSN(t, storeName)
	cfg := writeFile(t, "tern-server.yaml", "store:\n  dsn: ${TERN_STORE_DSN}\n")

	migrated := regexp.MustCompile(`^store migrated to version (\d+)\n$`)
	var versions []string
	for i := 0; i < 2; i++ {
		stdout, stderr, code := w.run("migrate", "--config", cfg)
		m := migrated.FindStringSubmatch(stdout)
		if code != 0 || m == nil {
			t.Fatalf("tern migrate run %d: exit %d\nstdout:\n%s\nstderr:\n%s", i+1, code, stdout, stderr)
		}
		versions = append(versions, m[1])
	}
	if versions[0] != versions[1] || versions[0] != fmt.Sprint(store.LatestVersion()) {
		t.Errorf("migrated to versions %v, want %d both times", versions, store.LatestVersion())
	}
	var tables int
	if err := storeDB.QueryRow(`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'tern_applies'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 1 {
		t.Error("tern migrate did not create tern_applies")
	}

	stdout, _, code := w.run("version")
	if want := fmt.Sprintf("tern %s (commit %s)\n", testVersion, testCommit); code != 0 || stdout != want {
		t.Errorf("tern version: exit %d, %q; want 0, %q", code, stdout, want)
	}
}

// `tern plan` against a checkout in a temp dir: exit 0 with no changes, 2
// with changes (text and --json), 1 on errors.
func TestPlanExitCodes(t *testing.T) {
	w := newWorld(t)
	live, liveName := testdb.Open(t, "e2e_plan_live")
	if _, err := live.Exec(usersV1); err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, "tern-server.yaml", fmt.Sprintf("store:\n  dsn: ${TERN_STORE_DSN}\ntargets:\n%s\n",
		mysqlTarget("shop", "staging", liveDSN(t, liveName), "10s")))
	checkout := func(users string) string {
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "db", "shop"), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, body := range map[string]string{"tern.yaml": ternYAML, "db/shop/users.sql": users} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	same, changed := checkout(usersV1+";\n"), checkout(usersV2)
	bad := checkout("-- users\nCREATE TABLE users (id BIGINT NOT NULL PRIMARY KEY);\nDROP TABLE users;\n")

	cases := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"no changes", []string{"--dir", same, "-d", "shop", "-e", "staging"}, 0, []string{"No changes"}, ""},
		{"changes", []string{"--dir", changed, "-d", "shop", "-e", "staging"}, 2, []string{"ADD COLUMN", "email", "Plan: 1 statement (0 create, 1 alter, 0 drop), 0 unsafe"}, ""},
		{"flags after the checkout", []string{"-d", "shop", "--dir", changed, "-e", "staging"}, 2, []string{"email"}, ""},
		{"missing -d", []string{"--dir", changed, "-e", "staging"}, 1, nil, "-d DB is required"},
		{"environment not in tern.yaml", []string{"--dir", changed, "-d", "shop", "-e", "production"}, 1, nil, `environment "production" is not listed`},
		{"database not in tern.yaml", []string{"--dir", changed, "-d", "billing", "-e", "staging"}, 1, nil, `database "billing" is not in tern.yaml`},
		{"bad schema file", []string{"--dir", bad, "-d", "shop", "-e", "staging"}, 1, nil, "users.sql:3"},
		{"no tern.yaml", []string{"--dir", t.TempDir(), "-d", "shop", "-e", "staging"}, 1, nil, "tern.yaml"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := w.run(append([]string{"plan", "--config", cfg}, c.args...)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, stdout, stderr)
			}
			for _, s := range c.stdout {
				if !strings.Contains(strings.ToUpper(stdout), strings.ToUpper(s)) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			if !strings.Contains(stderr, c.stderr) {
				t.Errorf("stderr lacks %q:\n%s", c.stderr, stderr)
			}
		})
	}

	// With --dsn, no config file at all: the binary plans against the
	// schema the DSN names, and the driver's own log lines stay out of the
	// terminal when the server hangs up.
	t.Run("dsn without a config", func(t *testing.T) {
		stdout, stderr, code := w.run("plan", "--dsn", liveDSN(t, liveName), "--dir", changed)
		if code != 2 || !strings.Contains(stdout, "ADD COLUMN `email`") {
			t.Fatalf("exit %d, want 2 and the DDL\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		_, stderr, code = w.run("plan", "--dsn", "root@tcp("+ln.Addr().String()+")/shop?timeout=2s", "--dir", changed)
		if code != 1 || !strings.Contains(stderr, "tern plan: ") || strings.Contains(stderr, "[mysql]") {
			t.Errorf("a server that hangs up: exit %d, stderr:\n%s", code, stderr)
		}
	})

	// As the Action runs it: the args input split with its quotes (a
	// checkout whose path holds a space), exit 0 on changes, the outputs
	// and the step summary written.
	t.Run("in the Action", func(t *testing.T) {
		spaced := filepath.Join(t.TempDir(), "my checkout")
		if err := os.CopyFS(spaced, os.DirFS(changed)); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		outputs, stepSummary := filepath.Join(dir, "outputs"), filepath.Join(dir, "summary")
		p := w.startEnv([]string{"GITHUB_ACTIONS=true", "GITHUB_OUTPUT=" + outputs, "GITHUB_STEP_SUMMARY=" + stepSummary,
			`INPUT_ARGS=--dir "` + spaced + `" -d shop -e staging`}, "plan", "--config", cfg)
		if code := p.wait(t); code != 0 {
			t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, p.stdout.String(), p.stderr.String())
		}
		out, _ := os.ReadFile(outputs)
		if !strings.Contains(string(out), "changes<<_GitHubActionsFileCommandDelimeter_\ntrue\n") || !strings.Contains(string(out), "statements<<_GitHubActionsFileCommandDelimeter_\n1\n") {
			t.Errorf("outputs:\n%s", out)
		}
		if sum, _ := os.ReadFile(stepSummary); !strings.Contains(string(sum), "ADD COLUMN `email`") {
			t.Errorf("step summary lacks the DDL:\n%s", sum)
		}
	})

	t.Run("json", func(t *testing.T) {
		for _, c := range []struct {
			dir   string
			code  int
			stmts int
		}{{changed, 2, 1}, {same, 0, 0}} {
			stdout, stderr, code := w.run("plan", "--config", cfg, "--dir", c.dir, "-d", "shop", "-e", "staging", "--json")
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s", code, c.code, stderr)
			}
			var p struct {
				DesiredHash string `json:"desired_hash"`
				Statements  []struct {
					Table, Kind, DDL string
				} `json:"statements"`
				Findings []json.RawMessage `json:"findings"`
			}
			if err := json.Unmarshal([]byte(stdout), &p); err != nil {
				t.Fatalf("--json output is not JSON: %v\n%s", err, stdout)
			}
			if len(p.Statements) != c.stmts || p.DesiredHash == "" {
				t.Fatalf("--json plan: %+v, want %d statements and a desired hash", p, c.stmts)
			}
			if c.stmts > 0 && (p.Statements[0].Table != "users" || p.Statements[0].Kind != plan.KindAlter ||
				!strings.Contains(strings.ToLower(p.Statements[0].DDL), "add column `email`")) {
				t.Errorf("--json statement: %+v, want an alter of users adding email", p.Statements[0])
			}
		}
	})
}
