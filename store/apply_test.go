package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestApplyTransitionsInDB drives every state-changing operation from
// every apply state: the allowed ones change the row (state and version),
// the forbidden ones return the promised error and leave it alone.
func TestApplyTransitionsInDB(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)

	type outcome int
	const (
		ok outcome = iota
		conflict
		transition
		nothing // the operation finds nothing to do and reports no error
	)
	type op struct {
		name string
		to   State
		run  func(a *Apply) (int, error) // returns how many applies changed
		want func(from State) outcome
	}
	one := func(a *Apply, err error) (int, error) {
		if a == nil {
			return 0, err
		}
		return 1, err
	}
	finish := func(to State) op {
		return op{"finish_" + string(to), to,
			func(a *Apply) (int, error) { return one(s.FinishApply(ctx, a, to, "c", "m", time.Minute)) },
			func(from State) outcome {
				if to != Completed && to != Failed && to != FailedRetryable && to != Cancelled {
					return transition
				}
				if from == Running {
					return ok
				}
				return conflict
			}}
	}
	ops := []op{
		{"claim", Running,
			func(a *Apply) (int, error) {
				got, err := s.Claim(ctx, ClaimOptions{Owner: "w2", ApplyID: a.ID})
				return len(got), err
			},
			func(from State) outcome {
				if from == Pending || from == FailedRetryable {
					return ok
				}
				return nothing
			}},
		finish(Completed), finish(Failed), finish(FailedRetryable), finish(Cancelled), finish(Pending), finish(Running),
		{"cancel", Cancelled,
			func(a *Apply) (int, error) { return one(s.Cancel(ctx, a.ID, "bob", "no")) },
			func(from State) outcome {
				switch from {
				case Pending, FailedRetryable:
					return ok
				case Running:
					return conflict
				}
				return transition
			}},
		{"retry_now", Pending,
			func(a *Apply) (int, error) { return one(s.RetryNow(ctx, a.ID, "bob")) },
			func(from State) outcome {
				if from == FailedRetryable {
					return ok
				}
				return transition
			}},
		{"fail_exhausted", Failed,
			func(a *Apply) (int, error) {
				if _, err := s.DB().Exec(`UPDATE tern_applies SET attempt = max_attempts WHERE id = ?`, a.ID); err != nil {
					return 0, err
				}
				got, err := s.FailExhausted(ctx, 10)
				return len(got), err
			},
			func(from State) outcome {
				if from == FailedRetryable {
					return ok
				}
				return nothing
			}},
		{"rescue", FailedRetryable,
			func(a *Apply) (int, error) {
				if _, err := s.DB().Exec(`UPDATE tern_applies SET lease_expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE id = ?`, a.ID); err != nil {
					return 0, err
				}
				return one(s.Rescue(ctx, a, 3))
			},
			func(from State) outcome {
				if from == Running {
					return ok
				}
				return conflict
			}},
	}
	n := 0
	for _, from := range allStates {
		for _, o := range ops {
			n++
			env := fmt.Sprintf("env%d", n)
			t.Run(string(from)+"/"+o.name, func(t *testing.T) {
				a := newApply(t, s, "acme/shop", 1, "shop", env, 2)
				if _, err := s.DB().Exec(`UPDATE tern_applies SET state = ?, lease_owner = 'w1', lease_token = 'tok',
 lease_expires_at = UTC_TIMESTAMP(6) + INTERVAL 1 HOUR WHERE id = ?`, string(from), a.ID); err != nil {
					t.Fatal(err)
				}
				a.State, a.LeaseToken, a.LeaseOwner = from, "tok", "w1"
				_, v0 := rawApply(t, s, a.ID)
				changed, err := o.run(a)
				st, v1 := rawApply(t, s, a.ID)
				want := o.want(from)
				switch want {
				case ok:
					if err != nil || changed != 1 {
						t.Fatalf("%s from %s: changed %d, err %v; want success", o.name, from, changed, err)
					}
					if st != o.to || v1 <= v0 {
						t.Fatalf("%s from %s: state %s version %d->%d; want %s and a new version", o.name, from, st, v0, v1, o.to)
					}
					return
				case conflict:
					if !isConflict(err) {
						t.Fatalf("%s from %s: err %v, want *ConflictError", o.name, from, err)
					}
					var ce *ConflictError
					errors.As(err, &ce)
					if ce.Current != from {
						t.Errorf("ConflictError.Current = %q, want %q", ce.Current, from)
					}
				case transition:
					if !isTransition(err) {
						t.Fatalf("%s from %s: err %v, want *TransitionError", o.name, from, err)
					}
				case nothing:
					if err != nil || changed != 0 {
						t.Fatalf("%s from %s: changed %d, err %v; want nothing", o.name, from, changed, err)
					}
				}
				if st != from || v1 != v0 {
					t.Fatalf("%s from %s: row moved to %s version %d->%d; want it untouched", o.name, from, st, v0, v1)
				}
			})
		}
	}
}

