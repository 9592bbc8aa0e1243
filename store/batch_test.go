package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// snapshot is what a fenced write may change: the apply's state and
// version, its tasks' states and attempts, and its audit rows.
type snapshot struct {
	state   State
	version int64
	tasks   string
	events  int
}

func snap(tb testing.TB, s *Store, id int64) snapshot {
	tb.Helper()
	st, v := rawApply(tb, s, id)
	ts, err := s.Tasks(context.Background(), id)
	if err != nil {
		tb.Fatal(err)
	}
	tasks := ""
	for _, t := range ts {
		tasks += fmt.Sprintf("%d:%s/%d ", t.Seq, t.State, t.Attempt)
	}
	evs, err := s.Events(context.Background(), id)
	if err != nil {
		tb.Fatal(err)
	}
	return snapshot{st, v, tasks, len(evs)}
}

// TestTaskMovesFenced runs every task write from every task state, with
// the lease held and with it lost: a write that may happen moves the task,
// bumps the apply's version and adds one audit row naming the states; any
// other ends with the typed error and leaves task, apply and audit log
// exactly as they were (the batch is all or nothing).
func TestTaskMovesFenced(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	type write struct {
		name string
		to   State
		run  func(a *Apply) error
	}
	writes := []write{
		{"start", Running, func(a *Apply) error { return s.StartTask(ctx, a, 1) }},
		{"finish", Completed, func(a *Apply) error { return s.FinishTask(ctx, a, 1, false) }},
		{"fail_retryable", FailedRetryable, func(a *Apply) error {
			return s.FailTask(ctx, a, 1, FailedRetryable, "lock_wait_timeout", "boom")
		}},
		{"fail", Failed, func(a *Apply) error { return s.FailTask(ctx, a, 1, Failed, "syntax", "bad") }},
	}
	n := 0
	for _, from := range allStates {
		for _, w := range writes {
			for _, leased := range []bool{true, false} {
				n++
				env := fmt.Sprintf("env%d", n)
				t.Run(fmt.Sprintf("%s/%s/leased=%v", from, w.name, leased), func(t *testing.T) {
					a := newApply(t, s, "acme/shop", 1, "shop", env, 2)
					got, err := s.Claim(ctx, ClaimOptions{Owner: "w1", ApplyID: a.ID, Lease: time.Hour})
					if err != nil || len(got) != 1 {
						t.Fatalf("claim: %d, %v", len(got), err)
					}
					a = got[0]
					if _, err := s.DB().Exec(`UPDATE tern_tasks SET state = ? WHERE apply_id = ? AND seq = 1`, string(from), a.ID); err != nil {
						t.Fatal(err)
					}
					if !leased {
						// Another worker's lease now.
						if _, err := s.DB().Exec(`UPDATE tern_applies SET lease_token = 'other' WHERE id = ?`, a.ID); err != nil {
							t.Fatal(err)
						}
					}
					before := snap(t, s, a.ID)
					err = w.run(a)
					after := snap(t, s, a.ID)
					switch {
					case !leased:
						var ce *ConflictError
						if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) || ce.Current != Running {
							t.Fatalf("err %v, want *ConflictError with current running", err)
						}
					case !CanTransitionTask(from, w.to):
						var te *TransitionError
						if !errors.As(err, &te) || te.From != from || te.To != w.to {
							t.Fatalf("err %v, want *TransitionError %s -> %s", err, from, w.to)
						}
					default:
						if err != nil {
							t.Fatalf("err %v, want success", err)
						}
						ts, _ := s.Tasks(ctx, a.ID)
						if ts[0].State != w.to || ts[1].State != Pending {
							t.Fatalf("tasks %s, want task 1 %s and task 2 untouched", after.tasks, w.to)
						}
						if after.version != before.version+1 || after.events != before.events+1 || after.state != Running {
							t.Fatalf("apply %s version %d->%d, %d->%d events; want running, +1, +1",
								after.state, before.version, after.version, before.events, after.events)
						}
						evs, _ := s.Events(ctx, a.ID)
						last := evs[len(evs)-1]
						if want := fmt.Sprintf("task 1: %s -> %s", from, w.to); last.Action != "task."+string(w.to) ||
							last.Actor != "w1" || len(last.Detail) < len(want) || last.Detail[:len(want)] != want {
							t.Fatalf("audit row %s %s %q, want task.%s by w1 %q...", last.Actor, last.Action, last.Detail, w.to, want)
						}
						return
					}
					if after != before {
						t.Fatalf("a refused write changed the ledger: %+v -> %+v", before, after)
					}
				})
			}
		}
	}
}

