package e2e

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/store"
)

// ordersWide is BigTable's table with v widened: a change MariaDB can only
// make as a copy that blocks writes.
const ordersWide = "CREATE TABLE orders (\n  id INT NOT NULL AUTO_INCREMENT,\n  v BIGINT NOT NULL,\n  s VARCHAR(100) NOT NULL,\n  PRIMARY KEY (id)\n);\n"

// `tern serve` with mysql.online: pt-osc plans a copying change on a table
// over max_blocking_rows as ONLINE (no --allow-blocking needed) and runs it
// through pt-online-schema-change. It is killed with SIGKILL mid-copy,
// after the tool's triggers are on the table; the tool dies with it. The
// recovery pass that rescues the apply drops the triggers and shadow table
// the ledger names, copies again and swaps: the table ends changed, with
// every row, and nothing of either copy is left.
func TestServeKilledMidOnlineCopyIsRescued(t *testing.T) {
	if _, err := exec.LookPath("pt-online-schema-change"); err != nil {
		t.Fatal("pt-online-schema-change is not installed: run ./scripts/ensure-percona-toolkit.sh (./scripts/test runs it)")
	}
	ctx := context.Background()
	w := newWorld(t)
	live, liveName := testdb.Open(t, "e2e_online_live")
	testdb.BigTable(t, live, "orders", 1<<18)
	var rows int64
	if err := live.QueryRow("SELECT COUNT(*) FROM orders").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	w.gh.SetPermission(repoName, "alice", "write")
	w.gh.SetBase(repoName, map[string]string{"tern.yaml": ternYAML})
	w.gh.OpenPR(repoName, 9, headSHA, map[string]string{"tern.yaml": ternYAML, "db/shop/orders.sql": ordersWide})
	w.env["SHOP_STAGING_DSN"] = liveDSN(t, liveName)
	cfg := w.config(
		`  - {repository: acme/shop, database: shop, environment: staging, mysql: {dsn: "${SHOP_STAGING_DSN}", lock_wait_timeout: 10s, max_blocking_rows: 1000, online: pt-osc}}`,
		"  interval: 0s\n  lease: 5s\n  max_attempts: 5\n  backoff_base: 1s\n  backoff_max: 1s")
	srv := w.serve(cfg)
	body, err := fakegithub.PRPayload("opened", repoName, 9, headSHA, installation)
	if err != nil {
		t.Fatal(err)
	}
	w.waitDelivered(w.deliver(srv, "pull_request", body))
	if run := w.gh.LatestCheckRun(repoName, headSHA, "tern/shop/staging"); run == nil || !strings.HasPrefix(run.GetOutput().GetTitle(), "Awaiting apply") {
		t.Fatalf("after autoplan the staging check is %+v, want Awaiting apply (not blocking)", run)
	}
	var plan string
	for _, c := range w.gh.Comments(repoName, 9) {
		if c.GetUser().GetLogin() == fakegithub.BotLogin {
			plan = c.GetBody()
		}
	}
	if !strings.Contains(plan, "ONLINE") || strings.Contains(plan, "--allow-blocking") {
		t.Errorf("plan comment does not show the change ONLINE, or asks for --allow-blocking:\n%s", plan)
	}

	c := w.gh.AddComment(repoName, 9, "alice", "User", "/tern apply -e staging")
	body, err = fakegithub.CommentPayload(repoName, 9, c.GetID(), "alice", "User", "/tern apply -e staging", installation)
	if err != nil {
		t.Fatal(err)
	}
	w.waitDelivered(w.deliver(srv, "issue_comment", body))

	// Once the tool's triggers are on the table, hold its last row so the
	// copy stalls at its last chunk, and kill the worker there.
	waitFor(t, "the tool's triggers on orders", func() bool { return triggers(t, live) == 3 })
	tx, err := live.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("SELECT id FROM orders WHERE id = (SELECT MAX(id) FROM orders) FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the copy to reach the held row", func() bool { return copying(t, live) })
	srv.kill(t)
	waitFor(t, "the tool to die with its worker", func() bool { return len(toolProcesses()) == 0 })
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n := triggers(t, live); n != 3 {
		t.Fatalf("%d triggers after the worker died, want its 3 left for the rescue to drop", n)
	}

	applies, err := w.st.AppliesForPR(ctx, repoName, 9)
	if err != nil || len(applies) != 1 {
		t.Fatalf("applies %v (%v)", applies, err)
	}
	a := applies[0]
	w.rescue(ctx, cfg, a)
	got, err := w.st.Apply(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.Completed {
		t.Fatalf("apply after the rescue: %s (%s)", got.State, got.LastError)
	}
	if typ := columnType(t, live, "orders", "v"); typ != "bigint(20)" {
		t.Errorf("orders.v is %s after the rescue", typ)
	}
	var after int64
	if err := live.QueryRow("SELECT COUNT(*) FROM orders").Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != rows {
		t.Errorf("orders has %d rows after the rescue, had %d", after, rows)
	}
	if n := triggers(t, live); n != 0 {
		t.Errorf("%d triggers left", n)
	}
	var left string
	if err := live.QueryRow("SELECT COALESCE(GROUP_CONCAT(TABLE_NAME), '') FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME <> 'orders'").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != "" {
		t.Errorf("tables left: %s", left)
	}
	run := w.gh.LatestCheckRun(repoName, headSHA, "tern/shop/staging")
	if run == nil || run.GetConclusion() != "success" || !strings.HasPrefix(run.GetOutput().GetTitle(), "Applied") {
		t.Errorf("staging check after the rescue: %+v, want Applied", run)
	}
}

// triggers counts the triggers in db's schema (-1 when the server could
// not say: under load MariaDB sometimes fails an information_schema query
// on a temporary file).
func triggers(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()").Scan(&n); err != nil {
		t.Logf("count triggers: %v", err)
		return -1
	}
	return n
}

