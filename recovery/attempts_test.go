package recovery_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/engine"
	"github.com/ternhq/tern/recovery/recoverytest"
	"github.com/ternhq/tern/store"
)

// TestRealRunnerCrashOnLastAttempt: a worker dies on an apply's last
// attempt. Every dispatch counts, so the rescued apply is never claimed as
// attempt N+1 ("attempt 2/1"): the next pass only confirms, by re-planning,
// what the dead worker got done. Done everything: completed. Not: failed
// for good (retries_exhausted), and the rest never runs.
func TestRealRunnerCrashOnLastAttempt(t *testing.T) {
	tests := []struct {
		name    string
		ran     int // tasks the dead worker applied
		state   store.State
		class   string
		applied int // tasks the pass may apply: none
	}{
		{"died after task 1 of 2", 1, store.Failed, store.ClassRetriesExhausted, 0},
		// A completed apply keeps its last failure's class.
		{"died after its last task, before recording it", 2, store.Completed, store.ClassRescued, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, a := newLiveFixture(t, 1)
			ctx := context.Background()
			claimed, err := f.st.Claim(ctx, store.ClaimOptions{Owner: "dead-worker", Limit: 1, Lease: 50 * time.Millisecond})
			if err != nil || len(claimed) != 1 {
				t.Fatalf("claim: %v (%d)", err, len(claimed))
			}
			tasks, err := f.st.Tasks(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			var job engine.Job
			job.ApplyID, job.Attempt = a.ID, 1
			for _, tk := range tasks[:tt.ran] {
				job.Tasks = append(job.Tasks, engine.Task{Seq: tk.Seq, Table: tk.Table, Kind: tk.Kind, DDL: tk.DDL, Instant: tk.Instant})
			}
			// The dead worker ran its tasks but recorded none as done.
			if err := f.eng.Engine.Apply(ctx, job, noDone{recoverytest.NewRecorder(f.st, claimed[0])}); err != nil {
				t.Fatal(err)
			}
			f.waitLapsed(t, a.ID)
			res := f.run(t, f.pass())
			if res.Rescued != 1 {
				t.Fatalf("pass: %s, want rescued=1", res.Summary())
			}
			got := f.apply(t, a.ID)
			if got.Attempt != 1 {
				t.Errorf("attempt %d of max_attempts 1: the crashed attempt was not counted, or a dispatch beyond it was made", got.Attempt)
			}
			if got.State != tt.state || got.ErrorClass != tt.class {
				t.Fatalf("apply %s class %q (%s), want %s %q", got.State, got.ErrorClass, got.LastError, tt.state, tt.class)
			}
			for seq := 1; seq <= 2; seq++ {
				if n := f.eng.count(a.ID, seq); n != 0 {
					t.Errorf("task %d ran in the pass after the last attempt", seq)
				}
			}
			if tt.state == store.Failed && !strings.Contains(got.LastError, "nothing was run again") {
				t.Errorf("last error %q does not say nothing was run", got.LastError)
			}
			if res := f.run(t, f.pass()); len(res.Lines) != 0 {
				t.Errorf("a later pass touched the apply: %s", res.Summary())
			}
		})
	}
}

// noDone is a recorder of a worker that dies before it records a task
// done.
type noDone struct{ engine.Recorder }

func (noDone) TaskDone(context.Context, int) error { return nil }
