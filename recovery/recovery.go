// Package recovery runs tern's recovery pass: it drives the durable queue of
// applies kept in the ledger. A pass rescues applies whose worker died,
// reconciles pull requests closed while a webhook was missed, fails for good
// what is out of attempts, claims due applies (SKIP LOCKED, so any number of
// passes may run at once) and runs them through the apply runner, then
// reports every apply it touched, and every apply whose latest state has not
// reached GitHub, to the pull request.
//
// The same pass runs from `tern recover` (one pass, then exit; the scheduled
// GitHub Action) and inside `tern serve` through Loop.
//
// # Order of a pass
//
//  1. Rescue: running applies whose lease lapsed are handed back through
//     store.Rescue (failed_retryable, due now; rescue_exhausted past
//     MaxRescues). The runner re-plans them against the live schema before
//     anything runs.
//  2. Closed pull requests: for every PR holding a lock or an active apply,
//     PRs.PRClosed asks GitHub; a closed one is handed to PRs.HandleClosed
//     (locks released, pending and retrying applies cancelled). This runs
//     before claiming so that DDL of a PR closed behind tern's back is not
//     run.
//  3. Out of attempts: store.FailExhausted fails them for good
//     (retries_exhausted), before claiming and again after running.
//  4. Claim and run: up to Limit due applies are claimed one at a time by
//     Parallel workers (each claim is a short SKIP LOCKED transaction, so a
//     claimed apply's lease starts when a worker is ready for it) and run
//     through Runner.
//  5. Report: Reporter.Report for each touched apply and each apply the
//     ledger says is report-due, read fresh from the ledger; on success the
//     version reported is recorded with store.MarkReported. A failed report
//     leaves the apply report-due, so the next pass retries it: the ledger
//     is the truth, GitHub a view of it.
//
// # Touched
//
// An apply is touched by a pass when that pass changed its state in the
// ledger: it rescued it, claimed and ran it (whatever the outcome), failed
// it for good as out of attempts, or its state changed while the pass
// handled its closed pull request. Applies that were only reported are not
// touched. The counts of Result are taken over touched applies, by the state
// each is in at the end of the pass.
package recovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ternhq/tern/metrics"
	"github.com/ternhq/tern/store"
)

// Runner runs one claimed apply's attempt to its end (completed, failed or
// failed_retryable) and returns the apply as stored afterwards.
// (*apply.Runner).Run satisfies it.
type Runner interface {
	Run(ctx context.Context, a *store.Apply) (*store.Apply, error)
}

// Reporter shows an apply's current state on its pull request (check run,
// apply comment, notifying comment). The bot's reporter satisfies it.
type Reporter interface {
	Report(ctx context.Context, a *store.Apply) error
}

// PRs asks GitHub whether a pull request was closed and carries out what
// closing it means (the same handler as the pull_request closed webhook).
// The bot satisfies it.
type PRs interface {
	PRClosed(ctx context.Context, pr store.PRRef) (closed, merged bool, err error)
	HandleClosed(ctx context.Context, pr store.PRRef, merged bool) error
}

// Defaults of Pass fields left zero.
const (
	DefaultLimit      = 100
	DefaultParallel   = 4
	DefaultMaxRescues = 3
	DefaultLease      = 5 * time.Minute
)

// batch bounds how many rows one ledger query of the pass returns.
const batch = 500

// Pass is one recovery pass's configuration. A Pass may be run many times
// (Loop does), and any number of passes may run at once against one ledger,
// in one process or many.
type Pass struct {
	// Store is the ledger. Required.
	Store *store.Store
	// Runner runs claimed applies. Required.
	Runner Runner
	// Reporter reports applies to GitHub. Nil skips reporting: applies stay
	// report-due for a pass that has one.
	Reporter Reporter
	// PRs checks for pull requests closed behind tern's back. Nil skips
	// that step.
	PRs PRs
	// Owner names this process in leases. Default host/pid.
	Owner string
	// Limit bounds how many applies one pass claims. Default 100.
	Limit int
	// Parallel bounds how many applies run (and how many reports are sent)
	// at once. Default 4.
	Parallel int
	// MaxRescues fails an apply for good (rescue_exhausted) once it has been
	// rescued this many times. Default 3.
	MaxRescues int
	// Lease is how long a claim owns an apply before the runner must extend
	// it. Default 5m.
	Lease time.Duration
	// Logger receives the pass's log. Default slog.Default().
	Logger *slog.Logger
	// Metrics, when not nil, records pass durations, claim latencies and
	// the state changes the pass itself makes (rescues, exhaustion).
	Metrics *metrics.Metrics
}

