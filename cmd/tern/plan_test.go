package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/fakeps"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/plan"
)

// planFixture writes a checkout and a server config whose target is a
// fresh test database, and returns the runPlan arguments.
func planFixture(t *testing.T, schema string, liveDDL ...string) []string {
	t.Helper()
	dsn, _ := testdb.New(t, "cli_plan")
	live, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	for _, q := range liveDDL {
		if _, err := live.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "db/shop"), 0o755)
	os.WriteFile(filepath.Join(dir, "tern.yaml"), []byte("databases:\n  - name: shop\n    schema_dir: db/shop\n    environments: [staging, production]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "db/shop/schema.sql"), []byte(schema), 0o644)
	cfgPath := filepath.Join(dir, "server.yaml")
	t.Setenv("TERN_TEST_PLAN_DSN", dsn)
	os.WriteFile(cfgPath, []byte(`store:
  dsn: root@tcp(127.0.0.1:3306)/tern
targets:
  - repository: acme/shop
    database: shop
    environment: staging
    mysql:
      dsn: ${TERN_TEST_PLAN_DSN}
`), 0o644)
	return []string{"--config", cfgPath, "--dir", dir, "-d", "shop", "-e", "staging"}
}

func TestRunPlan(t *testing.T) {
	ctx := context.Background()
	const table = "CREATE TABLE users (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, email varchar(255) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"

	t.Run("no changes exits 0", func(t *testing.T) {
		args := planFixture(t, table+";\n", table)
		var out, errOut bytes.Buffer
		if code := runPlan(ctx, args, &out, &errOut); code != 0 {
			t.Fatalf("exit %d, want 0; stderr: %s", code, errOut.String())
		}
		if !strings.Contains(out.String(), "No changes") {
			t.Errorf("output: %s", out.String())
		}
	})

	t.Run("changes exit 2 and print DDL, lint and summary", func(t *testing.T) {
		args := planFixture(t, "CREATE TABLE users (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;\nCREATE TABLE orders (id int PRIMARY KEY);\n", table)
		var out, errOut bytes.Buffer
		if code := runPlan(ctx, append([]string{"-e", "staging"}, args...), &out, &errOut); code != 2 {
			t.Fatalf("exit %d, want 2; stderr: %s", code, errOut.String())
		}
		for _, want := range []string{"CREATE TABLE `orders`", "ALTER TABLE `users` DROP COLUMN `email`;", "unsafe  users: drops column email: its data is lost (drop-column)", "Plan: 2 statements (1 create, 1 alter, 0 drop), 1 unsafe. Applying needs --allow-unsafe."} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		args := planFixture(t, table+";\nCREATE TABLE orders (id int PRIMARY KEY);\n", table)
		var out, errOut bytes.Buffer
		if code := runPlan(ctx, append(args, "--json"), &out, &errOut); code != 2 {
			t.Fatalf("exit %d, want 2; stderr: %s", code, errOut.String())
		}
		var p struct {
			plan.Plan
			DesiredHash string `json:"desired_hash"`
		}
		if err := json.Unmarshal(out.Bytes(), &p); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out.String())
		}
		if len(p.Statements) != 1 || p.Statements[0].Kind != plan.KindCreate || p.Statements[0].Table != "orders" || p.DesiredHash == "" {
			t.Errorf("plan: %+v", p)
		}
	})

	t.Run("json names the target, counts, version and numbers", func(t *testing.T) {
		args := planFixture(t, "CREATE TABLE users (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;\nCREATE TABLE orders (id int PRIMARY KEY);\n", table)
		var out, errOut bytes.Buffer
		if code := runPlan(ctx, append(args, "--json"), &out, &errOut); code != 2 {
			t.Fatalf("exit %d, want 2; stderr: %s", code, errOut.String())
		}
		var got struct {
			FormatVersion int `json:"format_version"`
			Target        struct {
				Repository, Database, Environment, ServerVersion string
			} `json:"target"`
			Summary struct {
				Statements, Create, Alter, Drop, Unsafe, Warnings int
			} `json:"summary"`
			Statements []struct {
				Number int    `json:"number"`
				Table  string `json:"table"`
				Kind   string `json:"kind"`
			} `json:"statements"`
			Findings []struct {
				Severity  string `json:"severity"`
				Statement int    `json:"statement"`
			} `json:"findings"`
		}
		dec := json.NewDecoder(bytes.NewReader(out.Bytes()))
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out.String())
		}
		var raw map[string]map[string]any
		json.Unmarshal(out.Bytes(), &raw)
		if got.FormatVersion != 1 || got.Target.Repository != "acme/shop" || got.Target.Database != "shop" || got.Target.Environment != "staging" ||
			raw["target"]["server_version"] == "" || raw["target"]["server_version"] == nil {
			t.Errorf("format_version/target: %s", out.String())
		}
		if s := got.Summary; s.Statements != 2 || s.Create != 1 || s.Alter != 1 || s.Drop != 0 || s.Unsafe != 1 || s.Warnings != 0 {
			t.Errorf("summary: %+v", s)
		}
		if len(got.Statements) != 2 || got.Statements[0].Number != 1 || got.Statements[1].Number != 2 {
			t.Errorf("statements: %+v", got.Statements)
		}
		alter := 0
		for _, s := range got.Statements {
			if s.Kind == plan.KindAlter {
				alter = s.Number
			}
		}
		if len(got.Findings) != 1 || got.Findings[0].Severity != "unsafe" || got.Findings[0].Statement != alter {
			t.Errorf("findings: %+v (the alter is statement %d)", got.Findings, alter)
		}
	})

	t.Run("errors exit 1", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			edit  func(args []string) []string
			files map[string]string
			want  string
		}{
			{"bad SQL", nil, map[string]string{"db/shop/schema.sql": "DELETE FROM users;"}, "db/shop/schema.sql:1: only CREATE TABLE statements are allowed, found DELETE"},
			{"bad tern.yaml", nil, map[string]string{"tern.yaml": "databases: []\n"}, "tern.yaml: databases: at least one database is required"},
			{"unknown database", func(a []string) []string { return append(a, "-d", "nope") }, nil, `database "nope" is not in tern.yaml`},
			{"unknown environment", func(a []string) []string { return append(a, "--env", "qa") }, nil, `environment "qa" is not listed`},
			{"no target", func(a []string) []string { return append(a, "-e", "production") }, nil, "no target in the config for database shop, environment production"},
			{"unknown repo", func(a []string) []string { return append(a, "--repo", "acme/other") }, nil, "no target in the config for repository acme/other"},
			{"missing -d", func(a []string) []string { return a[:len(a)-4] }, nil, "-d DB is required"},
			{"positional", func(a []string) []string { return append(a, "extra") }, nil, `unexpected argument "extra"`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				args := planFixture(t, table+";\n", table)
				dir := args[3]
				for f, body := range tc.files {
					os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644)
				}
				if tc.edit != nil {
					args = tc.edit(args)
				}
				var out, errOut bytes.Buffer
				if code := runPlan(ctx, args, &out, &errOut); code != 1 {
					t.Fatalf("exit %d, want 1; stdout: %s stderr: %s", code, out.String(), errOut.String())
				}
				if !strings.Contains(errOut.String(), tc.want) {
					t.Errorf("stderr lacks %q: %s", tc.want, errOut.String())
				}
			})
		}
	})
}

