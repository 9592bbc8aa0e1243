package recovery_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/recovery"
	"github.com/ternhq/tern/recovery/recoverytest"
	"github.com/ternhq/tern/store"
)

// helperEnv makes the test binary run one recovery pass against the
// ledger at its DSN instead of running tests (see TestMain).
const helperEnv = "TERN_RECOVERY_HELPER_DSN"

func TestMain(m *testing.M) {
	if dsn := os.Getenv(helperEnv); dsn != "" {
		os.Exit(helperPass(dsn))
	}
	os.Exit(m.Run())
}

// helperPass is one process of TestConcurrentProcesses: one pass, its
// summary on stdout.
func helperPass(dsn string) int {
	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer st.Close()
	p := &recovery.Pass{
		Store:  st,
		Runner: &recoverytest.LedgerRunner{Store: st, Engine: recoverytest.NewEngine(st.DB()), RetryIn: time.Hour},
		Limit:  10000, Parallel: 4, Lease: time.Minute,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	res, err := p.Run(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(res.Summary())
	return 0
}

// env is one test's ledger and fast engine.
type env struct {
	dsn string
	st  *store.Store
	eng *recoverytest.Engine
}

func newEnv(t testing.TB) *env {
	t.Helper()
	dsn, _ := testdb.New(t, "recovery")
	ctx := context.Background()
	st := openStore(t, dsn)
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if err := recoverytest.Migrate(ctx, st.DB()); err != nil {
		t.Fatal(err)
	}
	return &env{dsn: dsn, st: st, eng: recoverytest.NewEngine(st.DB())}
}

func openStore(t testing.TB, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// seed creates n due applies of tasks statements each, on n targets of one
// repository (one active apply per target), PR i+1 for apply i.
func (e *env) seed(t testing.TB, n, tasks, maxAttempts int) []*store.Apply {
	t.Helper()
	ctx := context.Background()
	out := make([]*store.Apply, 0, n)
	for i := range n {
		p := &store.Plan{
			Repository: "acme/shop", PR: i + 1, HeadSHA: fmt.Sprintf("%040x", i+1), InstallationID: 7,
			Database: fmt.Sprintf("db%d", i), Environment: "staging", DesiredHash: "h" + strconv.Itoa(i),
			Desired: []byte("[]"), Lint: []byte("[]"),
		}
		for s := range tasks {
			p.Statements = append(p.Statements, store.Statement{
				Table: fmt.Sprintf("t%d", s), Kind: "create",
				DDL: fmt.Sprintf("CREATE TABLE t%d (id int PRIMARY KEY)", s),
			})
		}
		if err := e.st.SavePlan(ctx, p); err != nil {
			t.Fatalf("save plan: %v", err)
		}
		a, err := e.st.CreateApply(ctx, p, "octocat", false, maxAttempts)
		if err != nil {
			t.Fatalf("create apply: %v", err)
		}
		out = append(out, a)
	}
	return out
}

func (e *env) pass(opts ...func(*recovery.Pass)) *recovery.Pass {
	p := &recovery.Pass{
		Store:  e.st,
		Runner: &recoverytest.LedgerRunner{Store: e.st, Engine: e.eng, RetryIn: time.Hour},
		Limit:  1000, Parallel: 4, Lease: time.Minute,
		// Rescued applies are due at once unless a test says otherwise.
		RescueBackoff: func(int) time.Duration { return 0 },
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func (e *env) run(t testing.TB, p *recovery.Pass) *recovery.Result {
	t.Helper()
	res, err := p.Run(context.Background())
	if err != nil {
		t.Fatalf("pass: %v", err)
	}
	return res
}

func (e *env) apply(t testing.TB, id int64) *store.Apply {
	t.Helper()
	a, err := e.st.Apply(context.Background(), id)
	if err != nil {
		t.Fatalf("read apply %d: %v", id, err)
	}
	return a
}

func (e *env) runs(t testing.TB) map[int64]map[int]int {
	t.Helper()
	r, err := recoverytest.Runs(context.Background(), e.st.DB())
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkOnce fails unless every task of every apply ran exactly once.
func (e *env) checkOnce(t testing.TB, applies []*store.Apply, tasks int) {
	t.Helper()
	runs := e.runs(t)
	bad := 0
	for _, a := range applies {
		for seq := 1; seq <= tasks; seq++ {
			if n := runs[a.ID][seq]; n != 1 {
				bad++
				if bad <= 5 {
					t.Errorf("apply %d task %d executed %d times, want 1", a.ID, seq, n)
				}
			}
		}
		if got := e.apply(t, a.ID); got.State != store.Completed {
			t.Errorf("apply %d is %s, want completed", a.ID, got.State)
		}
	}
	if bad > 5 {
		t.Errorf("... %d tasks in all not executed exactly once", bad)
	}
}

func TestPassRunsDueApplies(t *testing.T) {
	e := newEnv(t)
	applies := e.seed(t, 5, 2, 5)
	res := e.run(t, e.pass())
	e.checkOnce(t, applies, 2)
	if res.Recovered != 5 || res.Retrying != 0 || res.Failed != 0 || res.Rescued != 0 {
		t.Errorf("summary %s, want recovered=5 retrying=0 failed=0 rescued=0", res.Summary())
	}
	if len(res.Lines) != 5 {
		t.Fatalf("%d lines, want 5", len(res.Lines))
	}
	for i, l := range res.Lines {
		if l.Apply.ID != applies[i].ID || l.Apply.State != store.Completed || l.Err != "" {
			t.Errorf("line %d: apply %d %s err %q, want apply %d completed", i, l.Apply.ID, l.Apply.State, l.Err, applies[i].ID)
		}
	}
	// A second pass finds nothing to do.
	res = e.run(t, e.pass())
	if len(res.Lines) != 0 || res.Summary() != "recovered=0 retrying=0 failed=0 rescued=0" {
		t.Errorf("second pass touched %d applies: %s", len(res.Lines), res.Summary())
	}
	e.checkOnce(t, applies, 2)
}

func TestPassLimit(t *testing.T) {
	e := newEnv(t)
	e.seed(t, 7, 1, 5)
	for _, tc := range []struct{ limit, want int }{{3, 3}, {3, 3}, {3, 1}, {3, 0}} {
		res := e.run(t, e.pass(func(p *recovery.Pass) { p.Limit = tc.limit; p.Parallel = 2 }))
		if res.Recovered != tc.want {
			t.Errorf("pass with limit %d recovered %d, want %d", tc.limit, res.Recovered, tc.want)
		}
	}
}

// Four passes, each with its own Store (own connections), at once over 200
// due applies: each task executes exactly once.
func TestConcurrentPasses(t *testing.T) {
	e := newEnv(t)
	const n, tasks = 200, 2
	applies := e.seed(t, n, tasks, 5)
	var wg sync.WaitGroup
	results := make([]*recovery.Result, 4)
	errs := make([]error, 4)
	for i := range 4 {
		st := openStore(t, e.dsn)
		p := &recovery.Pass{
			Store:  st,
			Runner: &recoverytest.LedgerRunner{Store: st, Engine: recoverytest.NewEngine(st.DB()), RetryIn: time.Hour},
			Owner:  fmt.Sprintf("pass-%d", i), Limit: 1000, Parallel: 4, Lease: time.Minute,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = p.Run(context.Background())
		}()
	}
	wg.Wait()
	total := 0
	for i := range 4 {
		if errs[i] != nil {
			t.Fatalf("pass %d: %v", i, errs[i])
		}
		total += results[i].Recovered
	}
	if total != n {
		t.Errorf("passes recovered %d applies in all, want %d", total, n)
	}
	e.checkOnce(t, applies, tasks)
}

// Four processes (this test binary re-executed), each one pass, at once
// over 200 due applies: each task executes exactly once.
func TestConcurrentProcesses(t *testing.T) {
	e := newEnv(t)
	const n, tasks = 200, 2
	applies := e.seed(t, n, tasks, 5)
	cmds := make([]*exec.Cmd, 4)
	outs := make([]*lockedBuffer, 4)
	for i := range cmds {
		outs[i] = &lockedBuffer{}
		cmds[i] = exec.Command(os.Args[0])
		cmds[i].Env = append(os.Environ(), helperEnv+"="+e.dsn)
		cmds[i].Stdout, cmds[i].Stderr = outs[i], outs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for i, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Fatalf("process %d: %v\n%s", i, err, outs[i].String())
		}
		var rec, retry, fail, resc int
		if _, err := fmt.Sscanf(outs[i].String(), "recovered=%d retrying=%d failed=%d rescued=%d", &rec, &retry, &fail, &resc); err != nil {
			t.Fatalf("process %d printed %q: %v", i, outs[i].String(), err)
		}
		total += rec
	}
	if total != n {
		t.Errorf("processes recovered %d applies in all, want %d", total, n)
	}
	e.checkOnce(t, applies, tasks)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// A transient fault that clears: the first pass leaves the apply retrying,
// the next (once it is due) completes it, each task executed once.
func TestTransientFaultClears(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.seed(t, 1, 2, 5)[0]
	if err := recoverytest.SetFault(ctx, e.st.DB(), a.ID, 1); err != nil {
		t.Fatal(err)
	}
	res := e.run(t, e.pass())
	if res.Retrying != 1 || res.Recovered != 0 {
		t.Fatalf("first pass: %s, want retrying=1", res.Summary())
	}
	got := e.apply(t, a.ID)
	if got.State != store.FailedRetryable || got.Attempt != 1 || got.ErrorClass != "lock_wait_timeout" {
		t.Fatalf("after the fault: %s attempt %d class %q, want failed_retryable attempt 1 lock_wait_timeout", got.State, got.Attempt, got.ErrorClass)
	}
	// Not due yet: a pass leaves it alone.
	if res := e.run(t, e.pass()); len(res.Lines) != 0 {
		t.Fatalf("a pass ran an apply that is not due: %s", res.Summary())
	}
	if _, err := e.st.RetryNow(ctx, a.ID, "octocat"); err != nil {
		t.Fatal(err)
	}
	res = e.run(t, e.pass())
	if res.Recovered != 1 {
		t.Fatalf("second pass: %s, want recovered=1", res.Summary())
	}
	if got := e.apply(t, a.ID); got.Attempt != 2 {
		t.Errorf("completed at attempt %d, want 2", got.Attempt)
	}
	e.checkOnce(t, []*store.Apply{a}, 2)
}

// A fault that never clears: after max_attempts the apply fails for good
// with retries_exhausted, and its DDL never ran.
func TestFaultNeverClears(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const maxAttempts = 3
	a := e.seed(t, 1, 1, maxAttempts)[0]
	if err := recoverytest.SetFault(ctx, e.st.DB(), a.ID, recoverytest.Forever); err != nil {
		t.Fatal(err)
	}
	var res *recovery.Result
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		res = e.run(t, e.pass())
		if attempt < maxAttempts {
			if res.Retrying != 1 || res.Failed != 0 {
				t.Fatalf("attempt %d: %s, want retrying=1", attempt, res.Summary())
			}
			if _, err := e.st.RetryNow(ctx, a.ID, "octocat"); err != nil {
				t.Fatalf("retry now after attempt %d: %v", attempt, err)
			}
		}
	}
	if res.Failed != 1 || res.Retrying != 0 {
		t.Fatalf("last pass: %s, want failed=1 retrying=0", res.Summary())
	}
	got := e.apply(t, a.ID)
	if got.State != store.Failed || got.ErrorClass != store.ClassRetriesExhausted || got.Attempt != maxAttempts {
		t.Errorf("apply: %s class %q attempt %d, want failed %s attempt %d", got.State, got.ErrorClass, got.Attempt, store.ClassRetriesExhausted, maxAttempts)
	}
	if runs := e.runs(t); len(runs[a.ID]) != 0 {
		t.Errorf("DDL ran %v times under a fault that never cleared", runs[a.ID])
	}
}

// crashRunner is a worker that dies: it returns without ending the
// attempt, so the apply stays running until its lease lapses.
type crashRunner struct{}

func (crashRunner) Run(ctx context.Context, a *store.Apply) (*store.Apply, error) {
	return nil, errors.New("worker died")
}

// waitLapsed waits until the ledger sees a's lease as lapsed.
func (e *env) waitLapsed(t testing.TB, id int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		lapsed, err := e.st.LapsedApplies(context.Background(), 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range lapsed {
			if a.ID == id {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("lease of apply %d never lapsed", id)
}

// A running apply whose worker died is rescued by the next pass and then
// completes, each task executed once.
func TestLapsedLeaseRescued(t *testing.T) {
	e := newEnv(t)
	a := e.seed(t, 1, 2, 5)[0]
	res := e.run(t, e.pass(func(p *recovery.Pass) { p.Runner = crashRunner{}; p.Lease = 50 * time.Millisecond }))
	if got := e.apply(t, a.ID); got.State != store.Running {
		t.Fatalf("after the worker died the apply is %s, want running", got.State)
	}
	if res.Errors != 1 {
		t.Errorf("the pass whose worker died counted %d errors, want 1", res.Errors)
	}
	e.waitLapsed(t, a.ID)
	res = e.run(t, e.pass())
	if res.Rescued != 1 || res.Recovered != 1 {
		t.Fatalf("rescuing pass: %s, want recovered=1 rescued=1", res.Summary())
	}
	if want := []recovery.Action{recovery.ActionRescued, recovery.ActionRan}; fmt.Sprint(res.Lines[0].Actions) != fmt.Sprint(want) {
		t.Errorf("actions %v, want %v", res.Lines[0].Actions, want)
	}
	got := e.apply(t, a.ID)
	if got.Rescues != 1 {
		t.Errorf("rescues %d, want 1", got.Rescues)
	}
	e.checkOnce(t, []*store.Apply{a}, 2)
}

// An apply whose worker keeps dying fails for good with rescue_exhausted
// once it has been rescued MaxRescues times, and never runs again.
func TestRescueExhausted(t *testing.T) {
	e := newEnv(t)
	a := e.seed(t, 1, 1, 10)[0]
	const maxRescues = 2
	crash := func(p *recovery.Pass) {
		p.Runner = crashRunner{}
		p.Lease = 50 * time.Millisecond
		p.MaxRescues = maxRescues
	}
	e.run(t, e.pass(crash))
	rescued := 0
	for range maxRescues + 1 {
		e.waitLapsed(t, a.ID)
		res := e.run(t, e.pass(crash))
		rescued += res.Rescued
		if got := e.apply(t, a.ID); got.State == store.Failed {
			if got.ErrorClass != store.ClassRescueExhausted {
				t.Fatalf("failed with class %q, want %s", got.ErrorClass, store.ClassRescueExhausted)
			}
			if res.Failed != 1 {
				t.Errorf("exhausting pass: %s, want failed=1", res.Summary())
			}
			break
		}
	}
	got := e.apply(t, a.ID)
	if got.State != store.Failed {
		t.Fatalf("after %d rescues the apply is %s, want failed", rescued, got.State)
	}
	if got.Rescues < maxRescues {
		t.Errorf("failed for good after %d rescues, want at least %d", got.Rescues, maxRescues)
	}
	if res := e.run(t, e.pass()); len(res.Lines) != 0 {
		t.Errorf("a pass touched the apply after it failed for good: %s", res.Summary())
	}
	if runs := e.runs(t); len(runs[a.ID]) != 0 {
		t.Errorf("DDL ran: %v", runs[a.ID])
	}
}

// fakePRs is GitHub's view of which PRs are closed; HandleClosed does to the
// ledger what the bot's closed-PR handler does.
type fakePRs struct {
	st     *store.Store
	closed map[int]bool // PR -> merged
	mu     sync.Mutex
	asked  []int
	closes []int
	err    error
}

func (f *fakePRs) PRClosed(ctx context.Context, pr store.PRRef) (bool, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, pr.PR)
	if f.err != nil {
		return false, false, f.err
	}
	merged, ok := f.closed[pr.PR]
	return ok, merged, nil
}

func (f *fakePRs) HandleClosed(ctx context.Context, pr store.PRRef, merged bool) error {
	f.mu.Lock()
	f.closes = append(f.closes, pr.PR)
	f.mu.Unlock()
	applies, err := f.st.AppliesForPR(ctx, pr.Repository, pr.PR)
	if err != nil {
		return err
	}
	for _, a := range applies {
		if a.State == store.Pending || a.State == store.FailedRetryable {
			if _, err := f.st.Cancel(ctx, a.ID, "tern", "pull request closed"); err != nil {
				return err
			}
		}
	}
	_, err = f.st.ReleaseLocks(ctx, pr.Repository, pr.PR, "", "")
	return err
}

// A PR closed while its webhook was missed is found by the pass: its due
// apply is cancelled, not run; the other PR's apply runs.
func TestClosedPRFound(t *testing.T) {
	e := newEnv(t)
	applies := e.seed(t, 2, 1, 5) // PR 1 and PR 2
	prs := &fakePRs{st: e.st, closed: map[int]bool{2: false}}
	res := e.run(t, e.pass(func(p *recovery.Pass) { p.PRs = prs }))
	if fmt.Sprint(prs.closes) != "[2]" {
		t.Errorf("HandleClosed called for PRs %v, want [2]", prs.closes)
	}
	if len(prs.asked) != 2 {
		t.Errorf("asked GitHub about PRs %v, want both", prs.asked)
	}
	if res.ClosedPRs != 1 || res.Cancelled != 1 || res.Recovered != 1 {
		t.Errorf("pass: closed_prs=%d cancelled=%d %s, want 1, 1, recovered=1", res.ClosedPRs, res.Cancelled, res.Summary())
	}
	if got := e.apply(t, applies[1].ID); got.State != store.Cancelled {
		t.Errorf("closed PR's apply is %s, want cancelled", got.State)
	}
	runs := e.runs(t)
	if len(runs[applies[1].ID]) != 0 {
		t.Errorf("closed PR's DDL ran: %v", runs[applies[1].ID])
	}
	if runs[applies[0].ID][1] != 1 {
		t.Errorf("open PR's DDL ran %d times, want 1", runs[applies[0].ID][1])
	}
}

// GitHub failing to answer whether a PR is closed does not stop the pass.
func TestClosedPRCheckErrorCarriesOn(t *testing.T) {
	e := newEnv(t)
	a := e.seed(t, 1, 1, 5)[0]
	prs := &fakePRs{st: e.st, err: errors.New("github: 502 bad gateway")}
	res := e.run(t, e.pass(func(p *recovery.Pass) { p.PRs = prs }))
	if res.Recovered != 1 || res.Errors != 1 {
		t.Errorf("pass: %s errors=%d, want recovered=1 errors=1", res.Summary(), res.Errors)
	}
	e.checkOnce(t, []*store.Apply{a}, 1)
}

// reporter records reports and fails while failing is set.
type reporter struct {
	mu      sync.Mutex
	failing bool
	got     []store.Apply
}

func (r *reporter) Report(ctx context.Context, a *store.Apply) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failing {
		return errors.New("github: 503 service unavailable")
	}
	r.got = append(r.got, *a)
	return nil
}

// A reporter error leaves the apply report-due; the next pass, with
// nothing else to do, reports it.
func TestReportErrorRetriedNextPass(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := e.seed(t, 1, 1, 5)[0]
	rep := &reporter{failing: true}
	res := e.run(t, e.pass(func(p *recovery.Pass) { p.Reporter = rep }))
	if res.Recovered != 1 || res.ReportErrors != 1 || res.Reported != 0 {
		t.Fatalf("pass: %s reported=%d report_errors=%d, want recovered=1 reported=0 report_errors=1", res.Summary(), res.Reported, res.ReportErrors)
	}
	if res.Lines[0].Reported || res.Lines[0].ReportErr == "" {
		t.Errorf("line: reported=%v report_err=%q, want the report error", res.Lines[0].Reported, res.Lines[0].ReportErr)
	}
	due, err := e.st.ReportDue(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].ID != a.ID {
		t.Fatalf("report-due after a failed report: %d applies, want apply %d", len(due), a.ID)
	}
	rep.failing = false
	res = e.run(t, e.pass(func(p *recovery.Pass) { p.Reporter = rep }))
	if len(res.Lines) != 0 || res.Reported != 1 {
		t.Fatalf("next pass: %d lines reported=%d, want 0 lines and 1 report", len(res.Lines), res.Reported)
	}
	if len(rep.got) != 1 || rep.got[0].ID != a.ID || rep.got[0].State != store.Completed {
		t.Fatalf("reports %+v, want apply %d completed", rep.got, a.ID)
	}
	if due, err := e.st.ReportDue(ctx, 10); err != nil || len(due) != 0 {
		t.Errorf("report-due after the report: %d applies (err %v), want none", len(due), err)
	}
	// Nothing left: a third pass reports nothing.
	if res := e.run(t, e.pass(func(p *recovery.Pass) { p.Reporter = rep })); res.Reported != 0 {
		t.Errorf("third pass reported %d applies, want 0", res.Reported)
	}
}

// Loop runs passes until its context ends.
func TestLoop(t *testing.T) {
	e := newEnv(t)
	a := e.seed(t, 1, 1, 5)[0]
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		recovery.Loop(ctx, e.pass(), 10*time.Millisecond)
		close(done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for e.apply(t, a.ID).State != store.Completed {
		if time.Now().After(deadline) {
			t.Fatal("the loop never completed the apply")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	e.checkOnce(t, []*store.Apply{a}, 1)
}

func TestRunNeedsStoreAndRunner(t *testing.T) {
	if _, err := (&recovery.Pass{}).Run(context.Background()); err == nil {
		t.Error("a pass without Store and Runner ran")
	}
}
