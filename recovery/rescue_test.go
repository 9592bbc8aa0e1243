package recovery_test

import (
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
