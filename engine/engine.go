// Package engine applies a plan's DDL to one target and classifies what
// goes wrong as transient (retry later) or permanent (fail for good).
//
// Engines are stateless between calls: everything they need to resume
// comes from the ledger through Job and Recorder.
package engine

import (
	"context"
	"database/sql"
)

// Task is one DDL statement to apply.
type Task struct {
	Seq     int    // 1-based order within the apply
	Table   string // the table the statement changes
	Kind    string // create, alter, drop
	DDL     string
	Instant bool // MySQL 8 can run it with ALGORITHM=INSTANT
	// Algorithm and Lock are what the plan promised (INSTANT, INPLACE,
	// COPY; NONE, SHARED, EXCLUSIVE). An engine that runs plain DDL states
	// them, so that a server that cannot keep the promise refuses instead
	// of running the change another way. Empty: no promise.
	Algorithm string
	Lock      string
}

// Job is one attempt of an apply: the tasks still to run, in order, and the
// resume state an earlier attempt recorded.
type Job struct {
	ApplyID     int64
	Attempt     int
	Repository  string
	PR          int
	Tasks       []Task
	EngineState map[string]string
}

// Recorder is how an engine reports progress into the ledger. Every call
// is fenced on the apply's lease: an error means the attempt lost its lease
// and the engine must stop.
type Recorder interface {
	// TaskStarted is called before a task's DDL is sent.
	TaskStarted(ctx context.Context, seq int) error
	// TaskDone is called once a task's DDL has taken effect.
	TaskDone(ctx context.Context, seq int) error
	// SaveState records resume state (for example a deploy request number)
	// so that a later attempt continues instead of starting over.
	SaveState(ctx context.Context, key, value string) error
}

// Engine applies DDL to one target.
type Engine interface {
	// Apply runs job's tasks in order, reporting each through rec. A failure
	// is returned as a *TaskError naming the task, wrapping an error that
	// IsRetryable when the failure is transient.
	Apply(ctx context.Context, job Job, rec Recorder) error
	// Live returns a pool whose connections' default database is the
	// target's live schema, for introspection; the engine owns it.
	Live(ctx context.Context) (*sql.DB, error)
	// Close releases the engine's connections.
	Close() error
}

// InFlighter is implemented by engines that can see, on the target, work
// of an apply still under way that no worker owns any more: a DDL left
// running by an attempt that was stopped or whose worker died. The runner
// asks before every re-dispatch (a retry or a rescue) and, while there is
// some, waits instead of sending the work again.
type InFlighter interface {
	// InFlight describes the apply's work still running on the target, or
	// returns "" when there is none.
	InFlight(ctx context.Context, job Job) (string, error)
}

// Confirmer is implemented by Recorders that can confirm, with a fenced
// write, that the attempt still holds its lease. Engines call it right
// before a side effect outside the ledger that must not be made by a
// worker that lost the apply (deploying a deploy request, cutting it over,
// closing it, deleting a branch); an error means stop.
type Confirmer interface {
	Confirm(ctx context.Context) error
}

// Resumer is implemented by engines whose recorded state can name work
// under way outside tern (a deploy request): Resumes reports whether job's
// EngineState does. An apply out of attempts whose last worker died is
// still handed to such an engine, to see that work to its end; it never
// starts anything new.
type Resumer interface {
	Resumes(job Job) bool
}

// WaitingError ends an attempt that was waiting on work under way outside
// tern (a deploy request being deployed): the work goes on, and waiting on
// it is not an attempt. The runner ends the attempt retryable without
// counting it, so an apply is never failed for good while that work may
// still land. Err is the reason the wait was cut short (usually a
// *RetryableError).
type WaitingError struct {
	Err error
}

func (e *WaitingError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *WaitingError) Unwrap() error { return e.Err }

// TaskError says which task failed and why.
type TaskError struct {
	Seq int
	Err error
}

func (e *TaskError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *TaskError) Unwrap() error { return e.Err }
