package store

import (
	"context"
	"testing"
	"time"
)

// TestPromiseAndProgress: a plan's ALGORITHM/LOCK promise reaches its
// tasks, --allow-blocking its apply, and a running task's progress is
// recorded (bumping the apply's version so it is reported) only under the
// apply's lease.
func TestPromiseAndProgress(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	p := &Plan{Repository: "o/r", PR: 1, HeadSHA: "abc", InstallationID: 1, Database: "d", Environment: "e",
		DesiredHash: "h", Desired: []byte("x"), Lint: []byte("[]"),
		Statements: []Statement{{Table: "orders", Kind: "alter", DDL: "ALTER TABLE orders MODIFY a bigint",
			Algorithm: "COPY", Lock: "SHARED", Cost: `{"algorithm":"COPY"}`}}}
	if err := s.SavePlan(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, err := s.Plan(ctx, p.ID)
	if err != nil || got.Statements[0] != p.Statements[0] {
		t.Fatalf("stored statement = %+v, %v", got.Statements, err)
	}
	a, err := s.CreateApplyWith(ctx, p, ApplyRequest{RequestedBy: "alice", AllowBlocking: true, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !a.AllowBlocking || a.AllowUnsafe {
		t.Fatalf("apply flags: blocking %v unsafe %v", a.AllowBlocking, a.AllowUnsafe)
	}
	tasks, err := s.Tasks(ctx, a.ID)
	if err != nil || tasks[0].Algorithm != "COPY" || tasks[0].Lock != "SHARED" || !tasks[0].Progress.At.IsZero() {
		t.Fatalf("task = %+v, %v", tasks, err)
	}
	// Not leased: refused.
	if err := s.SetTaskProgress(ctx, a, 1, Progress{Stage: "copy", Percent: 5}); !isConflict(err) {
		t.Fatalf("progress without a lease: %v", err)
	}
	as, err := s.Claim(ctx, ClaimOptions{Owner: "w", Limit: 1, Lease: time.Minute})
	if err != nil || len(as) != 1 {
		t.Fatalf("claim: %v %v", as, err)
	}
	a = as[0]
	if err := s.StartTask(ctx, a, 1); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Apply(ctx, a.ID)
	if err := s.SetTaskProgress(ctx, a, 1, Progress{Stage: "copy to tmp table", Percent: 43.5, Remaining: 3 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	after, _ := s.Apply(ctx, a.ID)
	if after.Version <= before.Version {
		t.Fatalf("version %d -> %d: progress must be reported", before.Version, after.Version)
	}
	tasks, _ = s.Tasks(ctx, a.ID)
	pr := tasks[0].Progress
	if pr.Stage != "copy to tmp table" || pr.Percent != 43.5 || pr.Remaining != 3*time.Minute || pr.At.IsZero() {
		t.Fatalf("progress = %+v", pr)
	}
}