// tern plan reads only its target: the README's server config, with the
// store's, the GitHub App's and the other target's variables unset, plans;
// so does a config with no store: block at all.
func TestRunPlanNeedsNoSecrets(t *testing.T) {
	ctx := context.Background()
	const table = "CREATE TABLE users (id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"
	for _, head := range []string{
		"store:\n  dsn: ${TERN_TEST_SURELY_UNSET_STORE}\ngithub:\n  app_id: ${TERN_TEST_SURELY_UNSET_APP}\n  private_key: ${TERN_TEST_SURELY_UNSET_KEY}\n  webhook_secret: ${TERN_TEST_SURELY_UNSET_HOOK}\n",
		"",
	} {
		args := planFixture(t, table+";\n", table)
		os.WriteFile(args[1], []byte(head+"targets:\n  - repository: acme/shop\n    database: shop\n    environment: staging\n    mysql:\n      dsn: ${TERN_TEST_PLAN_DSN}\n"+
			"  - repository: acme/shop\n    database: shop\n    environment: production\n    planetscale:\n      organization: acme\n      database: shop\n"+
			"      service_token_id: ${TERN_TEST_SURELY_UNSET_PS_ID}\n      service_token: ${TERN_TEST_SURELY_UNSET_PS}\n"), 0o644)
		var out, errOut bytes.Buffer
		if code := runPlan(ctx, args, &out, &errOut); code != 0 {
			t.Errorf("config %q: exit %d, want 0; stderr: %s", head, code, errOut.String())
		}
	}
}