func TestCreateApplyUniqueActive(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	first := newApply(t, s, "acme/shop", 1, "shop", "staging", 3)
	if first.State != Pending || first.Attempt != 0 || first.MaxAttempts != 5 || first.Version != 1 ||
		first.PR != 1 || first.DesiredHash != "hash-shop" || first.RequestedBy != "alice" {
		t.Fatalf("new apply = %+v", first)
	}
	ts, err := s.Tasks(ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 {
		t.Fatalf("tasks = %d, want 3", len(ts))
	}
	for i, tk := range ts {
		if tk.Seq != i+1 || tk.State != Pending || tk.DDL != fmt.Sprintf("ALTER TABLE t%d ADD COLUMN c int", i+1) ||
			tk.Instant != ((i+1)%2 == 0) || tk.Table != fmt.Sprintf("t%d", i+1) {
			t.Errorf("task %d = %+v", i, tk)
		}
	}

	// Another PR on the same target is refused, naming the holder.
	p2 := savePlan(t, s, "acme/shop", 2, "shop", "staging", 1)
	_, err = s.CreateApply(ctx, p2, "bob", false, 5)
	var ae *ActiveApplyError
	if !errors.As(err, &ae) || ae.ApplyID != first.ID || ae.PR != 1 || ae.State != Pending {
		t.Fatalf("second apply: err %v, want ActiveApplyError naming apply %d of #1", err, first.ID)
	}
	// Another environment is another target.
	if _, err := s.CreateApply(ctx, savePlan(t, s, "acme/shop", 2, "shop", "production", 1), "bob", false, 5); err != nil {
		t.Fatalf("other environment: %v", err)
	}
	// The slot frees when the apply ends.
	if _, err := s.Cancel(ctx, first.ID, "alice", "changed my mind"); err != nil {
		t.Fatal(err)
	}
	if got := taskStates(t, s, first.ID); fmt.Sprint(got) != "[cancelled cancelled cancelled]" {
		t.Fatalf("tasks after cancel = %v", got)
	}
	second, err := s.CreateApply(ctx, p2, "bob", false, 5)
	if err != nil {
		t.Fatalf("after cancel: %v", err)
	}
	act, err := s.ActiveApply(ctx, "acme/shop", "shop", "staging")
	if err != nil || act.ID != second.ID {
		t.Fatalf("ActiveApply = %v, %v; want %d", act, err, second.ID)
	}

	// Racing creators on a fresh target: exactly one wins.
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	plans := make([]*Plan, n)
	for i := range plans {
		plans[i] = savePlan(t, s, "acme/shop", 10+i, "shop", "race", 2)
	}
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = s.CreateApply(ctx, plans[i], "bob", false, 5)
		}(i)
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case errors.As(err, &ae):
		default:
			t.Errorf("racing CreateApply: %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d racing CreateApply won, want 1", wins)
	}
	var rows int
	s.DB().QueryRow(`SELECT COUNT(*) FROM tern_applies WHERE environment = 'race'`).Scan(&rows)
	if rows != 1 {
		t.Fatalf("%d applies on the raced target, want 1", rows)
	}
}

