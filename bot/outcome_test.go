package bot

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/report"
	"github.com/ternhq/tern/store"
)

// slowComments delays every comment creation, so that two reporters are
// both past their "is it posted yet?" check before either has posted.
type slowComments struct{ base http.RoundTripper }

func (s slowComments) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/comments") {
		time.Sleep(150 * time.Millisecond)
	}
	return s.base.RoundTrip(r)
}

// reporters returns a ledger and two Bots over it, each with its own
// connection pool, standing for two processes running recovery passes.
func reporters(t *testing.T) (*store.Store, *fakegithub.Server, [2]*Bot) {
	t.Helper()
	return reportersWith(t, nil)
}

// reportersWith is reporters with each Bot's options changed by opt.
func reportersWith(t *testing.T, opt func(*Options)) (*store.Store, *fakegithub.Server, [2]*Bot) {
	t.Helper()
	ctx := context.Background()
	dsn, _ := testdb.New(t, "bot_outcome")
	gh, err := fakegithub.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)
	gh.AddInstallation(repoName, inst)
	gh.OpenPR(repoName, 2, sha1, files(usersV2))
	cfg, err := config.Parse([]byte(fmt.Sprintf("store: {dsn: %q}\ngithub:\n  api_url: %q\n  app_id: %d\n  private_key: ${KEY}\n",
		dsn, gh.URL, gh.AppID)), func(string) (string, bool) { return string(gh.PrivateKeyPEM), true })
	if err != nil {
		t.Fatal(err)
	}
	var bots [2]*Bot
	var first *store.Store
	for i := range bots {
		st, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if i == 0 {
			if err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			first = st
		}
		o := Options{Config: cfg, Store: st, Runner: noRunner{}, Targets: noTargets{},
			HTTPClient: &http.Client{Transport: slowComments{http.DefaultTransport}},
			Logger:     slog.New(slog.NewTextHandler(io.Discard, nil))}
		if opt != nil {
			opt(&o)
		}
		bots[i], err = New(o)
		if err != nil {
			t.Fatal(err)
		}
	}
	return first, gh, bots
}

// newApply puts a pending apply of one statement to PR 2's staging in the
// ledger.
func newApply(t *testing.T, st *store.Store, maxAttempts int) *store.Apply {
	t.Helper()
	ctx := context.Background()
	p := &store.Plan{Repository: repoName, PR: 2, HeadSHA: sha1, InstallationID: inst, Database: "shop", Environment: "staging",
		DesiredHash: "h", Desired: []byte("[]"), Lint: []byte("[]"),
		Statements: []store.Statement{{Table: "users", Kind: "alter", DDL: "ALTER TABLE users ADD COLUMN email varchar(255)"}}}
	if err := st.SavePlan(ctx, p); err != nil {
		t.Fatal(err)
	}
	a, err := st.CreateApply(ctx, p, "alice", false, maxAttempts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// failedAfterTwo puts an apply in the ledger that failed for good on its
// second attempt: its report owes the PR a notifying comment.
func failedAfterTwo(t *testing.T, st *store.Store) *store.Apply {
	t.Helper()
	ctx := context.Background()
	a := newApply(t, st, 2)
	for i, to := range []store.State{store.FailedRetryable, store.Failed} {
		cs, err := st.Claim(ctx, store.ClaimOptions{Owner: "test", ApplyID: a.ID})
		if err != nil || len(cs) != 1 {
			t.Fatalf("claim attempt %d: %v %v", i+1, cs, err)
		}
		if a, err = st.FinishApply(ctx, cs[0], to, "lock_wait", "Error 1205: Lock wait timeout exceeded", 0); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func outcomeComments(gh *fakegithub.Server, applyID int64) int {
	n := 0
	for _, c := range gh.Comments(repoName, 2) {
		if strings.Contains(c.GetBody(), "failed for good after 2 attempts") && strings.Contains(c.GetBody(), report.OutcomeMarker(applyID)) {
			n++
		}
	}
	return n
}

// Two reporters (two recovery passes in two processes) report the same
// ended apply at the same moment: the apply's comment and the notifying
// comment are each posted once.
func TestOutcomeCommentOnceUnderRacingReporters(t *testing.T) {
	st, gh, bots := reporters(t)
	for round := 0; round < 5; round++ {
		a := failedAfterTwo(t, st)
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make([]error, len(bots))
		for i, b := range bots {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = b.Reporter().Report(context.Background(), a)
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d reporter %d: %v", round, i, err)
			}
		}
		if n := outcomeComments(gh, a.ID); n != 1 {
			t.Fatalf("round %d: %d notifying comments for apply %d, want 1", round, n, a.ID)
		}
		// The apply's own comment, created by the same race, exists once
		// too.
		applyComments := 0
		for _, c := range gh.Comments(repoName, 2) {
			if strings.Contains(c.GetBody(), report.ApplyMarker(a.ID)) {
				applyComments++
			}
		}
		if applyComments != 1 {
			t.Fatalf("round %d: %d comments for apply %d, want 1", round, applyComments, a.ID)
		}
	}
}

// GitHub refusing the notifying comment: the claim is dropped, the apply
// stays due a report, and the next report posts it, once.
func TestOutcomeCommentRetriedAfterFailedPost(t *testing.T) {
	st, gh, bots := reporters(t)
	a := failedAfterTwo(t, st)
	ctx := context.Background()
	// The apply comment is the PR's first bot comment; the notifying one
	// comes after it. Fail only the second POST.
	if err := bots[0].upsertComment(ctx, mustClient(t, bots[0]), repoName, 2, applyCommentKey(a.ID), "<!-- tern:apply:x -->", "placeholder"); err != nil {
		t.Fatal(err)
	}
	gh.FailNext(http.MethodPost, "/repos/acme/shop/issues/2/comments", http.StatusBadGateway, 1)
	if err := bots[0].Reporter().Report(ctx, a); err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("report with GitHub failing: %v, want the 502", err)
	}
	if due, err := st.ReportDue(ctx, 10); err != nil || len(due) != 1 {
		t.Fatalf("after a failed report: due %v (%v), want the apply", due, err)
	}
	if id, _, err := st.Ref(ctx, repoName, outcomeCommentKey(a.ID)); err == nil {
		t.Fatalf("claim left behind (ref id %d)", id)
	}
	if err := bots[1].Reporter().Report(ctx, a); err != nil {
		t.Fatal(err)
	}
	if n := outcomeComments(gh, a.ID); n != 1 {
		t.Errorf("%d notifying comments, want 1", n)
	}
	if due, _ := st.ReportDue(ctx, 10); len(due) != 0 {
		t.Errorf("still due a report: %v", due)
	}
}

func mustClient(t *testing.T, b *Bot) *github.Client {
	t.Helper()
	c, err := b.client(inst)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