// Action says what a pass did to an apply.
type Action string

// Actions of a pass, in the order a pass takes them.
const (
	ActionRescued   Action = "rescued"
	ActionClosed    Action = "closed_pr"
	ActionExhausted Action = "exhausted"
	ActionRan       Action = "ran"
)

// Line is what one pass did to one apply, and where that left it.
type Line struct {
	// Apply is the apply as the ledger held it at the end of the pass (or
	// as last seen, when the ledger could not be read again).
	Apply *store.Apply
	// Actions lists what the pass did to it, in order.
	Actions []Action
	// Err is an error the pass met while handling the apply (the runner
	// lost its lease, the store failed); "" when none.
	Err string
	// Reported is true when the pass reported the apply's final state to
	// GitHub; ReportErr holds the error when that failed.
	Reported  bool
	ReportErr string
}

// Result is the outcome of one pass.
type Result struct {
	// Lines has one entry per touched apply, ordered by apply id.
	Lines []Line
	// Recovered counts touched applies now completed.
	Recovered int
	// Retrying counts touched applies now failed_retryable.
	Retrying int
	// Failed counts touched applies now failed (for good).
	Failed int
	// Rescued counts rescues this pass made (including those that failed
	// the apply as rescue_exhausted).
	Rescued int
	// Cancelled counts touched applies now cancelled.
	Cancelled int
	// ClosedPRs counts pull requests found closed and handled.
	ClosedPRs int
	// Reported counts applies reported to GitHub; ReportErrors those whose
	// report failed (they stay report-due).
	Reported, ReportErrors int
	// Errors counts steps or applies that met an error other than a report
	// error; the pass carries on past them.
	Errors int
}

// Summary is the pass's summary line:
// "recovered=N retrying=N failed=N rescued=N".
func (r *Result) Summary() string {
	return fmt.Sprintf("recovered=%d retrying=%d failed=%d rescued=%d", r.Recovered, r.Retrying, r.Failed, r.Rescued)
}

// tracker collects touched applies while a pass runs; safe for concurrent
// use.
type tracker struct {
	mu    sync.Mutex
	lines map[int64]*Line
	res   Result
}

func (t *tracker) touch(a *store.Apply, act Action, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	l, ok := t.lines[a.ID]
	if !ok {
		l = &Line{}
		t.lines[a.ID] = l
	}
	l.Apply = a
	l.Actions = append(l.Actions, act)
	if err != nil {
		l.Err = err.Error()
		t.res.Errors++
	}
}

func (t *tracker) count(f func(r *Result)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(&t.res)
}

func (p *Pass) defaults() Pass {
	q := *p
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	if q.Parallel <= 0 {
		q.Parallel = DefaultParallel
	}
	if q.MaxRescues <= 0 {
		q.MaxRescues = DefaultMaxRescues
	}
	if q.Lease <= 0 {
		q.Lease = DefaultLease
	}
	if q.Logger == nil {
		q.Logger = slog.Default()
	}
	if q.Owner == "" {
		q.Owner = DefaultOwner()
	}
	return q
}

// DefaultOwner names this process for leases: "host/pid".
func DefaultOwner() string {
	h, err := os.Hostname()
	if err != nil {
		h = "unknown"
	}
	return fmt.Sprintf("%s/%d", h, os.Getpid())
}

