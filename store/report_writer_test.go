package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// The report writer's life: a reporter taken over from has its writes
// refused and learns it was overtaken at its end; taking over from one
// with a write in flight makes the apply due a recheck once the write can
// no longer land (ReportDue lists it then), and the forced report that
// runs then clears it. A claim the old reporter left is taken over only
// once its write can no longer land.
func TestReportWriterTakeOver(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	a := newApply(t, s, "acme/shop", 7, "shop", "staging", 1)
	const bound = 1500 * time.Millisecond
	key := fmt.Sprintf("apply/%d/comment", a.ID)

	old, err := s.BeginReportWrite(ctx, a.ID, bound)
	if err != nil || old.Force {
		t.Fatalf("first report: %+v %v, want no force", old, err)
	}
	if err := s.ReportWriteSending(ctx, old); err != nil {
		t.Fatal(err)
	}
	claim, err := s.ClaimRef(ctx, "acme/shop", key, time.Hour)
	if err != nil || claim == nil {
		t.Fatalf("claim: %v %v", claim, err)
	}
	fresh, err := s.BeginReportWrite(ctx, a.ID, bound)
	if err != nil || !fresh.Force {
		t.Fatalf("report taking over: %+v %v, want force", fresh, err)
	}
	if err := s.ReportWriteSending(ctx, old); !errors.Is(err, ErrReportOvertaken) {
		t.Errorf("old reporter's write: %v, want ErrReportOvertaken", err)
	}
	if c, err := s.TakeOverRefClaim(ctx, "acme/shop", key, fresh); err != nil || c != nil {
		t.Errorf("claim taken over while the old write may land: %v %v", c, err)
	}
	if overtaken, err := s.EndReportWrite(ctx, old); err != nil || !overtaken {
		t.Errorf("old reporter's end: overtaken %v %v, want true", overtaken, err)
	}
	if overtaken, err := s.EndReportWrite(ctx, fresh); err != nil || overtaken {
		t.Errorf("fresh reporter's end: overtaken %v %v, want false", overtaken, err)
	}
	if err := s.MarkReported(ctx, a.ID, a.Version); err != nil {
		t.Fatal(err)
	}

	// Due a recheck once the old write can no longer land.
	deadline := time.Now().Add(time.Minute)
	for {
		due, err := s.ReportDue(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) == 1 && due[0].ID == a.ID {
			break
		}
		if len(due) != 0 || time.Now().After(deadline) {
			t.Fatalf("due %v, want apply %d alone once the recheck is due", due, a.ID)
		}
		time.Sleep(50 * time.Millisecond)
	}
	recheck, err := s.BeginReportWrite(ctx, a.ID, bound)
	if err != nil || !recheck.Force {
		t.Fatalf("recheck: %+v %v, want force", recheck, err)
	}
	if c, err := s.TakeOverRefClaim(ctx, "acme/shop", key, recheck); err != nil || c == nil {
		t.Errorf("claim not taken over once the old write could not land: %v %v", c, err)
	}
	if overtaken, err := s.EndReportWrite(ctx, recheck); err != nil || overtaken {
		t.Fatalf("recheck's end: %v %v", overtaken, err)
	}
	if due, err := s.ReportDue(ctx, 10); err != nil || len(due) != 0 {
		t.Errorf("still due after the recheck: %v %v", due, err)
	}
	if w, err := s.BeginReportWrite(ctx, a.ID, bound); err != nil || w.Force {
		t.Errorf("next report: %+v %v, want no force", w, err)
	}
}
