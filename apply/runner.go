// Package apply runs one claimed apply's attempt: it re-plans against the
// live schema when the attempt resumes earlier work, runs the unfinished
// tasks through the target's engine, keeps the lease alive while it works,
// and ends the attempt in the ledger as completed, failed_retryable (with a
// backoff) or failed.
package apply

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ternhq/tern/engine"
	"github.com/ternhq/tern/metrics"
	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/store"
)

// EventKind names a step in an apply's attempt.
type EventKind string

// Kinds of events.
const (
	// Started: the attempt began.
	Started EventKind = "started"
	// TaskDone: a task completed (or was found live and skipped).
	TaskDone EventKind = "task_done"
	// FailedRetryable: the attempt failed transiently; a retry is due later.
	FailedRetryable EventKind = "failed_retryable"
	// Completed: every task is done.
	Completed EventKind = "completed"
	// Failed: the apply failed for good.
	Failed EventKind = "failed"
	// Cancelled: the apply was cancelled.
	Cancelled EventKind = "cancelled"
)

// Event tells a Listener what happened to an apply.
type Event struct {
	Kind  EventKind
	Apply *store.Apply
	// Task is set for TaskDone.
	Task *store.Task
}

// Listener hears an attempt's progress (the GitHub side shows it on the
// pull request). Its errors are its own business: it returns nothing.
type Listener interface {
	ApplyEvent(ctx context.Context, e Event)
}

// Target is where an apply runs: the engine that changes the live schema,
// and the pool on the server that holds shadow schemas for re-planning.
type Target struct {
	Engine engine.Engine
	Shadow *sql.DB
	// AllowedEngines are the storage engines its plans may use (the
	// target's allowed_engines; none: plan.DefaultEngines).
	AllowedEngines []string
	// Cost holds the target's settings that judge a plan's costs.
	Cost plan.CostOptions
}

// Targets finds the target of a (repository, database, environment).
type Targets interface {
	Target(ctx context.Context, repo, database, env string) (*Target, error)
}

// Runner runs claimed applies. Its fields are read-only once it runs; one
// Runner may run many applies at once.
type Runner struct {
	// Store is the ledger. Required.
	Store *store.Store
	// Targets resolves an apply's target. Required.
	Targets Targets
	// Planner re-plans a resumed attempt. Required for attempts after the
	// first and for rescued applies.
	Planner *plan.Planner
	// Policy sets attempts, backoff and lease.
	Policy Policy
	// Listener, when not nil, hears each step.
	Listener Listener
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics, when not nil, counts how attempts end.
	Metrics *metrics.Metrics
}

// finishTimeout bounds the ledger writes that end an attempt; they run even
// when the caller's context is done, so that a stopping worker leaves its
// apply retryable rather than waiting for a rescue.
const finishTimeout = 30 * time.Second

// maxMessage bounds an error message stored in the ledger.
const maxMessage = 4000

// Run runs the unfinished tasks of a, an apply already claimed (running,
// leased), and ends the attempt. It returns the apply as stored
// afterwards. A failing DDL is not an error of Run: it ends the apply in
// failed_retryable or failed. Run returns an error when the attempt could
// not be ended: the lease was lost (the error wraps store.ErrConflict; Run
// then writes nothing more) or the ledger failed.
func (r *Runner) Run(ctx context.Context, a *store.Apply) (*store.Apply, error) {
	if r.Store == nil || r.Targets == nil {
		return nil, errors.New("apply runner: Store and Targets are required")
	}
	if a.State != store.Running {
		return a, fmt.Errorf("run apply %d: it is %s, not running (claim it first)", a.ID, a.State)
	}
	pol := r.Policy.withDefaults()
	log := r.logger().With("apply", a.ID, "repository", a.Repository, "pr", a.PR,
		"database", a.Database, "environment", a.Environment, "attempt", a.Attempt)

	began := time.Now()
	work, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	keeper := keepLease(ctx, r.Store, a, pol.Lease, began, cancel, log)

	r.emit(ctx, Event{Kind: Started, Apply: a})
	started := map[int]bool{}
	err := r.attempt(work, a, started, log)
	keeper.stop()

	if lost := keeper.lostErr(); lost != nil || errors.Is(err, store.ErrConflict) {
		if lost == nil {
			lost = err
		}
		log.Warn("lease lost: attempt stopped", "err", lost)
		return a, fmt.Errorf("apply %d: lease lost, attempt stopped: %w", a.ID, lost)
	}

	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer fcancel()
	return r.finish(fctx, a, err, started, pol, log)
}