// copying reports whether a statement copies into a _tern_ shadow table of
// db's schema.
func copying(t *testing.T, db *sql.DB) bool {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND INFO LIKE '%INTO `%`.`\\_tern\\_%' AND ID <> CONNECTION_ID()").Scan(&n); err != nil {
		t.Logf("read the process list: %v", err)
		return false
	}
	return n > 0
}

// toolProcesses returns the pids of running pt-online-schema-change copies.
func toolProcesses() []string {
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var out []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), "pt-online-schema-change") && strings.Contains(string(b), "--alter") {
			out = append(out, p)
		}
	}
	return out
}

// rescue waits until the dead worker's lease on apply a lapses, runs (with
// config cfg) the
// recovery pass that rescues it (retrying, with a backoff), waits until it
// falls due and runs the pass that completes it (up to three, should the
// server fail an attempt transiently). It returns the rescuing
// pass's output.
func (w *world) rescue(ctx context.Context, cfg string, a *store.Apply) string {
	t := w.t
	t.Helper()
	waitFor(t, "the dead worker's lease to lapse", func() bool {
		lapsed, err := w.st.LapsedApplies(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(lapsed) == 1 && lapsed[0].ID == a.ID
	})
	rescued, sum := w.recoverPass(cfg)
	if sum != (summary{Retrying: 1, Rescued: 1}) {
		t.Fatalf("rescuing pass: %+v, want retrying=1 rescued=1\n%s", sum, rescued)
	}
	// A pass once the apply is due completes it. The shared test server
	// sometimes fails a statement for reasons of its own (a temporary
	// file gone under load): such an attempt fails transiently and a
	// later pass runs it again.
	for i := 0; ; i++ {
		waitFor(t, "the rescued apply to fall due", func() bool {
			got, err := w.st.Apply(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			return !time.Now().Before(got.NextAttemptAt)
		})
		out, sum := w.recoverPass(cfg)
		if sum == (summary{Recovered: 1}) {
			return rescued
		}
		if sum != (summary{Retrying: 1}) || i == 2 {
			t.Fatalf("pass after the backoff: %+v, want recovered=1\n%s", sum, out)
		}
		t.Logf("pass after the backoff: retrying (%s); another pass", strings.TrimSpace(out))
	}
}