// tern plan --dsn DSN --dir DIR plans with no config file: against the
// DSN's schema, from a checkout's tern.yaml or from a folder of *.sql.
func TestRunPlanDSN(t *testing.T) {
	ctx := context.Background()
	dsn, name := testdb.New(t, "cli_plan_dsn")
	sqlDir := t.TempDir()
	os.WriteFile(filepath.Join(sqlDir, "users.sql"), []byte("CREATE TABLE users (id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY);\n"), 0o644)
	checkout := t.TempDir()
	os.MkdirAll(filepath.Join(checkout, "db/shop"), 0o755)
	os.WriteFile(filepath.Join(checkout, "tern.yaml"), []byte("databases:\n  - name: shop\n    schema_dir: db/shop\n    environments: [staging]\n"), 0o644)
	os.WriteFile(filepath.Join(checkout, "db/shop/users.sql"), []byte("CREATE TABLE users (id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY);\n"), 0o644)
	t.Setenv("TERN_CONFIG", "")
	for _, dir := range []string{sqlDir, checkout} {
		var out, errOut bytes.Buffer
		if code := runPlan(ctx, []string{"--dsn", dsn, "--dir", dir}, &out, &errOut); code != 2 {
			t.Fatalf("--dir %s: exit %d, want 2; stderr: %s", dir, code, errOut.String())
		}
		if !strings.Contains(out.String(), "CREATE TABLE `users`") || !strings.Contains(out.String(), "live schema "+name) {
			t.Errorf("--dir %s: output:\n%s", dir, out.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := runPlan(ctx, []string{"--dsn", testdb.ServerDSN(), "--dir", sqlDir}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "name the live schema") {
		t.Errorf("a DSN without a database: exit %d, stderr %s", code, errOut.String())
	}
}

// TestRunPlanPlanetScale plans against a PlanetScale target: the live
// schema is read through a branch password on the stand-in, the shadow is
// the store's server.
func TestRunPlanPlanetScale(t *testing.T) {
	ctx := context.Background()
	ps, err := fakeps.New(fakeps.Options{
		ServerDSN: testdb.ServerDSN(), Organization: "acme", Database: "shop",
		ServiceTokenID: "tokid", ServiceToken: "pscale_tkn_secret",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	main, err := sql.Open("mysql", ps.MainDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer main.Close()
	if _, err := main.Exec("CREATE TABLE users (id bigint NOT NULL PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	storeDSN, _ := testdb.New(t, "cli_plan_ps")
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "db/shop"), 0o755)
	os.WriteFile(filepath.Join(dir, "tern.yaml"), []byte("databases:\n  - name: shop\n    schema_dir: db/shop\n    environments: [production]\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "db/shop/users.sql"), []byte("CREATE TABLE users (id bigint NOT NULL PRIMARY KEY, name varchar(50));\n"), 0o644)
	t.Setenv("TERN_TEST_STORE_DSN", storeDSN)
	t.Setenv("TERN_TEST_PS_TOKEN", "pscale_tkn_secret")
	cfgPath := filepath.Join(dir, "server.yaml")
	os.WriteFile(cfgPath, []byte(`store:
  dsn: ${TERN_TEST_STORE_DSN}
targets:
  - repository: acme/shop
    database: shop
    environment: production
    planetscale:
      organization: acme
      database: shop
      service_token_id: tokid
      service_token: ${TERN_TEST_PS_TOKEN}
      api_url: `+ps.URL+`
      tls: false
`), 0o644)
	var out, errOut bytes.Buffer
	code := runPlan(ctx, []string{"--config", cfgPath, "--dir", dir, "-d", "shop", "-e", "production"}, &out, &errOut)
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr: %s", code, errOut.String())
	}
	if want := "ALTER TABLE `users` ADD COLUMN `name` varchar(50)"; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
	if strings.Contains(out.String()+errOut.String(), "pscale_tkn_secret") {
		t.Error("the service token leaked into the output")
	}
}

// In GitHub Actions, tern plan exits 0 when it planned, sets the outputs
// changes, statements and unsafe, writes the plan as the step summary, and
// fails only on errors or when fail-on says so.
func TestPlanInAction(t *testing.T) {
	ctx := context.Background()
	const table = "CREATE TABLE users (id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY, email varchar(255) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"
	const changed = "CREATE TABLE users (id bigint unsigned NOT NULL AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;\nCREATE TABLE orders (id int unsigned PRIMARY KEY);\n"
	for _, tc := range []struct {
		name, schema, failOn string
		code                 int
		outputs              map[string]string
		stdout               string
	}{
		{"changes pass by default", changed, "", 0, map[string]string{"changes": "true", "statements": "2", "unsafe": "1"}, ""},
		{"fail-on unsafe", changed, "unsafe", 1, map[string]string{"unsafe": "1"}, "::error::tern plan: the plan has 1 unsafe findings (fail-on: unsafe)"},
		{"fail-on changes", changed, "changes", 1, map[string]string{"changes": "true"}, "fail-on: changes"},
		{"no changes, fail-on changes", table + ";\n", "changes", 0, map[string]string{"changes": "false", "statements": "0", "unsafe": "0"}, ""},
		{"bad fail-on", table + ";\n", "sometimes", 1, nil, "::error::tern plan: input fail-on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := planFixture(t, tc.schema, table)
			dir := t.TempDir()
			env := map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": filepath.Join(dir, "out"), "GITHUB_STEP_SUMMARY": filepath.Join(dir, "summary"), "INPUT_FAIL-ON": tc.failOn}
			var out, errOut bytes.Buffer
			code := planMain(ctx, args, &out, &errOut, func(k string) string { return env[k] })
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stdout %s stderr %s", code, tc.code, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, out.String())
			}
			if tc.outputs == nil {
				return
			}
			gotOut, _ := os.ReadFile(env["GITHUB_OUTPUT"])
			for k, v := range tc.outputs {
				if !strings.Contains(string(gotOut), k+"<<_GitHubActionsFileCommandDelimeter_\n"+v+"\n") {
					t.Errorf("outputs lack %s=%s:\n%s", k, v, gotOut)
				}
			}
			summary, _ := os.ReadFile(env["GITHUB_STEP_SUMMARY"])
			want := "No changes"
			if tc.schema == changed {
				want = "**Plan:** 2 statements (1 create, 1 alter, 0 drop), 1 unsafe"
			}
			if !strings.Contains(string(summary), "### tern plan: acme/shop, database shop, environment staging") || !strings.Contains(string(summary), want) {
				t.Errorf("step summary lacks %q:\n%s", want, summary)
			}
		})
	}
}