// TestTaskMoveMissingTask: a task that does not exist is ErrNotFound and
// nothing is written.
func TestTaskMoveMissingTask(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	a := newApply(t, s, "acme/shop", 1, "shop", "staging", 1)
	got, err := s.Claim(ctx, ClaimOptions{Owner: "w1", ApplyID: a.ID})
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %d, %v", len(got), err)
	}
	a = got[0]
	before := snap(t, s, a.ID)
	if err := s.StartTask(ctx, a, 7); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err %v, want ErrNotFound", err)
	}
	if after := snap(t, s, a.ID); after != before {
		t.Fatalf("ledger changed: %+v -> %+v", before, after)
	}
}

// TestFinishApplyLostLease: FinishApply after the lease was lost is a
// conflict that moves no task and writes no audit row; with the lease it
// returns the row as stored (the batch's read-back) and audits once.
func TestFinishApplyLostLease(t *testing.T) {
	ctx := context.Background()
	for _, to := range []State{Completed, Failed, FailedRetryable, Cancelled} {
		t.Run(string(to), func(t *testing.T) {
			s, _ := newStore(t)
			a := newApply(t, s, "acme/shop", 1, "shop", "staging", 2)
			got, err := s.Claim(ctx, ClaimOptions{Owner: "w1", ApplyID: a.ID})
			if err != nil || len(got) != 1 {
				t.Fatalf("claim: %d, %v", len(got), err)
			}
			a = got[0]
			if err := s.StartTask(ctx, a, 1); err != nil {
				t.Fatal(err)
			}
			lost := *a
			lost.LeaseToken = "stale"
			before := snap(t, s, a.ID)
			if _, err := s.FinishApply(ctx, &lost, to, "c", "m", time.Minute); !isConflict(err) {
				t.Fatalf("err %v, want conflict", err)
			}
			if after := snap(t, s, a.ID); after != before {
				t.Fatalf("ledger changed: %+v -> %+v", before, after)
			}
			out, err := s.FinishApply(ctx, a, to, "c", "m", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := s.Apply(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprintf("%+v", *out) != fmt.Sprintf("%+v", *stored) {
				t.Fatalf("FinishApply returned\n%+v\nthe ledger holds\n%+v", *out, *stored)
			}
			after := snap(t, s, a.ID)
			if after.state != to || after.version != before.version+1 {
				t.Fatalf("apply %s version %d, want %s version %d", after.state, after.version, to, before.version+1)
			}
			wantEvents := before.events + 1 // apply.<to>
			switch to {
			case Failed, Cancelled:
				wantEvents += 2 // both tasks cancelled
			case FailedRetryable:
				wantEvents++ // the running task
			}
			if after.events != wantEvents {
				t.Fatalf("%d audit rows, want %d", after.events, wantEvents)
			}
		})
	}
}

// TestExtendLease: the extension is fenced, uses the database's clock and
// leaves the version alone; a lost lease is a conflict naming the state.
func TestExtendLease(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	a := newApply(t, s, "acme/shop", 1, "shop", "staging", 1)
	got, err := s.Claim(ctx, ClaimOptions{Owner: "w1", ApplyID: a.ID, Lease: time.Minute})
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %d, %v", len(got), err)
	}
	a = got[0]
	_, v0 := rawApply(t, s, a.ID)
	if err := s.ExtendLease(ctx, a, time.Hour); err != nil {
		t.Fatal(err)
	}
	var stored time.Time
	var inHour bool
	if err := s.DB().QueryRow(`SELECT lease_expires_at, lease_expires_at > UTC_TIMESTAMP(6) + INTERVAL 59 MINUTE
 FROM tern_applies WHERE id = ?`, a.ID).Scan(&stored, &inHour); err != nil {
		t.Fatal(err)
	}
	if !a.LeaseExpiresAt.Equal(stored) || !inHour {
		t.Fatalf("lease expires %v, stored %v (an hour from the database's now: %v)", a.LeaseExpiresAt, stored, inHour)
	}
	if _, v1 := rawApply(t, s, a.ID); v1 != v0 {
		t.Fatalf("version %d -> %d, want unchanged", v0, v1)
	}
	if _, err := s.FinishApply(ctx, a, FailedRetryable, "c", "m", time.Hour); err != nil {
		t.Fatal(err)
	}
	err = s.ExtendLease(ctx, a, time.Hour)
	var ce *ConflictError
	if !errors.As(err, &ce) || ce.Current != FailedRetryable {
		t.Fatalf("err %v, want *ConflictError with current failed_retryable", err)
	}
}
