package psdeploy_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ternhq/tern/engine"
	"github.com/ternhq/tern/engine/psdeploy"
	"github.com/ternhq/tern/internal/fakeps"
)

// A deploy that copies for longer than StateTimeout, its operations
// moving, is progressing: the attempt goes on waiting on it instead of
// ending ps_timeout (which burnt attempts until the apply failed while the
// deploy went on and landed).
func TestLongDeployThatProgressesIsWaitedOn(t *testing.T) {
	e := setup(t, psdeploy.Options{StateTimeout: 500 * time.Millisecond, PollInterval: 10 * time.Millisecond},
		func(o *fakeps.Options) { o.CopySteps = 50 })
	ts := tasks()
	rec := newRecorder(ts)
	began := time.Now()
	if err := e.eng.Apply(context.Background(), rec.job(ts, 1), rec); err != nil {
		t.Fatalf("Apply: %v (after %s)", err, time.Since(began))
	}
	e.checkApplied(t, rec)
}

// An attempt stopped (its worker shutting down, its lease running out)
// while its deploy request is being deployed ends waiting on the deploy,
// not as a failed attempt; the next attempt resumes watching it.
func TestStopWhileDeployingIsAWait(t *testing.T) {
	e := setup(t, psdeploy.Options{}, func(o *fakeps.Options) { o.CopySteps = 1000 })
	ts := tasks()
	rec := newRecorder(ts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.eng.Apply(ctx, rec.job(ts, 1), rec) }()
	for i := 0; ; i++ {
		if _, ds, ok := e.srv.DeployRequest(1); ok && ds == "in_progress" {
			break
		}
		if i > 6000 {
			t.Fatal("the deploy never got under way")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	err := <-done
	var w *engine.WaitingError
	if !errors.As(err, &w) || !engine.IsRetryable(err) {
		t.Fatalf("stopped while deploying: %v (class %q), want a wait on the deploy", err, engine.Class(err))
	}
	if n := e.srv.Deploys(); n != 1 {
		t.Errorf("deploys = %d, want 1", n)
	}
}

// confirming is a recorder whose lease is lost once lost is set: Confirm
// fails, as the ledger's fenced write does.
type confirming struct {
	*recorder
	lost bool
}

func (c *confirming) Confirm(context.Context) error {
	if c.lost {
		return errors.New("lease lost")
	}
	return nil
}

// Every PlanetScale side effect is fenced on the lease: an attempt that
// lost its apply once the deploy request was opened does not deploy it.
func TestDeployFencedOnLease(t *testing.T) {
	e := setup(t, psdeploy.Options{})
	ts := tasks()
	rec := &confirming{recorder: newRecorder(ts)}
	rec.onSave = func(key, _ string) error {
		if key == psdeploy.StateDeployRequest {
			rec.lost = true // another worker takes the apply over
		}
		return nil
	}
	err := e.eng.Apply(context.Background(), rec.job(ts, 1), rec)
	if err == nil {
		t.Fatal("Apply succeeded after its lease was lost")
	}
	var te *engine.TaskError
	if errors.As(err, &te) {
		t.Errorf("a lost lease is not a task failure: %v", err)
	}
	if n := e.srv.Deploys(); n != 0 {
		t.Errorf("deployed %d times after the lease was lost, want 0", n)
	}
}
