package recovery

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/ternhq/tern/store"
)

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

// result is the pass's Result: the counts so far, one line per touched
// apply in id order, and the touched applies counted by the state each is
// in now.
func (t *tracker) result() *Result {
	t.mu.Lock()
	defer t.mu.Unlock()
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
	return &res
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
