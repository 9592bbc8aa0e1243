package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/recovery"
	"github.com/ternhq/tern/recovery/recoverytest"
	"github.com/ternhq/tern/store"
)

const testPEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\nKUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQ\n-----END RSA PRIVATE KEY-----\n"

// recoverFixture is a ledger with two due applies (one healthy, one whose
// fault never clears and that has a single attempt) and a config file
// naming it, with secrets in it.
type recoverFixture struct {
	cfgPath string
	env     map[string]string
	good    *store.Apply
	doomed  *store.Apply
	db      *store.Store
}

func newRecoverFixture(t *testing.T) *recoverFixture {
	t.Helper()
	ctx := context.Background()
	dsn, _ := testdb.New(t, "cmdrecover")
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := recoverytest.Migrate(ctx, st.DB()); err != nil {
		t.Fatal(err)
	}
	f := &recoverFixture{db: st}
	for i, maxAttempts := range []int{5, 1} {
		p := &store.Plan{
			Repository: "acme/shop", PR: 7 + i, HeadSHA: fmt.Sprintf("%040x", i+1), InstallationID: 1,
			Database: "shop", Environment: []string{"staging", "production"}[i], DesiredHash: "h",
			Desired: []byte("[]"), Lint: []byte("[]"),
			Statements: []store.Statement{{Table: "t", Kind: "create", DDL: "CREATE TABLE t (id int PRIMARY KEY)"}},
		}
		if err := st.SavePlan(ctx, p); err != nil {
			t.Fatal(err)
		}
		a, err := st.CreateApply(ctx, p, "octocat", false, maxAttempts)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			f.good = a
		} else {
			f.doomed = a
		}
	}
	if err := recoverytest.SetFault(ctx, st.DB(), f.doomed.ID, recoverytest.Forever); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	f.cfgPath = filepath.Join(dir, "tern.yaml")
	cfg := `store:
  dsn: ${TEST_STORE_DSN}
github:
  app_id: 42
  private_key: ${TEST_PEM}
  webhook_secret: whsec-0123456789
targets:
  - repository: acme/shop
    database: shop
    environment: staging
    mysql:
      dsn: tern:target-pa55word@tcp(db.internal:3306)/shop
`
	if err := os.WriteFile(f.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEST_STORE_DSN", dsn)
	t.Setenv("TEST_PEM", testPEM)
	f.env = map[string]string{
		"GITHUB_ACTIONS":      "true",
		"GITHUB_OUTPUT":       filepath.Join(dir, "output"),
		"GITHUB_STEP_SUMMARY": filepath.Join(dir, "summary"),
	}
	return f
}