// attempt does the attempt's work and returns why it stopped (nil: every
// task is done). It notes in started the tasks it moved to running.
func (r *Runner) attempt(ctx context.Context, a *store.Apply, started map[int]bool, log *slog.Logger) error {
	tasks, err := r.Store.Tasks(ctx, a.ID)
	if err != nil {
		return fmt.Errorf("read tasks: %w", err)
	}
	target, err := r.Targets.Target(ctx, a.Repository, a.Database, a.Environment)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	var todo []store.Task
	resumed := a.Attempt > 1 || a.Rescues > 0 || a.NoAttemptsLeft
	for _, t := range tasks {
		if !t.State.Terminal() {
			todo = append(todo, t)
		}
		// A task an earlier attempt started may have taken effect, even
		// when that attempt was not counted (it waited).
		resumed = resumed || t.Attempt > 0
	}
	if len(todo) > 0 && resumed {
		if err := inFlight(ctx, target, a); err != nil {
			return err
		}
		live, err := r.reconcile(ctx, a, target, tasks, todo)
		if err != nil {
			return err
		}
		var rest []store.Task
		for _, t := range todo {
			if !live[t.Seq] {
				rest = append(rest, t)
				continue
			}
			if err := r.Store.FinishTask(ctx, a, t.Seq, true); err != nil {
				return fmt.Errorf("mark task %d already live: %w", t.Seq, err)
			}
			log.Info("task already live: marked done without running it", "task", t.Seq, "table", t.Table)
			t.State, t.Skipped = store.Completed, true
			r.emit(ctx, Event{Kind: TaskDone, Apply: a, Task: &t})
		}
		todo = rest
	}
	if len(todo) == 0 {
		return nil
	}
	if a.NoAttemptsLeft && !resumes(target.Engine, a) {
		// The last attempt's worker died; its outcome is now known, and
		// there is no attempt left to send the rest.
		return &engine.PermanentError{Class: store.ClassRetriesExhausted, Err: fmt.Errorf(
			"gave up after %d attempts: the worker of the last one stopped before it ended (%s); tasks %s not applied, nothing was run again",
			a.Attempt, a.LastError, seqs(todo))}
	}
	job := engine.Job{
		ApplyID:     a.ID,
		Attempt:     a.Attempt,
		Repository:  a.Repository,
		PR:          a.PR,
		EngineState: a.EngineState,
	}
	byseq := map[int]store.Task{}
	for _, t := range todo {
		job.Tasks = append(job.Tasks, engine.Task{Seq: t.Seq, Table: t.Table, Kind: t.Kind, DDL: t.DDL, Instant: t.Instant,
			Algorithm: t.Algorithm, Lock: t.Lock})
		byseq[t.Seq] = t
	}
	rec := &recorder{r: r, a: a, tasks: byseq, started: started, lease: r.Policy.withDefaults().Lease}
	return target.Engine.Apply(ctx, job, rec)
}

// waitError says that the attempt must wait and sent nothing.
type waitError struct{ why string }

func (w *waitError) Error() string { return w.why }

// inFlight asks the target's engine, when it can tell, whether a DDL of
// the apply sent by an earlier attempt still runs there. Before every
// re-dispatch: sending the same DDL again while it runs would block behind
// it and then fail (or run twice).
func inFlight(ctx context.Context, t *Target, a *store.Apply) error {
	f, ok := t.Engine.(engine.InFlighter)
	if !ok {
		return nil
	}
	why, err := f.InFlight(ctx, engine.Job{ApplyID: a.ID, Attempt: a.Attempt, Repository: a.Repository, PR: a.PR, EngineState: a.EngineState})
	if err != nil {
		return fmt.Errorf("look for DDL still running on the target: %w", err)
	}
	if why != "" {
		return &waitError{why: why}
	}
	return nil
}

