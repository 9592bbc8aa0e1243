package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/store"
)

// End to end through the production wiring: the real apply runner and
// MySQL engine on a live MariaDB database, the GitHub App talking to the
// fake GitHub. The apply is put in the ledger as `/tern apply -e staging`
// leaves it; a held metadata lock is the transient fault.
func TestRecoverEndToEnd(t *testing.T) {
	ctx := context.Background()
	const repoName, sha = "acme/shop", "0123456789abcdef0123456789abcdef01234567"
	storeDSN, _ := testdb.New(t, "e2e_store")
	live, liveName := testdb.Open(t, "e2e_live")
	if _, err := live.Exec("CREATE TABLE users (id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	gh, err := fakegithub.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)
	gh.AddInstallation(repoName, 99)
	gh.SetBase(repoName, map[string]string{"tern.yaml": "databases:\n  - name: shop\n    schema_dir: db/shop\n    environments: [staging]\n"})
	gh.OpenPR(repoName, 7, sha, map[string]string{"tern.yaml": "databases:\n  - name: shop\n    schema_dir: db/shop\n    environments: [staging]\n"})

	liveCfg := testdb.Config(t)
	liveCfg.DBName = liveName
	cfgPath := filepath.Join(t.TempDir(), "tern.yaml")
	cfg := fmt.Sprintf(`store:
  dsn: %q
github:
  api_url: %q
  app_id: %d
  private_key: ${E2E_KEY}
  webhook_secret: whsec-e2e
targets:
  - {repository: %s, database: shop, environment: staging, mysql: {dsn: %q, lock_wait_timeout: 1s}}
recovery:
  max_attempts: 3
`, storeDSN, gh.URL, gh.AppID, repoName, liveCfg.FormatDSN())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("E2E_KEY", string(gh.PrivateKeyPEM))

	st, err := store.Open(ctx, storeDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := plan.Parse([]plan.File{{Path: "db/shop/users.sql", Data: []byte(
		"CREATE TABLE users (id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(255) NOT NULL DEFAULT '');")}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := (&plan.Planner{}).Plan(ctx, d, live, testdb.Server(t))
	if err != nil {
		t.Fatal(err)
	}
	sp := &store.Plan{Repository: repoName, PR: 7, HeadSHA: sha, InstallationID: 99, Database: "shop", Environment: "staging",
		DesiredHash: d.Hash(), Desired: d.Marshal(), Lint: []byte("[]")}
	for _, s := range p.Statements {
		sp.Statements = append(sp.Statements, store.Statement{Table: s.Table, Kind: s.Kind, DDL: s.DDL, Instant: s.Instant})
	}
	if err := st.SavePlan(ctx, sp); err != nil {
		t.Fatal(err)
	}
	if err := st.TakeLock(ctx, store.Lock{Repository: repoName, Database: "shop", Environment: "staging", PR: 7, InstallationID: 99}); err != nil {
		t.Fatal(err)
	}
	a, err := st.CreateApply(ctx, sp, "alice", false, 3)
	if err != nil {
		t.Fatal(err)
	}

	recover := func() string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := recoverMain(ctx, []string{"--config", cfgPath}, &stdout, &stderr, func(string) string { return "" }, productionPass); code != 0 {
			t.Fatalf("tern recover exit %d\n%s", code, stderr.String())
		}
		if strings.Contains(stderr.String(), string(gh.PrivateKeyPEM)) {
			t.Error("the private key reached the log")
		}
		return stdout.String()
	}

	// The fault: a transaction holding users' metadata lock.
	tx, err := live.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("SELECT * FROM users"); err != nil {
		t.Fatal(err)
	}
	out := recover()
	if !strings.Contains(out, "recovered=0 retrying=1 failed=0 rescued=0") {
		t.Fatalf("first pass printed:\n%s", out)
	}
	run := gh.LatestCheckRun(repoName, sha, "tern/shop/staging")
	if run == nil || run.GetStatus() != "in_progress" || !strings.HasPrefix(run.GetOutput().GetTitle(), "Failed (retrying...)") ||
		!strings.Contains(run.GetOutput().GetTitle(), "attempt 1/3") || !strings.Contains(run.GetOutput().GetTitle(), "next retry") {
		t.Fatalf("check run after the fault: %+v", run)
	}

	tx.Rollback()
	if _, err := st.RetryNow(ctx, a.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	out = recover()
	if want := fmt.Sprintf("apply %d acme/shop#7 shop/staging: completed after 2 attempts", a.ID); !strings.Contains(out, want) {
		t.Fatalf("second pass printed:\n%s\nwant %q", out, want)
	}
	run = gh.LatestCheckRun(repoName, sha, "tern/shop/staging")
	if run == nil || run.GetStatus() != "completed" || run.GetConclusion() != "success" || !strings.HasPrefix(run.GetOutput().GetTitle(), "Applied") {
		t.Fatalf("check run after recovery: %+v", run)
	}
	found := false
	for _, c := range gh.Comments(repoName, 7) {
		if strings.Contains(c.GetBody(), "applied after 2 attempts") {
			found = true
		}
	}
	if !found {
		t.Error("no comment says the apply was applied after 2 attempts")
	}
	var n int
	if err := live.QueryRow(`SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'users' AND column_name = 'email'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("email column live: %d (%v)", n, err)
	}

	// The PR is closed while the webhook is missed: the next pass finds it
	// and releases its lock.
	gh.ClosePR(repoName, 7, false)
	out = recover()
	if _, err := st.GetLock(ctx, repoName, "shop", "staging"); err == nil {
		t.Errorf("the closed PR still holds its lock; pass printed:\n%s", out)
	}
}