// testPass runs applies through the fast engine; no GitHub.
func testPass(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger) (*recovery.Pass, func(), error) {
	runner := &recoverytest.LedgerRunner{Store: st, Engine: recoverytest.NewEngine(st.DB()), RetryIn: time.Hour}
	return &recovery.Pass{
		Store: st, Runner: runner, Logger: log,
		MaxRescues: cfg.Recovery.MaxRescues, Lease: cfg.Recovery.Lease.D(),
	}, nil, nil
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRecoverPlain(t *testing.T) {
	f := newRecoverFixture(t)
	var stdout, stderr bytes.Buffer
	code := recoverMain(context.Background(), []string{"--config", f.cfgPath}, &stdout, &stderr,
		func(string) string { return "" }, testPass)
	if code != 0 {
		t.Fatalf("exit %d, want 0\nstderr: %s", code, stderr.String())
	}
	want := fmt.Sprintf("apply %d acme/shop#7 shop/staging: completed after 1 attempt\n", f.good.ID) +
		fmt.Sprintf("apply %d acme/shop#8 shop/production: failed for good after 1 attempt (retries_exhausted): ", f.doomed.ID)
	if !strings.HasPrefix(stdout.String(), want) {
		t.Errorf("stdout:\n%s\nwant it to begin:\n%s", stdout.String(), want)
	}
	if !strings.HasSuffix(stdout.String(), "\nrecovered=1 retrying=0 failed=1 rescued=0\n") {
		t.Errorf("stdout lacks the summary line:\n%s", stdout.String())
	}
	if strings.Contains(stdout.String(), "::") {
		t.Errorf("workflow commands outside GitHub Actions:\n%s", stdout.String())
	}
	runs, err := recoverytest.Runs(context.Background(), f.db.DB())
	if err != nil {
		t.Fatal(err)
	}
	if runs[f.good.ID][1] != 1 || len(runs[f.doomed.ID]) != 0 {
		t.Errorf("DDL executions %v, want apply %d once and apply %d never", runs, f.good.ID, f.doomed.ID)
	}
}

func TestRecoverActions(t *testing.T) {
	f := newRecoverFixture(t)
	var stdout, stderr bytes.Buffer
	code := recoverMain(context.Background(), []string{"--config", f.cfgPath, "--limit", "10", "--parallel", "2"},
		&stdout, &stderr, func(k string) string { return f.env[k] }, testPass)
	if code != 0 {
		t.Fatalf("exit %d, want 0\nstderr: %s", code, stderr.String())
	}
	out := stdout.String()

	// Every secret masked, before anything else is printed.
	secrets := []string{"whsec-0123456789", "target-pa55word", "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu"}
	lines := strings.Split(out, "\n")
	first := 0
	for first < len(lines) && strings.HasPrefix(lines[first], "::add-mask::") {
		first++
	}
	masks := strings.Join(lines[:first], "\n")
	for _, s := range secrets {
		if !strings.Contains(masks, "::add-mask::"+s) {
			t.Errorf("secret %q not masked before other output; stdout:\n%s", s, out)
		}
	}
	if first == 0 || !strings.HasPrefix(lines[first], "apply ") {
		t.Errorf("output after the masks begins %q, want the apply lines", lines[first])
	}

	outputs := readFile(t, f.env["GITHUB_OUTPUT"])
	for k, v := range map[string]string{"recovered": "1", "retrying": "0", "failed": "1", "rescued": "0"} {
		if !strings.Contains(outputs, k+"<<_GitHubActionsFileCommandDelimeter_\n"+v+"\n") {
			t.Errorf("GITHUB_OUTPUT lacks %s=%s:\n%s", k, v, outputs)
		}
	}
	summary := readFile(t, f.env["GITHUB_STEP_SUMMARY"])
	for _, want := range []string{
		"| Apply | PR | Environment | Attempt | Outcome | Error |",
		fmt.Sprintf("| %d | acme/shop#7 | shop/staging | 1/5 | ✅ applied |  |", f.good.ID),
		fmt.Sprintf("| %d | acme/shop#8 | shop/production | 1/1 | ❌ failed | retries_exhausted: ", f.doomed.ID),
	} {
		if !strings.Contains(summary, want) {
			t.Errorf("step summary lacks %q:\n%s", want, summary)
		}
	}
	if n := strings.Count(out, "::error "); n != 1 || !strings.Contains(out, fmt.Sprintf("::apply %d acme/shop#8 shop/production: failed for good", f.doomed.ID)) {
		t.Errorf("want one error annotation, for apply %d; stdout:\n%s", f.doomed.ID, out)
	}
	for _, s := range secrets {
		if strings.Contains(stderr.String(), s) {
			t.Errorf("stderr holds secret %q", s)
		}
	}
}

func TestRecoverCannotRun(t *testing.T) {
	dir := t.TempDir()
	unreachable := filepath.Join(dir, "unreachable.yaml")
	os.WriteFile(unreachable, []byte("store:\n  dsn: tern:s3cret-pw@tcp(127.0.0.1:1)/tern?timeout=2s\n"), 0o600)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("store:\n  dsn: \"\"\n"), 0o600)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no config", nil, 1, "no config"},
		{"bad config", []string{"--config", bad}, 1, "store.dsn: required"},
		{"store unreachable", []string{"--config", unreachable}, 1, "store"},
		{"bad limit", []string{"--config", bad, "--limit", "0"}, 1, "--limit"},
		{"bad flag", []string{"--nope"}, 2, "flag provided but not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TERN_CONFIG", "")
			var stdout, stderr bytes.Buffer
			code := recoverMain(context.Background(), tc.args, &stdout, &stderr, func(string) string { return "" }, testPass)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.want)
			}
			if strings.Contains(stderr.String()+stdout.String(), "s3cret-pw") {
				t.Errorf("output holds the DSN password: %s", stderr.String())
			}
		})
	}
}

// Without the GitHub App's credentials the production wiring refuses to
// run (a pass must be able to report), naming the missing key.
func TestRecoverProductionNeedsGitHub(t *testing.T) {
	dsn, _ := testdb.New(t, "cmdrecover")
	path := filepath.Join(t.TempDir(), "tern.yaml")
	if err := os.WriteFile(path, []byte("store:\n  dsn: "+dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := recoverMain(context.Background(), []string{"--config", path}, &stdout, &stderr, func(string) string { return "" }, productionPass)
	if code != 1 || !strings.Contains(stderr.String(), "github.app_id: required") {
		t.Errorf("exit %d stderr %q, want 1 and github.app_id: required", code, stderr.String())
	}
}