// Run runs one pass. It returns an error only when the pass could not do
// its work at all (the ledger does not answer, or ctx ended); problems with
// single applies or with GitHub are recorded in the Result and logged, and
// the pass carries on.
func (p *Pass) Run(ctx context.Context) (*Result, error) {
	if p.Store == nil || p.Runner == nil {
		return nil, errors.New("recovery pass: Store and Runner are required")
	}
	q := p.defaults()
	start := time.Now()
	defer func() { q.Metrics.Pass(time.Since(start)) }()
	t := &tracker{lines: map[int64]*Line{}}
	log := q.Logger.With("owner", q.Owner)

	if err := q.rescue(ctx, t, log); err != nil {
		return nil, err
	}
	if q.PRs != nil {
		if err := q.closedPRs(ctx, t, log); err != nil {
			return nil, err
		}
	}
	if err := q.failExhausted(ctx, t); err != nil {
		return nil, err
	}
	if err := q.claimAndRun(ctx, t, log); err != nil {
		return nil, err
	}
	if err := q.failExhausted(ctx, t); err != nil {
		return nil, err
	}
	if err := q.refresh(ctx, t); err != nil {
		return nil, err
	}
	if q.Reporter != nil {
		if err := q.report(ctx, t, log); err != nil {
			return nil, err
		}
	}

	res := t.res
	ids := make([]int64, 0, len(t.lines))
	for id := range t.lines {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		l := t.lines[id]
		res.Lines = append(res.Lines, *l)
		switch l.Apply.State {
		case store.Completed:
			res.Recovered++
		case store.FailedRetryable:
			res.Retrying++
		case store.Failed:
			res.Failed++
		case store.Cancelled:
			res.Cancelled++
		}
	}
	log.Info("recovery pass done", "recovered", res.Recovered, "retrying", res.Retrying,
		"failed", res.Failed, "rescued", res.Rescued, "cancelled", res.Cancelled,
		"closed_prs", res.ClosedPRs, "reported", res.Reported, "report_errors", res.ReportErrors,
		"errors", res.Errors)
	return &res, nil
}

// rescue hands back running applies whose lease lapsed. A rescue another
// pass made first is a conflict and is skipped.
func (p *Pass) rescue(ctx context.Context, t *tracker, log *slog.Logger) error {
	seen := map[int64]bool{}
	for {
		lapsed, err := p.Store.LapsedApplies(ctx, batch)
		if err != nil {
			return fmt.Errorf("list lapsed applies: %w", err)
		}
		progress := false
		for _, a := range lapsed {
			if seen[a.ID] {
				continue
			}
			seen[a.ID] = true
			progress = true
			got, err := p.Store.Rescue(ctx, a, p.MaxRescues)
			if errors.Is(err, store.ErrConflict) {
				log.Debug("rescue lost to another pass", "apply", a.ID)
				continue
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				log.Error("rescue apply", "apply", a.ID, "err", err)
				t.touch(a, ActionRescued, fmt.Errorf("rescue: %w", err))
				continue
			}
			log.Info("rescued apply", "apply", got.ID, "state", got.State, "rescues", got.Rescues, "previous_owner", a.LeaseOwner)
			t.touch(got, ActionRescued, nil)
			p.Metrics.Transition(string(got.State))
			t.count(func(r *Result) { r.Rescued++ })
		}
		if !progress || len(lapsed) < batch {
			return nil
		}
	}
}

// closedPRs finds pull requests closed while a webhook was missed and hands
// them to PRs.HandleClosed. GitHub errors are logged and counted; the PR is
// looked at again by the next pass.
func (p *Pass) closedPRs(ctx context.Context, t *tracker, log *slog.Logger) error {
	refs, err := p.Store.OpenPRs(ctx)
	if err != nil {
		return fmt.Errorf("list open pull requests: %w", err)
	}
	for _, ref := range refs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		closed, merged, err := p.PRs.PRClosed(ctx, ref)
		if err != nil {
			log.Warn("ask GitHub whether a pull request is closed", "repository", ref.Repository, "pr", ref.PR, "err", err)
			t.count(func(r *Result) { r.Errors++ })
			continue
		}
		if !closed {
			continue
		}
		before, err := p.Store.AppliesForPR(ctx, ref.Repository, ref.PR)
		if err != nil {
			return fmt.Errorf("list applies of %s#%d: %w", ref.Repository, ref.PR, err)
		}
		herr := p.PRs.HandleClosed(ctx, ref, merged)
		if herr != nil {
			log.Error("handle closed pull request", "repository", ref.Repository, "pr", ref.PR, "err", herr)
			t.count(func(r *Result) { r.Errors++ })
		} else {
			log.Info("handled pull request closed behind tern's back", "repository", ref.Repository, "pr", ref.PR, "merged", merged)
			t.count(func(r *Result) { r.ClosedPRs++ })
		}
		after, err := p.Store.AppliesForPR(ctx, ref.Repository, ref.PR)
		if err != nil {
			return fmt.Errorf("list applies of %s#%d: %w", ref.Repository, ref.PR, err)
		}
		was := map[int64]store.State{}
		for _, a := range before {
			was[a.ID] = a.State
		}
		for _, a := range after {
			if s, ok := was[a.ID]; ok && s != a.State {
				t.touch(a, ActionClosed, nil)
			}
		}
	}
	return nil
}

