package bot

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/report"
	"github.com/ternhq/tern/store"
)

// runningApply puts an apply in the ledger whose first attempt is running:
// its report says "Applying".
func runningApply(t *testing.T, st *store.Store) (*store.Apply, *store.Apply) {
	t.Helper()
	a := newApply(t, st, 3)
	cs, err := st.Claim(context.Background(), store.ClaimOptions{Owner: "test", ApplyID: a.ID})
	if err != nil || len(cs) != 1 {
		t.Fatalf("claim: %v %v", cs, err)
	}
	return a, cs[0]
}

// staleReport starts a report by b of a running apply whose first write
// to GitHub (the creation of the check run) is held, and returns once that
// write has reached the fake: the reporter has read the ledger and holds
// a stale snapshot. done receives Report's error.
func staleReport(t *testing.T, st *store.Store, gh *fakegithub.Server, b *Bot) (a, running *store.Apply, hold *fakegithub.Hold, done chan error) {
	t.Helper()
	a, running = runningApply(t, st)
	hold = gh.HoldNext(http.MethodPost, "/repos/acme/shop/check-runs")
	t.Cleanup(hold.Release)
	done = make(chan error, 1)
	go func() { done <- b.Reporter().Report(context.Background(), a) }()
	<-hold.Arrived()
	return a, running, hold, done
}