// finish ends the attempt in the ledger according to err.
func (r *Runner) finish(ctx context.Context, a *store.Apply, err error, started map[int]bool, pol Policy, log *slog.Logger) (*store.Apply, error) {
	var we *waitError
	var ew *engine.WaitingError
	if errors.As(err, &we) || errors.As(err, &ew) {
		wait := pol.InFlightWait
		// The class stays still_running whatever cut the wait short, so
		// that nothing fails the apply for good while the work may land.
		why := ""
		if we != nil {
			why = we.why
		} else {
			why = fmt.Sprintf("%s (%s)", ew.Error(), engine.Class(ew.Err))
		}
		log.Info("work under way on the target: waiting, attempt not counted", "retry_in", wait, "why", why)
		got, ferr := again(ctx, func() (*store.Apply, error) {
			return r.Store.Wait(ctx, a, store.ClassStillRunning, truncate(why), wait)
		})
		if ferr != nil {
			return a, fmt.Errorf("apply %d: record wait: %w", a.ID, ferr)
		}
		r.Metrics.Transition(string(got.State))
		r.emit(ctx, Event{Kind: FailedRetryable, Apply: got})
		return got, nil
	}
	if err == nil {
		got, ferr := again(ctx, func() (*store.Apply, error) { return r.Store.FinishApply(ctx, a, store.Completed, "", "", 0) })
		if ferr != nil {
			return a, fmt.Errorf("apply %d: record completed: %w", a.ID, ferr)
		}
		log.Info("apply completed")
		r.Metrics.Transition(string(got.State))
		r.emit(ctx, Event{Kind: Completed, Apply: got})
		return got, nil
	}

	err = engine.ClassifyMySQL(err)
	class := engine.Class(err)
	retryable := engine.IsRetryable(err)
	msg := truncate(err.Error())

	var te *engine.TaskError
	if errors.As(err, &te) {
		class = engine.Class(te.Err)
		retryable = engine.IsRetryable(te.Err)
		msg = truncate(te.Err.Error())
	}
	maxAttempts := a.MaxAttempts
	if maxAttempts <= 0 {
		maxAttempts = pol.MaxAttempts
	}
	exhausted := retryable && a.Attempt >= maxAttempts

	if te != nil {
		to := store.Failed
		if retryable && !exhausted {
			to = store.FailedRetryable
		}
		// A task that failed before it started (no connection, say) stays
		// as it was unless it fails for good.
		if to == store.Failed || started[te.Seq] {
			_, ferr := again(ctx, func() (*store.Apply, error) { return nil, r.Store.FailTask(ctx, a, te.Seq, to, class, msg) })
			if ferr != nil {
				return a, fmt.Errorf("apply %d: record task %d %s: %w", a.ID, te.Seq, to, ferr)
			}
		}
		msg = truncate(fmt.Sprintf("task %d: %s", te.Seq, msg))
	}

	var (
		got  *store.Apply
		ferr error
		kind EventKind
	)
	switch {
	case exhausted:
		log.Warn("apply failed for good: attempts exhausted", "class", class, "err", err)
		got, ferr = again(ctx, func() (*store.Apply, error) {
			return r.Store.FinishApply(ctx, a, store.Failed, store.ClassRetriesExhausted,
				truncate(fmt.Sprintf("gave up after %d attempts: %s", a.Attempt, msg)), 0)
		})
		kind = Failed
	case retryable:
		wait := pol.Backoff(a.Attempt)
		log.Warn("apply failed, will retry", "class", class, "retry_in", wait, "err", err)
		got, ferr = again(ctx, func() (*store.Apply, error) {
			return r.Store.FinishApply(ctx, a, store.FailedRetryable, class, msg, wait)
		})
		kind = FailedRetryable
	default:
		log.Warn("apply failed for good", "class", class, "err", err)
		got, ferr = again(ctx, func() (*store.Apply, error) { return r.Store.FinishApply(ctx, a, store.Failed, class, msg, 0) })
		kind = Failed
	}
	if ferr != nil {
		return a, fmt.Errorf("apply %d: record %s: %w", a.ID, kind, ferr)
	}
	r.Metrics.Transition(string(got.State))
	if kind == FailedRetryable {
		r.Metrics.Retry(class)
	}
	r.emit(ctx, Event{Kind: kind, Apply: got})
	return got, nil
}

// seqs renders the tasks' numbers as "2, 3".
func seqs(ts []store.Task) string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = fmt.Sprint(t.Seq)
	}
	return strings.Join(out, ", ")
}

