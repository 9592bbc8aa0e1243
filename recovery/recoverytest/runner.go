package recoverytest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ternhq/tern/engine"
	"github.com/ternhq/tern/store"
)

// LedgerRunner runs a claimed apply's remaining tasks through an
// engine.Engine and records each step in the ledger. It is the bare path
// of an attempt (no re-plan on resume, no lease extension, no reporting):
// a test double for apply.Runner, for tests of the recovery pass itself.
type LedgerRunner struct {
	Store  *store.Store
	Engine engine.Engine
	// RetryIn is when a transiently failed attempt is due again.
	RetryIn time.Duration
}

// NewRecorder returns the engine.Recorder an attempt of claimed apply a
// reports its progress to: each task's start and end, and the engine's
// resume state, fenced on a's lease in the ledger.
func NewRecorder(st *store.Store, a *store.Apply) engine.Recorder { return recorder{st, a} }

type recorder struct {
	st *store.Store
	a  *store.Apply
}

func (r recorder) TaskStarted(ctx context.Context, seq int) error {
	return r.st.StartTask(ctx, r.a, seq)
}
func (r recorder) TaskDone(ctx context.Context, seq int) error {
	return r.st.FinishTask(ctx, r.a, seq, false)
}
func (r recorder) SaveState(ctx context.Context, k, v string) error {
	return r.st.SetEngineState(ctx, r.a, k, v)
}

// Run runs a's attempt and ends it completed, failed_retryable (transient
// engine error) or failed.
func (r *LedgerRunner) Run(ctx context.Context, a *store.Apply) (*store.Apply, error) {
	tasks, err := r.Store.Tasks(ctx, a.ID)
	if err != nil {
		return nil, fmt.Errorf("read tasks of apply %d: %w", a.ID, err)
	}
	job := engine.Job{ApplyID: a.ID, Attempt: a.Attempt, Repository: a.Repository, PR: a.PR, EngineState: a.EngineState}
	for _, t := range tasks {
		if t.State != store.Completed {
			job.Tasks = append(job.Tasks, engine.Task{Seq: t.Seq, Table: t.Table, Kind: t.Kind, DDL: t.DDL, Instant: t.Instant})
		}
	}
	aerr := r.Engine.Apply(ctx, job, NewRecorder(r.Store, a))
	if aerr == nil {
		return r.Store.FinishApply(ctx, a, store.Completed, "", "", 0)
	}
	var te *engine.TaskError
	if !errors.As(aerr, &te) {
		return nil, fmt.Errorf("apply %d: %w", a.ID, aerr)
	}
	to := store.Failed
	if engine.IsRetryable(aerr) {
		to = store.FailedRetryable
	}
	class := engine.Class(aerr)
	if err := r.Store.FailTask(ctx, a, te.Seq, to, class, aerr.Error()); err != nil {
		return nil, fmt.Errorf("apply %d: record task failure: %w", a.ID, err)
	}
	return r.Store.FinishApply(ctx, a, to, class, aerr.Error(), r.RetryIn)
}