// reportWaiting reports whether a connection to the ledger's database is
// waiting for a report lease held by another.
func reportWaiting(t *testing.T, st *store.Store) bool {
	t.Helper()
	var n int
	err := st.DB().QueryRow(`SELECT COUNT(*) FROM information_schema.PROCESSLIST
 WHERE DB = DATABASE() AND ID <> CONNECTION_ID() AND INFO LIKE '%GET_LOCK%tern_report%'`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// killReportLease KILLs the ledger connection holding PR 2's report lease,
// if one does, and reports whether one did.
func killReportLease(t *testing.T, st *store.Store) bool {
	t.Helper()
	var holder sql.NullInt64
	if err := st.DB().QueryRow(`SELECT IS_USED_LOCK(CONCAT('tern_report.', LEFT(SHA2(CONCAT(DATABASE(), '/', ?), 256), 40)))`,
		"acme/shop#2").Scan(&holder); err != nil {
		t.Fatal(err)
	}
	if !holder.Valid {
		return false
	}
	if _, err := st.DB().Exec(fmt.Sprintf("KILL %d", holder.Int64)); err != nil {
		t.Fatal(err)
	}
	return true
}

// Two reporters of one apply (a recovery pass and a server, or two pods):
// the first read the ledger while the apply ran and its GitHub write is
// delayed; meanwhile the apply completes and the second reporter reports
// it. Whatever order GitHub receives the writes in, the PR ends showing the
// ledger's newest state: the per-environment check, the `tern` check and
// the apply comment all say Applied, and the apply is reported.
func TestRacingReportsEndOnNewestState(t *testing.T) {
	st, gh, bots := reporters(t)
	ctx := context.Background()
	a, running, hold, staleDone := staleReport(t, st, gh, bots[0])

	final, err := st.FinishApply(ctx, running, store.Completed, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	freshDone := make(chan error, 1)
	go func() { freshDone <- bots[1].Reporter().Report(ctx, a) }()
	// Either the fresh reporter finishes while the stale write is held (the
	// race), or it waits for the stale reporter to finish first (ordered).
	var freshErr error
	fresh := false
	for !fresh && !reportWaiting(t, st) {
		select {
		case freshErr = <-freshDone:
			fresh = true
		case <-time.After(10 * time.Millisecond):
		}
	}
	hold.Release()
	if err := <-staleDone; err != nil {
		t.Fatalf("stale reporter: %v", err)
	}
	if !fresh {
		freshErr = <-freshDone
	}
	if freshErr != nil {
		t.Fatalf("fresh reporter: %v", freshErr)
	}

	assertShowsNewest(t, st, gh, final)
}

// assertShowsNewest fails the test unless the PR shows final, the apply's
// newest state, on its check, the `tern` check and the apply comment, and
// final is marked reported.
func assertShowsNewest(t *testing.T, st *store.Store, gh *fakegithub.Server, final *store.Apply) {
	t.Helper()
	ctx := context.Background()
	a := final
	tasks, err := st.Tasks(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := report.ApplyCheck(final, tasks)
	if r := gh.LatestCheckRun(repoName, sha1, want.Name); r == nil || r.GetStatus() != "completed" || r.GetConclusion() != "success" ||
		r.GetOutput().GetTitle() != want.Title {
		t.Errorf("%s shows %s/%s %q, want completed/success %q", want.Name, r.GetStatus(), r.GetConclusion(), r.GetOutput().GetTitle(), want.Title)
	}
	if r := gh.LatestCheckRun(repoName, sha1, report.AggregateName); r == nil || r.GetStatus() != "completed" || r.GetConclusion() != "success" {
		t.Errorf("tern shows %s/%s %q, want completed/success", r.GetStatus(), r.GetConclusion(), r.GetOutput().GetTitle())
	}
	wantBody := report.ApplyComment(final, tasks)
	for _, c := range gh.Comments(repoName, 2) {
		if strings.Contains(c.GetBody(), report.ApplyMarker(a.ID)) && c.GetBody() != wantBody {
			t.Errorf("apply comment shows:\n%s\nwant:\n%s", c.GetBody(), wantBody)
		}
	}
	if re := gh.ReopenedRuns(); len(re) != 0 {
		t.Errorf("completed runs reopened: %+v", re)
	}
	if due, err := st.ReportDue(ctx, 10); err != nil || len(due) != 0 {
		t.Errorf("still due a report: %v %v", due, err)
	}
}

// The stale reporter's ledger connection is killed while its write is in
// flight: its lease is gone, the fresh reporter takes it and reports the
// completed apply, and only then does the stale write land. The stale
// reporter finds its lease lost and reports again, so the PR still ends on
// the newest state.
func TestReportLeaseLostWhileWriting(t *testing.T) {
	st, gh, bots := reporters(t)
	ctx := context.Background()
	a, running, hold, staleDone := staleReport(t, st, gh, bots[0])
	// Kill whatever connection holds the PR's report lease; on today's
	// main there is none, and the race is the one above.
	killReportLease(t, st)
	final, err := st.FinishApply(ctx, running, store.Completed, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := bots[1].Reporter().Report(ctx, a); err != nil {
		t.Fatalf("fresh reporter: %v", err)
	}
	hold.Release()
	if err := <-staleDone; err != nil {
		t.Fatalf("stale reporter: %v", err)
	}
	assertShowsNewest(t, st, gh, final)
}

// The stale reporter loses its lease while its write is in flight, the
// fresh reporter reports the completed apply, and only then does the stale
// write land, after which the stale reporter dies (SIGKILL: it never finds
// its lease lost, never reports again). The ledger says reported, yet the
// PR shows Applying. The fresh reporter saw a write of the stale one in
// flight when it took over: the apply is reported again once that write
// can no longer land (one try's timeout later), and recovery passes bring
// the PR back to the newest state.
func TestReporterKilledWhileWritingIsRedone(t *testing.T) {
	st, gh, bots := reportersWith(t, func(o *Options) { o.GitHubRetry.TryTimeout = time.Second })
	ctx := context.Background()
	a, running := runningApply(t, st)
	hold := gh.HoldNext(http.MethodPost, "/repos/acme/shop/check-runs")
	t.Cleanup(hold.Release)
	staleCtx, kill := context.WithCancel(ctx)
	defer kill()
	staleDone := make(chan error, 1)
	go func() { staleDone <- bots[0].Reporter().Report(staleCtx, a) }()
	<-hold.Arrived()

	if !killReportLease(t, st) {
		t.Fatal("no connection holds PR 2's report lease")
	}
	final, err := st.FinishApply(ctx, running, store.Completed, "", "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := bots[1].Reporter().Report(ctx, a); err != nil {
		t.Fatalf("fresh reporter: %v", err)
	}
	if err := st.MarkReported(ctx, a.ID, final.Version); err != nil {
		t.Fatal(err)
	}
	// The stale reporter dies; its held write lands after the fresh one.
	kill()
	hold.Release()
	<-staleDone
	deadline := time.Now().Add(time.Minute)
	for gh.LatestCheckRun(repoName, sha1, "tern/shop/staging").GetStatus() == "completed" {
		if time.Now().After(deadline) {
			t.Fatal("the stale write never landed")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Recovery passes: report what is due until the PR shows the apply's
	// newest state and nothing is due.
	for {
		due, err := st.ReportDue(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range due {
			if err := bots[1].Reporter().Report(ctx, d); err != nil {
				t.Fatalf("report: %v", err)
			}
			if err := st.MarkReported(ctx, d.ID, d.Version); err != nil {
				t.Fatal(err)
			}
		}
		if len(due) == 0 && gh.LatestCheckRun(repoName, sha1, "tern/shop/staging").GetStatus() == "completed" {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	assertShowsNewest(t, st, gh, final)
}

// A reporter claimed the apply comment (to post it exactly once) and died
// before posting it, with or without a write in flight. The next reporter
// takes the claim over as soon as the dead one's writes can no longer land
// (at once, or one try's timeout after the write in flight was sent),
// instead of waiting out the claim's two minutes, and the comment is
// posted once.
func TestDeadReportersCommentClaimTakenOver(t *testing.T) {
	for _, inFlight := range []bool{false, true} {
		t.Run(fmt.Sprintf("in flight %v", inFlight), func(t *testing.T) {
			st, gh, bots := reportersWith(t, func(o *Options) { o.GitHubRetry.TryTimeout = time.Second })
			ctx := context.Background()
			a := newApply(t, st, 3)
			dead, err := st.BeginReportWrite(ctx, a.ID, 3*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if inFlight {
				if err := st.ReportWriteSending(ctx, dead); err != nil {
					t.Fatal(err)
				}
			}
			if c, err := st.ClaimRef(ctx, repoName, fmt.Sprintf("apply/%d/comment", a.ID), time.Hour); err != nil || c == nil {
				t.Fatalf("claim: %v %v", c, err)
			}
			if err := bots[1].Reporter().Report(ctx, a); err != nil {
				t.Fatalf("report after the dead reporter: %v", err)
			}
			n := 0
			for _, c := range gh.Comments(repoName, 2) {
				if strings.Contains(c.GetBody(), report.ApplyMarker(a.ID)) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d apply comments, want 1", n)
			}
		})
	}
}