// failExhausted fails for good the failed_retryable applies out of attempts.
func (p *Pass) failExhausted(ctx context.Context, t *tracker) error {
	for {
		got, err := p.Store.FailExhausted(ctx, batch)
		if err != nil {
			return fmt.Errorf("fail exhausted applies: %w", err)
		}
		for _, a := range got {
			t.touch(a, ActionExhausted, nil)
			p.Metrics.Transition(string(a.State))
		}
		if len(got) < batch {
			return nil
		}
	}
}

// claimAndRun claims up to Limit due applies, one per claim, with Parallel
// workers, and runs each through the runner.
func (p *Pass) claimAndRun(ctx context.Context, t *tracker, log *slog.Logger) error {
	var (
		mu       sync.Mutex
		left     = p.Limit
		claimErr error
		wg       sync.WaitGroup
	)
	// take reserves one claim slot; false when the limit is reached or a
	// claim failed.
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if left <= 0 || claimErr != nil {
			return false
		}
		left--
		return true
	}
	giveBack := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		left++
		if err != nil && claimErr == nil {
			claimErr = err
		}
	}
	workers := min(p.Parallel, p.Limit)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && take() {
				began := time.Now()
				got, err := p.Store.Claim(ctx, store.ClaimOptions{Owner: p.Owner, Limit: 1, Lease: p.Lease})
				p.Metrics.Claim(time.Since(began))
				if err != nil {
					giveBack(fmt.Errorf("claim applies: %w", err))
					return
				}
				if len(got) == 0 {
					giveBack(nil)
					return
				}
				for _, a := range got {
					p.run(ctx, t, log, a)
				}
			}
		}()
	}
	wg.Wait()
	if claimErr != nil {
		return claimErr
	}
	return ctx.Err()
}

// run runs one claimed apply and records where it ended.
func (p *Pass) run(ctx context.Context, t *tracker, log *slog.Logger, a *store.Apply) {
	log = log.With("apply", a.ID, "repository", a.Repository, "pr", a.PR,
		"database", a.Database, "environment", a.Environment, "attempt", a.Attempt)
	log.Info("running apply")
	got, err := p.Runner.Run(ctx, a)
	if err != nil {
		log.Error("run apply", "err", err)
		// The ledger holds the truth of where the apply ended.
		if fresh, ferr := p.Store.Apply(context.WithoutCancel(ctx), a.ID); ferr == nil {
			got = fresh
		} else if got == nil {
			got = a
		}
		t.touch(got, ActionRan, fmt.Errorf("run: %w", err))
		return
	}
	if got == nil {
		got = a
	}
	log.Info("apply attempt ended", "state", got.State, "error_class", got.ErrorClass)
	t.touch(got, ActionRan, nil)
}

// refresh reads every touched apply again, so that lines and counts show
// where each stands at the end of the pass.
func (p *Pass) refresh(ctx context.Context, t *tracker) error {
	for id, l := range t.lines {
		a, err := p.Store.Apply(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if l.Err == "" {
				l.Err = fmt.Sprintf("read apply: %v", err)
			}
			continue
		}
		l.Apply = a
	}
	return nil
}