// again runs a ledger write that ends an attempt, and runs it again while
// it fails transiently (a lost connection, a deadlock), until ctx ends: a
// worker that lost the ledger for a moment still records how its attempt
// ended instead of leaving it to a rescue. A lost fence is not retried.
func again(ctx context.Context, write func() (*store.Apply, error)) (*store.Apply, error) {
	wait := 100 * time.Millisecond
	for {
		got, err := write()
		if err == nil || errors.Is(err, store.ErrConflict) || !engine.IsRetryable(engine.ClassifyMySQL(err)) {
			return got, err
		}
		select {
		case <-ctx.Done():
			return got, err
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// reconcile re-plans the apply's desired schema against the live one and
// returns the unfinished tasks whose change is already live. Any other
// difference between the re-plan and the unfinished tasks is drift: a
// permanent error of class drift listing the differences.
func (r *Runner) reconcile(ctx context.Context, a *store.Apply, t *Target, all, todo []store.Task) (map[int]bool, error) {
	if r.Planner == nil {
		return nil, &engine.PermanentError{Class: "replan", Err: errors.New("re-plan before resuming: the runner has no planner")}
	}
	p, err := r.Store.Plan(ctx, a.PlanID)
	if err != nil {
		return nil, fmt.Errorf("re-plan: read plan %d: %w", a.PlanID, err)
	}
	desired, err := plan.UnmarshalDesired(p.Desired)
	if err != nil {
		return nil, &engine.PermanentError{Class: "replan", Err: fmt.Errorf("re-plan: stored desired schema of plan %d: %w", a.PlanID, err)}
	}
	live, err := t.Engine.Live(ctx)
	if err != nil {
		return nil, fmt.Errorf("re-plan: %w", err)
	}
	now, err := r.Planner.WithEngines(t.AllowedEngines).Diff(ctx, desired, live, t.Shadow)
	if err != nil {
		return nil, fmt.Errorf("re-plan against the live schema: %w", err)
	}
	var replan []string
	for _, s := range now {
		replan = append(replan, s.DDL)
	}
	return compare(replan, all, todo)
}

// compare matches a re-plan against the tasks. An unfinished task whose
// statement the re-plan no longer has is already live; a re-planned
// statement that no unfinished task has is drift.
func compare(replan []string, all, todo []store.Task) (map[int]bool, error) {
	want := map[string]int{} // normalized unfinished DDL -> count
	for _, t := range todo {
		want[normalize(t.DDL)]++
	}
	have := map[string]int{}
	var extra []string
	for _, ddl := range replan {
		n := normalize(ddl)
		have[n]++
		if have[n] > want[n] {
			extra = append(extra, ddl)
		}
	}
	live := map[int]bool{}
	var missing []store.Task
	used := map[string]int{}
	for _, t := range todo {
		n := normalize(t.DDL)
		if used[n] < have[n] {
			used[n]++
			continue
		}
		live[t.Seq] = true
		missing = append(missing, t)
	}
	if len(extra) == 0 {
		return live, nil
	}
	var b strings.Builder
	b.WriteString("the live schema changed since the plan; re-planning now needs:")
	for _, ddl := range extra {
		fmt.Fprintf(&b, "\n  %s", strings.TrimSpace(ddl))
	}
	tables := map[string]bool{}
	for _, t := range all {
		if t.State == store.Completed {
			continue
		}
		tables[t.Table] = true
	}
	var planned []string
	for _, t := range missing {
		if tables[t.Table] {
			planned = append(planned, fmt.Sprintf("\n  task %d: %s", t.Seq, strings.TrimSpace(t.DDL)))
		}
	}
	if len(planned) > 0 {
		b.WriteString("\nwhere the plan has:")
		for _, s := range planned {
			b.WriteString(s)
		}
	}
	b.WriteString("\nnothing was run; plan again and review the new DDL")
	return nil, &engine.PermanentError{Class: store.ClassDrift, Err: errors.New(b.String())}
}

// normalize makes DDL text comparable: runs of whitespace become one
// space, and a trailing semicolon is dropped.
func normalize(ddl string) string {
	s := strings.Join(strings.Fields(ddl), " ")
	return strings.TrimSpace(strings.TrimSuffix(s, ";"))
}

func truncate(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && (s[cut]&0xC0) == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}

func (r *Runner) emit(ctx context.Context, e Event) {
	if r.Listener != nil {
		r.Listener.ApplyEvent(ctx, e)
	}
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

// resumes reports whether the engine has work of a under way to see to its
// end (engine.Resumer).
func resumes(e engine.Engine, a *store.Apply) bool {
	r, ok := e.(engine.Resumer)
	return ok && r.Resumes(engine.Job{ApplyID: a.ID, Attempt: a.Attempt, EngineState: a.EngineState})
}

// recorder adapts the ledger to engine.Recorder and engine.Confirmer;
// every write is fenced on the apply's lease.
type recorder struct {
	r       *Runner
	a       *store.Apply
	tasks   map[int]store.Task
	started map[int]bool
	lease   time.Duration
}

// Confirm extends the lease with a fenced write: it fails when the
// attempt lost the apply.
func (rec *recorder) Confirm(ctx context.Context) error {
	if err := rec.r.Store.ExtendLease(ctx, rec.a, rec.lease); err != nil {
		return fmt.Errorf("confirm the lease: %w", err)
	}
	return nil
}

func (rec *recorder) TaskStarted(ctx context.Context, seq int) error {
	if err := rec.r.Store.StartTask(ctx, rec.a, seq); err != nil {
		return fmt.Errorf("start task %d: %w", seq, err)
	}
	rec.started[seq] = true
	return nil
}

func (rec *recorder) TaskDone(ctx context.Context, seq int) error {
	if err := rec.r.Store.FinishTask(ctx, rec.a, seq, false); err != nil {
		return fmt.Errorf("finish task %d: %w", seq, err)
	}
	t := rec.tasks[seq]
	t.State = store.Completed
	rec.r.emit(ctx, Event{Kind: TaskDone, Apply: rec.a, Task: &t})
	return nil
}

func (rec *recorder) SaveState(ctx context.Context, key, value string) error {
	if err := rec.r.Store.SetEngineState(ctx, rec.a, key, value); err != nil {
		return fmt.Errorf("save engine state %s: %w", key, err)
	}
	return nil
}

// ErrLeaseExpired is the cause an attempt is stopped with when its last
// confirmed lease, less a margin, has run out on the worker's own clock:
// the ledger could not be reached to extend it, and another worker may
// take the apply over once it lapses.
var ErrLeaseExpired = errors.New("lease about to lapse: the ledger did not confirm an extension in time")

// leaseKeeper extends a running apply's lease every lease/3 until stopped.
// When the ledger says the lease is gone it cancels the attempt; whatever
// the error, it also cancels the attempt once the last expiry the ledger
// confirmed, less a margin of lease/4, has passed on the worker's
// monotonic clock, so that the attempt (and its DDL) is stopped before a
// rescuer may take the apply over.
type leaseKeeper struct {
	stopc chan struct{}
	done  chan struct{}
	once  sync.Once
	mu    sync.Mutex
	lost  error
}

// leaseMargin is how long before the last confirmed expiry an attempt
// stops itself.
func leaseMargin(lease time.Duration) time.Duration { return lease / 4 }

// keepLease starts the keeper. began is when (on this clock) the claim
// that granted a's lease was taken, or a moment after it.
func keepLease(ctx context.Context, s *store.Store, a *store.Apply, lease time.Duration, began time.Time, cancel context.CancelCauseFunc, log *slog.Logger) *leaseKeeper {
	k := &leaseKeeper{stopc: make(chan struct{}), done: make(chan struct{})}
	// The keeper works on its own copy: the attempt's writes may update a.
	own := *a
	granted := lease
	if !a.LeaseExpiresAt.IsZero() && a.LeaseExpiresAt.After(a.UpdatedAt) {
		granted = a.LeaseExpiresAt.Sub(a.UpdatedAt)
	}
	deadline := began.Add(granted - leaseMargin(granted))
	type result struct {
		sent time.Time
		err  error
	}
	results := make(chan result, 1)
	go func() {
		defer close(k.done)
		tick := time.NewTicker(lease / 3)
		defer tick.Stop()
		expiry := time.NewTimer(time.Until(deadline))
		defer expiry.Stop()
		extending := false
		for {
			select {
			case <-k.stopc:
				return
			case <-ctx.Done():
				return
			case <-expiry.C:
				log.Warn("lease not confirmed in time: stopping the attempt", "deadline_passed_by", time.Since(deadline))
				cancel(ErrLeaseExpired)
				return
			case <-tick.C:
				if extending {
					continue
				}
				extending = true
				go func() {
					sent := time.Now()
					ectx, ecancel := context.WithTimeout(ctx, lease/3)
					defer ecancel()
					results <- result{sent, s.ExtendLease(ectx, &own, lease)}
				}()
			case r := <-results:
				extending = false
				if r.err == nil {
					// The ledger set expiry = its now + lease, its now being
					// after r.sent: r.sent + lease is on the safe side.
					deadline = r.sent.Add(lease - leaseMargin(lease))
					if !expiry.Stop() {
						select {
						case <-expiry.C:
						default:
						}
					}
					expiry.Reset(time.Until(deadline))
					continue
				}
				if errors.Is(r.err, store.ErrConflict) {
					k.mu.Lock()
					k.lost = r.err
					k.mu.Unlock()
					cancel(r.err)
					return
				}
				log.Warn("extend lease", "err", r.err, "stop_in", time.Until(deadline))
			}
		}
	}()
	return k
}

// stop ends the keeper and waits for it.
func (k *leaseKeeper) stop() {
	k.once.Do(func() { close(k.stopc) })
	<-k.done
}

// lostErr returns the conflict that ended the lease, or nil.
func (k *leaseKeeper) lostErr() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lost
}
