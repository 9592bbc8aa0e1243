package apply

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ternhq/tern/engine"
	"github.com/ternhq/tern/store"
)

// deployingEngine stands for an engine whose recorded work (a deploy
// request) is under way outside tern: while waiting is set its attempts
// end waiting on it; after, the work has landed.
type deployingEngine struct {
	engine.Engine
	waiting bool
	applied int
}

func (d *deployingEngine) Apply(ctx context.Context, job engine.Job, rec engine.Recorder) error {
	if d.waiting {
		return &engine.TaskError{Seq: job.Tasks[0].Seq, Err: &engine.WaitingError{Err: &engine.RetryableError{
			Class: engine.ClassInterrupted, Err: errors.New("deploy request 1 is in_progress; waiting on it")}}}
	}
	d.applied++
	return d.Engine.Apply(ctx, job, rec)
}

func (d *deployingEngine) Resumes(engine.Job) bool { return true }

// TestWaitingOnDeployIsNotAnAttempt: attempts that end waiting on a deploy
// under way are not counted, so they never exhaust the apply: with
// max_attempts 1, ten of them leave it retrying, and the attempt after the
// deploy landed completes it.
func TestWaitingOnDeployIsNotAnAttempt(t *testing.T) {
	f := newFixture(t, time.Second, liveT)
	a := f.createApply(f.plan(desired), 1)
	eng := &deployingEngine{waiting: true}
	f.wrap = func(e engine.Engine) engine.Engine { eng.Engine = e; return eng }
	got := f.run(f.claim(a.ID, time.Minute))
	for i := 0; i < 10; i++ {
		if got.State != store.FailedRetryable || got.Attempt != 0 || got.ErrorClass != store.ClassStillRunning {
			t.Fatalf("wait %d: %s attempt %d class %q (%s), want failed_retryable, attempt 0, still_running", i, got.State, got.Attempt, got.ErrorClass, got.LastError)
		}
		if ex, err := f.store.FailExhausted(f.ctx, 10); err != nil || len(ex) != 0 {
			t.Fatalf("FailExhausted took %d applies (%v): a wait exhausted the apply", len(ex), err)
		}
		got = f.run(f.retryNow(a.ID))
	}
	eng.waiting = false
	got = f.run(f.retryNow(a.ID))
	if got.State != store.Completed || got.Attempt != 1 {
		t.Fatalf("after the deploy landed: %s attempt %d (%s), want completed on attempt 1", got.State, got.Attempt, got.LastError)
	}
}

// TestLastAttemptDiedWhileDeploying: the worker of an apply's last attempt
// died while its deploy request deployed. The apply has no attempt left,
// but it is not failed for good while the deploy may still land: the
// engine resumes watching the recorded deploy request, and the apply
// completes once it lands.
func TestLastAttemptDiedWhileDeploying(t *testing.T) {
	f := newFixture(t, time.Second, liveT)
	a := f.createApply(f.plan(desired), 1)
	eng := &deployingEngine{waiting: true}
	f.wrap = func(e engine.Engine) engine.Engine { eng.Engine = e; return eng }
	dead := f.claim(a.ID, time.Second)
	if err := f.store.StartTask(f.ctx, dead, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Rescue(f.ctx, waitLapsed(t, f.store, a.ID), 3); err != nil {
		t.Fatal(err)
	}
	got := f.run(f.claim(a.ID, time.Minute))
	if got.State != store.FailedRetryable || got.ErrorClass != store.ClassStillRunning || got.Attempt != 1 {
		t.Fatalf("out of attempts, deploy under way: %s class %q attempt %d (%s), want failed_retryable still_running 1", got.State, got.ErrorClass, got.Attempt, got.LastError)
	}
	if ex, err := f.store.FailExhausted(f.ctx, 10); err != nil || len(ex) != 0 {
		t.Fatalf("FailExhausted took %d applies (%v) while the deploy may land", len(ex), err)
	}
	eng.waiting = false
	got = f.run(f.retryNow(a.ID))
	if got.State != store.Completed || got.Attempt != 1 {
		t.Fatalf("after the deploy landed: %s attempt %d (%s), want completed, attempt 1", got.State, got.Attempt, got.LastError)
	}
}