// report sends the touched applies and the report-due ones to GitHub,
// Parallel at a time.
func (p *Pass) report(ctx context.Context, t *tracker, log *slog.Logger) error {
	due, err := p.Store.ReportDue(ctx, batch)
	if err != nil {
		return fmt.Errorf("list report-due applies: %w", err)
	}
	var todo []*store.Apply
	queued := map[int64]bool{}
	for _, l := range t.lines {
		if l.Apply.ReportedVersion < l.Apply.Version {
			todo = append(todo, l.Apply)
			queued[l.Apply.ID] = true
		}
	}
	for _, a := range due {
		if !queued[a.ID] {
			todo = append(todo, a)
			queued[a.ID] = true
		}
	}
	sort.Slice(todo, func(i, j int) bool { return todo[i].ID < todo[j].ID })

	sem := make(chan struct{}, p.Parallel)
	var wg sync.WaitGroup
	for _, a := range todo {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			rerr := p.reportOne(ctx, a)
			t.mu.Lock()
			defer t.mu.Unlock()
			if rerr != nil {
				log.Warn("report apply to GitHub; it stays report-due", "apply", a.ID, "err", rerr)
				t.res.ReportErrors++
			} else {
				t.res.Reported++
			}
			if l, ok := t.lines[a.ID]; ok {
				l.Reported = rerr == nil
				if rerr != nil {
					l.ReportErr = rerr.Error()
				}
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// reportOne reports a to GitHub and records the version reported.
func (p *Pass) reportOne(ctx context.Context, a *store.Apply) error {
	if err := p.Reporter.Report(ctx, a); err != nil {
		return err
	}
	if err := p.Store.MarkReported(ctx, a.ID, a.Version); err != nil {
		return fmt.Errorf("mark reported: %w", err)
	}
	return nil
}

// Loop runs a pass every interval until ctx ends (`tern serve` with
// recovery.interval > 0). A pass that fails is logged and the loop goes
// on; passes never overlap within one loop.
func Loop(ctx context.Context, p *Pass, interval time.Duration) {
	log := p.Logger
	if log == nil {
		log = slog.Default()
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		res, err := p.Run(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			log.Error("recovery pass", "err", err)
		default:
			log.Debug("recovery pass", "summary", res.Summary())
		}
		timer.Reset(interval)
	}
}

// String renders the line as `tern recover` prints it, e.g.
// "apply 12 acme/shop#7 shop/staging: completed after 2 attempts".
func (l Line) String() string {
	a := l.Apply
	var b strings.Builder
	fmt.Fprintf(&b, "apply %d %s#%d %s/%s: ", a.ID, a.Repository, a.PR, a.Database, a.Environment)
	for _, act := range l.Actions {
		if act == ActionRescued {
			b.WriteString("rescued, ")
			break
		}
	}
	b.WriteString(l.Outcome())
	if l.Err != "" {
		fmt.Fprintf(&b, " (pass error: %s)", l.Err)
	}
	if l.ReportErr != "" {
		fmt.Fprintf(&b, " (report to GitHub failed, retried next pass: %s)", l.ReportErr)
	}
	return b.String()
}

// Outcome says in words where the apply stands, e.g. "completed after 2
// attempts" or "retrying: attempt 2/5 failed (lock_wait_timeout), next
// attempt ~14:05 UTC: <error>".
func (l Line) Outcome() string {
	a := l.Apply
	switch a.State {
	case store.Completed:
		return "completed after " + plural(a.Attempt, "attempt")
	case store.FailedRetryable:
		s := fmt.Sprintf("retrying: attempt %d/%d failed", a.Attempt, a.MaxAttempts)
		if a.ErrorClass != "" {
			s += " (" + a.ErrorClass + ")"
		}
		if !a.NextAttemptAt.IsZero() {
			s += ", next attempt ~" + a.NextAttemptAt.UTC().Format("15:04 UTC")
		}
		if a.LastError != "" {
			s += ": " + a.LastError
		}
		return s
	case store.Failed:
		s := "failed for good after " + plural(a.Attempt, "attempt")
		if a.ErrorClass != "" {
			s += " (" + a.ErrorClass + ")"
		}
		if a.LastError != "" {
			s += ": " + a.LastError
		}
		return s
	case store.Cancelled:
		if a.LastError != "" {
			return "cancelled: " + a.LastError
		}
		return "cancelled"
	default:
		return string(a.State)
	}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