// TestApplyLifecycle walks one apply through its tasks and checks the
// stored states, the derivation and the audit log.
func TestApplyLifecycle(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	a0 := newApply(t, s, "acme/shop", 7, "shop", "staging", 3)
	got, err := s.Claim(ctx, ClaimOptions{Owner: "w1", Lease: time.Hour})
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %v %v", got, err)
	}
	a := got[0]
	if a.ID != a0.ID || a.State != Running || a.Attempt != 1 || a.LeaseOwner != "w1" || len(a.LeaseToken) != 32 ||
		!a.LeaseExpiresAt.After(a.UpdatedAt) || a.Version != 2 {
		t.Fatalf("claimed apply = %+v", a)
	}
	if err := s.StartTask(ctx, a, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishTask(ctx, a, 1, false); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishTask(ctx, a, 2, true); err != nil { // found live: pending -> completed
		t.Fatal(err)
	}
	if err := s.FinishTask(ctx, a, 2, true); !isTransition(err) {
		t.Fatalf("finishing a completed task: %v, want TransitionError", err)
	}
	if err := s.StartTask(ctx, a, 9); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown task: %v, want ErrNotFound", err)
	}
	if err := s.StartTask(ctx, a, 3); err != nil {
		t.Fatal(err)
	}
	if err := s.SetEngineState(ctx, a, "deploy_request", "17"); err != nil {
		t.Fatal(err)
	}
	if err := s.FailTask(ctx, a, 3, FailedRetryable, "lock_wait_timeout", "Lock wait timeout exceeded"); err != nil {
		t.Fatal(err)
	}
	if got := taskStates(t, s, a.ID); DeriveApplyState(got) != FailedRetryable {
		t.Fatalf("tasks %v derive %s", got, DeriveApplyState(got))
	}
	fin, err := s.FinishApply(ctx, a, FailedRetryable, "lock_wait_timeout", "Lock wait timeout exceeded", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if fin.State != FailedRetryable || fin.LeaseToken != "" || !fin.LeaseExpiresAt.IsZero() ||
		fin.EngineState["deploy_request"] != "17" || fin.ErrorClass != "lock_wait_timeout" ||
		fin.NextAttemptAt.Sub(fin.UpdatedAt) < 59*time.Minute || !fin.FinishedAt.IsZero() {
		t.Fatalf("after FinishApply(failed_retryable): %+v", fin)
	}
	// Not due for an hour: a claim finds nothing; RetryNow pulls it forward.
	if got, err := s.Claim(ctx, ClaimOptions{Owner: "w2"}); err != nil || len(got) != 0 {
		t.Fatalf("claim of a not-yet-due apply: %v %v", got, err)
	}
	if _, err := s.RetryNow(ctx, a.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	got, err = s.Claim(ctx, ClaimOptions{Owner: "w2", Lease: time.Hour})
	if err != nil || len(got) != 1 || got[0].Attempt != 2 {
		t.Fatalf("claim after retry: %v %v", got, err)
	}
	a2 := got[0]
	if a2.LeaseToken == a.LeaseToken {
		t.Fatal("a new claim reused the old lease token")
	}
	if err := s.StartTask(ctx, a2, 3); err != nil {
		t.Fatal(err)
	}
	ts, _ := s.Tasks(ctx, a.ID)
	if ts[2].Attempt != 2 || ts[1].Skipped != true || ts[0].Skipped || ts[0].FinishedAt.IsZero() {
		t.Fatalf("tasks = %+v", ts)
	}
	if err := s.FailTask(ctx, a2, 3, Failed, "syntax", "You have an error"); err != nil {
		t.Fatal(err)
	}
	fin, err = s.FinishApply(ctx, a2, Failed, "syntax", "You have an error", 0)
	if err != nil {
		t.Fatal(err)
	}
	if fin.State != Failed || fin.FinishedAt.IsZero() || fin.LastError != "You have an error" {
		t.Fatalf("after FinishApply(failed): %+v", fin)
	}
	if got := taskStates(t, s, a.ID); DeriveApplyState(got) != Failed {
		t.Fatalf("tasks %v derive %s", got, DeriveApplyState(got))
	}

	evs, err := s.Events(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range evs {
		actions = append(actions, e.Actor+":"+e.Action)
	}
	want := "[alice:apply.requested w1:apply.running w1:task.running w1:task.completed w1:task.completed w1:task.running " +
		"w1:apply.engine_state w1:task.failed_retryable w1:apply.failed_retryable bob:apply.pending w2:apply.running " +
		"w2:task.running w2:task.failed w2:apply.failed]"
	if fmt.Sprint(actions) != want {
		t.Fatalf("audit log:\n got %v\nwant %s", actions, want)
	}
}

// TestFinishApplyFailedCancelsTasks checks that failing an apply cancels
// the tasks it never finished, and that FailExhausted fails exhausted
// applies but not rescued ones.
func TestFinishApplyFailedCancelsTasks(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	newApply(t, s, "acme/shop", 1, "shop", "staging", 3)
	a := mustClaim(t, s, "w1")
	s.StartTask(ctx, a, 1)
	s.FinishTask(ctx, a, 1, false)
	s.StartTask(ctx, a, 2)
	if _, err := s.FinishApply(ctx, a, Failed, ClassDrift, "live schema drifted", 0); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(taskStates(t, s, a.ID)); got != "[completed cancelled cancelled]" {
		t.Fatalf("tasks = %s", got)
	}

	// Exhausted: attempt 1 of max 1.
	p := savePlan(t, s, "acme/shop", 2, "shop", "production", 2)
	if _, err := s.CreateApply(ctx, p, "alice", false, 1); err != nil {
		t.Fatal(err)
	}
	b := mustClaim(t, s, "w1")
	s.StartTask(ctx, b, 1)
	s.FailTask(ctx, b, 1, FailedRetryable, "deadlock", "Deadlock found")
	if _, err := s.FinishApply(ctx, b, FailedRetryable, "deadlock", "Deadlock found", time.Hour); err != nil {
		t.Fatal(err)
	}
	// A rescued apply at its attempt limit is not exhausted.
	c := newApply(t, s, "acme/shop", 3, "shop", "dev", 1)
	s.DB().Exec(`UPDATE tern_applies SET state = 'failed_retryable', attempt = 5, error_class = 'rescued' WHERE id = ?`, c.ID)
	failed, err := s.FailExhausted(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) != 1 || failed[0].ID != b.ID || failed[0].State != Failed ||
		failed[0].ErrorClass != ClassRetriesExhausted || failed[0].LastError != "Deadlock found" {
		t.Fatalf("FailExhausted = %+v", failed)
	}
	if got := fmt.Sprint(taskStates(t, s, b.ID)); got != "[failed cancelled]" {
		t.Fatalf("tasks = %s", got)
	}
	if st, _ := rawApply(t, s, c.ID); st != FailedRetryable {
		t.Fatalf("rescued apply is %s, want failed_retryable", st)
	}
}

func mustClaim(tb testing.TB, s *Store, owner string) *Apply {
	tb.Helper()
	got, err := s.Claim(context.Background(), ClaimOptions{Owner: owner, Lease: time.Hour, Limit: 1})
	if err != nil || len(got) != 1 {
		tb.Fatalf("claim: %v %v", got, err)
	}
	return got[0]
}
