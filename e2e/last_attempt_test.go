package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/store"
)

// `tern serve` is killed with SIGKILL on an apply's only attempt
// (max_attempts 1). The `tern recover` passes after it rescue the apply and
// settle it without a second dispatch: it never runs as attempt 2/1, and
// ends completed (the dead worker's ALTER took effect) or failed for good
// (it did not), with nothing run again.
func TestServeKilledOnLastAttempt(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	live, liveName := testdb.Open(t, "e2e_last_live")
	server := testdb.Server(t)
	if _, err := live.Exec(usersV1); err != nil {
		t.Fatal(err)
	}
	w.gh.SetPermission(repoName, "alice", "write")
	w.gh.SetBase(repoName, map[string]string{"tern.yaml": ternYAML})
	w.gh.OpenPR(repoName, 9, headSHA, map[string]string{"tern.yaml": ternYAML, "db/shop/users.sql": usersV2})
	w.env["SHOP_STAGING_DSN"] = liveDSN(t, liveName)
	cfg := w.config(
		`  - {repository: acme/shop, database: shop, environment: staging, mysql: {dsn: "${SHOP_STAGING_DSN}", lock_wait_timeout: 30s}}`,
		"  interval: 0s\n  lease: 2s\n  max_attempts: 1\n  backoff_base: 1s\n  backoff_max: 1s")
	srv := w.serve(cfg)
	body, err := fakegithub.PRPayload("opened", repoName, 9, headSHA, installation)
	if err != nil {
		t.Fatal(err)
	}
	w.waitDelivered(w.deliver(srv, "pull_request", body))
	tx, err := live.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("SELECT * FROM users"); err != nil {
		t.Fatal(err)
	}
	c := w.gh.AddComment(repoName, 9, "alice", "User", "/tern apply -e staging")
	body, err = fakegithub.CommentPayload(repoName, 9, c.GetID(), "alice", "User", "/tern apply -e staging", installation)
	if err != nil {
		t.Fatal(err)
	}
	w.waitDelivered(w.deliver(srv, "issue_comment", body))
	var a *store.Apply
	waitFor(t, "the apply running with its ALTER waiting for the metadata lock", func() bool {
		applies, err := w.st.AppliesForPR(ctx, repoName, 9)
		if err != nil {
			t.Fatal(err)
		}
		if len(applies) != 1 || applies[0].State != store.Running {
			return false
		}
		a = applies[0]
		return waitingALTERs(t, server, liveName) == 1
	})
	srv.kill(t)
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "no ALTER left running on the live schema", func() bool { return waitingALTERs(t, server, liveName) == 0 })
	orphanDone := columnCount(t, live, "users", "email") == 1

	// Passes until the apply is settled: a rescue, then the pass once due.
	var got *store.Apply
	for i := 0; ; i++ {
		if i > 20 {
			t.Fatalf("apply still %s after %d passes", got.State, i)
		}
		w.recoverPass(cfg)
		if got, err = w.st.Apply(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		if got.Attempt > got.MaxAttempts {
			t.Fatalf("apply dispatched as attempt %d/%d", got.Attempt, got.MaxAttempts)
		}
		if got.State.Terminal() {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	want := store.Failed
	if orphanDone {
		want = store.Completed
	}
	if got.State != want || got.Attempt != 1 || got.Rescues != 1 {
		t.Fatalf("apply %s attempt %d rescues %d (%s), want %s after 1 attempt and 1 rescue (the dead worker's ALTER took effect: %v)",
			got.State, got.Attempt, got.Rescues, got.LastError, want, orphanDone)
	}
	if n := columnCount(t, live, "users", "email"); n != map[bool]int{true: 1, false: 0}[orphanDone] {
		t.Errorf("users.email exists %d times: something ran after the last attempt", n)
	}
	run := w.gh.LatestCheckRun(repoName, headSHA, "tern/shop/staging")
	if run == nil || strings.Contains(run.GetOutput().GetTitle(), "2/1") {
		t.Errorf("staging check %+v", run.GetOutput())
	}
}
