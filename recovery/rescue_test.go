package recovery_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/ternhq/tern/recovery"
	"github.com/ternhq/tern/store"
)

// TestRescueBackoffAndSpread: after an outage every running apply's lease
// has lapsed. The pass that rescues them must not make them all due at
// once (each would hit its target in that same pass): a rescued apply
// waits its backoff, and the pass's rescues become due Parallel at a time,
// RescueSpread apart.
func TestRescueBackoffAndSpread(t *testing.T) {
	e := newEnv(t)
	applies := e.seed(t, 6, 1, 5)
	e.run(t, e.pass(func(p *recovery.Pass) { p.Runner = crashRunner{}; p.Lease = 50 * time.Millisecond }))
	for _, a := range applies {
		e.waitLapsed(t, a.ID)
	}
	const (
		backoff = time.Minute
		spread  = 10 * time.Second
	)
	before := time.Now().UTC()
	res := e.run(t, e.pass(func(p *recovery.Pass) {
		p.Parallel = 2
		p.RescueBackoff = func(int) time.Duration { return backoff }
		p.RescueSpread = spread
	}))
	if res.Rescued != 6 || res.Recovered != 0 {
		t.Fatalf("pass: %s, want rescued=6 and none run", res.Summary())
	}
	if runs := e.runs(t); len(runs) != 0 {
		t.Errorf("rescued applies ran in the rescuing pass: %v", runs)
	}
	var due []time.Time
	for _, a := range applies {
		got := e.apply(t, a.ID)
		if got.State != store.FailedRetryable {
			t.Fatalf("apply %d is %s, want failed_retryable", a.ID, got.State)
		}
		if got.NextAttemptAt.Before(before.Add(backoff - time.Second)) {
			t.Errorf("apply %d due at %v, less than its backoff after the rescue (%v)", a.ID, got.NextAttemptAt, before)
		}
		due = append(due, got.NextAttemptAt)
	}
	sort.Slice(due, func(i, j int) bool { return due[i].Before(due[j]) })
	// Slots of 2: 0, 0, 10s, 10s, 20s, 20s.
	for i := 2; i < len(due); i++ {
		if d := due[i].Sub(due[i-2]); d < spread {
			t.Errorf("rescues %d and %d due %v apart, want at least %v", i-2, i, d, spread)
		}
	}
}

// TestUnderWayNeverRescueExhausted: an apply whose recorded engine state
// names work under way outside tern (a deploy request) is rescued however
// often its worker dies: failing it for good (rescue_exhausted) could
// leave the work to land behind a failed apply.
func TestUnderWayNeverRescueExhausted(t *testing.T) {
	e := newEnv(t)
	a := e.seed(t, 1, 1, 10)[0]
	ctx := context.Background()
	claimed, err := e.st.Claim(ctx, store.ClaimOptions{Owner: "w", ApplyID: a.ID, Lease: time.Minute})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v", err)
	}
	if err := e.st.SetEngineState(ctx, claimed[0], "ps_deploy_request", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.FinishApply(ctx, claimed[0], store.FailedRetryable, "interrupted", "stopped", 0); err != nil {
		t.Fatal(err)
	}
	const maxRescues = 1
	crash := func(p *recovery.Pass) {
		p.Runner = crashRunner{}
		p.Lease = 50 * time.Millisecond
		p.MaxRescues = maxRescues
		p.UnderWay = func(a *store.Apply) bool { return a.EngineState["ps_deploy_request"] != "" }
	}
	e.run(t, e.pass(crash))
	for range maxRescues + 2 {
		e.waitLapsed(t, a.ID)
		e.run(t, e.pass(crash))
	}
	got := e.apply(t, a.ID)
	if got.State.Terminal() || got.Rescues <= maxRescues {
		t.Fatalf("apply %s (%s) after %d rescues, want still retrying past max_rescues %d", got.State, got.ErrorClass, got.Rescues, maxRescues)
	}
}
