package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/store"
)

const (
	usersV1  = "CREATE TABLE users (id BIGINT NOT NULL AUTO_INCREMENT, name VARCHAR(100) NOT NULL, PRIMARY KEY (id))"
	usersV2  = "CREATE TABLE users (\n  id BIGINT NOT NULL AUTO_INCREMENT,\n  name VARCHAR(100) NOT NULL,\n  email VARCHAR(255) NOT NULL DEFAULT '',\n  PRIMARY KEY (id)\n);\n"
	ternYAML = "databases:\n  - name: shop\n    schema_dir: db/shop\n    environments: [staging]\n"
	headSHA  = "c0ffee0000000000000000000000000000000001"
)

// `tern serve` is killed with SIGKILL while its apply's ALTER waits for a
// metadata lock. Once the lock is gone and the dead worker's lease has
// lapsed, `tern recover` rescues the apply, which completes exactly once:
// the column exists once, a second pass finds nothing to do, and the check
// run ends Applied without any completed run being reopened.
func TestServeKilledMidApplyIsRescued(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	live, liveName := testdb.Open(t, "e2e_crash_live")
	server := testdb.Server(t)
	if _, err := live.Exec(usersV1); err != nil {
		t.Fatal(err)
	}
	w.gh.SetPermission(repoName, "alice", "write")
	w.gh.SetBase(repoName, map[string]string{"tern.yaml": ternYAML})
	w.gh.OpenPR(repoName, 7, headSHA, map[string]string{"tern.yaml": ternYAML, "db/shop/users.sql": usersV2})

	w.env["SHOP_STAGING_DSN"] = liveDSN(t, liveName)
	cfg := w.config(
		// A ${VAR} in a flow mapping must be quoted: YAML reads { as flow.
		`  - {repository: acme/shop, database: shop, environment: staging, mysql: {dsn: "${SHOP_STAGING_DSN}", lock_wait_timeout: 30s}}`,
		"  lease: 2s\n  max_attempts: 3\n  backoff_base: 1s\n  backoff_max: 2s")
	srv := w.serve(cfg)

	// The PR opens: autoplan.
	body, err := fakegithub.PRPayload("opened", repoName, 7, headSHA, installation)
	if err != nil {
		t.Fatal(err)
	}
	w.waitDelivered(w.deliver(srv, "pull_request", body))
	if run := w.gh.LatestCheckRun(repoName, headSHA, "tern/shop/staging"); run == nil ||
		!strings.HasPrefix(run.GetOutput().GetTitle(), "Awaiting apply") {
		t.Fatalf("after autoplan the staging check is %+v, want Awaiting apply", run)
	}

	// Another session holds the users table's metadata lock.
	tx, err := live.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("SELECT * FROM users"); err != nil {
		t.Fatal(err)
	}

	c := w.gh.AddComment(repoName, 7, "alice", "User", "/tern apply -e staging")
	body, err = fakegithub.CommentPayload(repoName, 7, c.GetID(), "alice", "User", "/tern apply -e staging", installation)
	if err != nil {
		t.Fatal(err)
	}
	w.waitDelivered(w.deliver(srv, "issue_comment", body))

	// Wait until the ledger has the apply running and its ALTER waits on the
	// lock in the server.
	var a *store.Apply
	waitFor(t, "the apply running with its ALTER waiting for the metadata lock", func() bool {
		applies, err := w.st.AppliesForPR(ctx, repoName, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(applies) != 1 || applies[0].State != store.Running {
			return false
		}
		a = applies[0]
		return waitingALTERs(t, server, liveName) == 1
	})
	tasks, err := w.st.Tasks(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || tasks[0].State != store.Running {
		t.Fatalf("tasks while the ALTER waits: %+v, want one running", tasks)
	}
	if run := w.gh.LatestCheckRun(repoName, headSHA, "tern/shop/staging"); run == nil ||
		run.GetStatus() != "in_progress" || !strings.HasPrefix(run.GetOutput().GetTitle(), "Applying") {
		t.Errorf("staging check while applying: %+v, want in_progress Applying", run)
	}

	srv.kill(t)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	// The server may still finish the dead client's ALTER now that the lock
	// is gone (MariaDB does not notice a dead client while a statement
	// waits); let it settle so the rescue meets a fixed schema.
	waitFor(t, "no ALTER left running on the live schema", func() bool { return waitingALTERs(t, server, liveName) == 0 })
	orphanDone := columnCount(t, live, "users", "email") == 1
	t.Logf("the killed worker's ALTER took effect after its death: %v", orphanDone)

	// The rescue hands the apply back with a backoff (backoff_base 1s):
	// the rescuing pass does not run it; a pass once it is due does.
	out := w.rescue(ctx, cfg, a)
	if want := fmt.Sprintf("apply %d acme/shop#7 shop/staging: rescued, retrying", a.ID); !strings.Contains(out, want) {
		t.Errorf("rescuing pass printed:\n%s\nwant a line starting %q", out, want)
	}

	got, err := w.st.Apply(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != store.Completed || got.Rescues != 1 {
		t.Errorf("apply after rescue: state %s, rescues %d; want completed, 1", got.State, got.Rescues)
	}
	if n := columnCount(t, live, "users", "email"); n != 1 {
		t.Errorf("users.email exists %d times, want 1", n)
	}
	tasks, err = w.st.Tasks(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || tasks[0].State != store.Completed {
		t.Fatalf("tasks after rescue: %+v, want one completed", tasks)
	}
	// Where the dead worker's ALTER took effect, the rescue's re-plan finds
	// it live and marks the task done without running it; otherwise the
	// rescue runs it.
	if tasks[0].Skipped != orphanDone {
		t.Errorf("task skipped=%v, want %v (the ALTER had taken effect before the rescue: %v)", tasks[0].Skipped, orphanDone, orphanDone)
	}
	if tasks[0].Attempt < 1 || tasks[0].Attempt > 2 {
		t.Errorf("task attempts %d, want 1 (killed) or 2 (killed, then run by the rescue)", tasks[0].Attempt)
	}

	run := w.gh.LatestCheckRun(repoName, headSHA, "tern/shop/staging")
	if run == nil || run.GetStatus() != "completed" || run.GetConclusion() != "success" || !strings.HasPrefix(run.GetOutput().GetTitle(), "Applied") {
		t.Errorf("staging check after the rescue: %+v, want completed/success Applied", run)
	}
	if r := w.gh.ReopenedRuns(); len(r) != 0 {
		t.Errorf("completed check runs reopened: %+v", r)
	}

	// Nothing is left for a later pass: the apply ran once.
	out, sum := w.recoverPass(cfg)
	if sum != (summary{}) {
		t.Errorf("a later pass touched applies: %+v\n%s", sum, out)
	}
}

// waitingALTERs counts ALTER statements running in the server on schema.
func waitingALTERs(t *testing.T, server *sql.DB, schema string) int {
	t.Helper()
	var n int
	err := server.QueryRow(`SELECT COUNT(*) FROM information_schema.processlist
		WHERE db = ? AND command = 'Query' AND UPPER(info) LIKE '%ALTER TABLE %' AND id <> CONNECTION_ID()`, schema).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
