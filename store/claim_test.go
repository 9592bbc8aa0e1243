package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestClaimConcurrent: 8 claimers, each on its own pool, drain 2,000 due
// applies; every apply is claimed exactly once and none is missed.
func TestClaimConcurrent(t *testing.T) {
	ctx := context.Background()
	s, dsn := newStore(t)
	p := savePlan(t, s, "acme/shop", 1, "shop", "staging", 0)
	const total, claimers = 2000, 8
	insertApplies(t, s, p, total, Pending, "env")

	got := make([][]*Apply, claimers)
	errs := make([]error, claimers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < claimers; i++ {
		c := openStore(t, dsn)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			owner := fmt.Sprintf("claimer-%d", i)
			for {
				as, err := c.Claim(ctx, ClaimOptions{Owner: owner, Limit: 10, Lease: time.Hour})
				if err != nil {
					errs[i] = err
					return
				}
				if len(as) == 0 {
					return
				}
				got[i] = append(got[i], as...)
			}
		}(i)
	}
	close(start)
	wg.Wait()
	seen := map[int64]string{}
	for i, as := range got {
		if errs[i] != nil {
			t.Fatalf("claimer %d: %v", i, errs[i])
		}
		owner := fmt.Sprintf("claimer-%d", i)
		for _, a := range as {
			if prev, dup := seen[a.ID]; dup {
				t.Fatalf("apply %d claimed by %s and %s", a.ID, prev, owner)
			}
			seen[a.ID] = owner
			if a.State != Running || a.Attempt != 1 || a.LeaseOwner != owner {
				t.Fatalf("claimed apply %+v", a)
			}
		}
	}
	if len(seen) != total {
		t.Fatalf("%d applies claimed, want %d", len(seen), total)
	}
	var running, attempts int
	s.DB().QueryRow(`SELECT COUNT(*), SUM(attempt) FROM tern_applies WHERE state = 'running'`).Scan(&running, &attempts)
	if running != total || attempts != total {
		t.Fatalf("in the table: %d running with %d attempts, want %d and %d", running, attempts, total, total)
	}
	rows, err := s.DB().Query(`SELECT id, lease_owner FROM tern_applies`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var owner string
		rows.Scan(&id, &owner)
		if seen[id] != owner {
			t.Fatalf("apply %d is leased to %q in the table but was returned to %q", id, owner, seen[id])
		}
	}
}

// TestClaimOrderAndStates: pending before failed_retryable, oldest due
// first, States and ApplyID honoured.
func TestClaimOrderAndStates(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	p := savePlan(t, s, "acme/shop", 1, "shop", "staging", 0)
	insertApplies(t, s, p, 3, FailedRetryable, "fr")
	insertApplies(t, s, p, 3, Pending, "p")
	// Not yet due.
	insertApplies(t, s, p, 1, Pending, "later")
	s.DB().Exec(`UPDATE tern_applies SET next_attempt_at = UTC_TIMESTAMP(6) + INTERVAL 1 HOUR WHERE environment = 'later-0'`)

	as, err := s.Claim(ctx, ClaimOptions{Owner: "w", Limit: 4, States: []State{FailedRetryable}})
	if err != nil || len(as) != 3 {
		t.Fatalf("claim failed_retryable only: %d, %v", len(as), err)
	}
	for _, a := range as {
		if a.Environment[:2] != "fr" {
			t.Fatalf("claimed %s with States=[failed_retryable]", a.Environment)
		}
	}
	if _, err := s.Claim(ctx, ClaimOptions{Owner: "w", States: []State{Completed}}); !isTransition(err) {
		t.Fatalf("claim of completed applies: %v, want TransitionError", err)
	}
	var later int64
	s.DB().QueryRow(`SELECT id FROM tern_applies WHERE environment = 'later-0'`).Scan(&later)
	if as, err := s.Claim(ctx, ClaimOptions{Owner: "w", ApplyID: later}); err != nil || len(as) != 0 {
		t.Fatalf("claim of a not-yet-due apply by id: %v %v", as, err)
	}
	// The claim's SELECT goes through (state, next_attempt_at, id).
	if k := explainKey(t, s, `SELECT id FROM tern_applies WHERE state = 'pending' AND next_attempt_at <= UTC_TIMESTAMP(6)
 ORDER BY next_attempt_at, id LIMIT 10 FOR UPDATE SKIP LOCKED`); k != "tern_applies_due" {
		t.Fatalf("the claim's SELECT uses index %q, want tern_applies_due", k)
	}
	as, err = s.Claim(ctx, ClaimOptions{Owner: "w", Limit: 2})
	if err != nil || len(as) != 2 || as[0].Environment != "p-0" || as[1].Environment != "p-1" {
		t.Fatalf("claim in due order: %v %v", as, err)
	}
}

// TestClaimKilledConnection: a claimer whose connection is killed while it
// holds rows blocks no other claimer, and the rows it held are claimed
// afterwards: nothing is lost.
func TestClaimKilledConnection(t *testing.T) {
	ctx := context.Background()
	s, dsn := newStore(t)
	p := savePlan(t, s, "acme/shop", 1, "shop", "staging", 0)
	const total, held = 20, 5
	insertApplies(t, s, p, total, Pending, "env")

	victim := openStore(t, dsn)
	connID := make(chan int64, 1)
	release := make(chan struct{})
	victim.claimHook = func(ctx context.Context, tx *sql.Tx) {
		var id int64
		tx.QueryRowContext(ctx, `SELECT CONNECTION_ID()`).Scan(&id)
		connID <- id
		<-release
	}
	victimErr := make(chan error, 1)
	go func() {
		as, err := victim.Claim(ctx, ClaimOptions{Owner: "victim", Limit: held, Lease: time.Hour})
		if err == nil {
			err = fmt.Errorf("claimed %d applies on a killed connection", len(as))
		}
		victimErr <- err
	}()
	id := <-connID

	// While the victim holds its rows, another claimer takes the rest.
	other := openStore(t, dsn)
	claimed := map[int64]bool{}
	as, err := other.Claim(ctx, ClaimOptions{Owner: "other", Limit: 100, Lease: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != total-held {
		t.Fatalf("other claimer took %d while %d were held, want %d", len(as), held, total-held)
	}
	for _, a := range as {
		claimed[a.ID] = true
	}

	if _, err := s.DB().Exec(fmt.Sprintf("KILL %d", id)); err != nil {
		t.Fatalf("kill claimer connection: %v", err)
	}
	close(release)
	if err := <-victimErr; err == nil {
		t.Fatal("the killed claimer reported success")
	}
	// The server rolls the victim back; its rows come free.
	for tries := 0; len(claimed) < total && tries < 200; tries++ {
		as, err := other.Claim(ctx, ClaimOptions{Owner: "other", Limit: 100, Lease: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if claimed[a.ID] {
				t.Fatalf("apply %d claimed twice", a.ID)
			}
			claimed[a.ID] = true
		}
		if len(as) == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if len(claimed) != total {
		t.Fatalf("%d of %d applies claimed after the kill", len(claimed), total)
	}
	var victims int
	s.DB().QueryRow(`SELECT COUNT(*) FROM tern_applies WHERE lease_owner = 'victim' OR attempt <> 1`).Scan(&victims)
	if victims != 0 {
		t.Fatalf("%d applies carry the killed claim", victims)
	}
}

// TestLapsedLeaseRescue: a lapsed lease is found and rescued, and the old
// owner's late writes are refused by the fence, even after another worker
// has claimed the apply again.
func TestLapsedLeaseRescue(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	newApply(t, s, "acme/shop", 1, "shop", "staging", 2)
	old := mustClaim(t, s, "dead-worker")
	if err := s.StartTask(ctx, old, 1); err != nil {
		t.Fatal(err)
	}
	// A live lease is neither lapsed nor rescuable.
	if l, err := s.LapsedApplies(ctx, 10); err != nil || len(l) != 0 {
		t.Fatalf("lapsed before expiry: %v %v", l, err)
	}
	if _, err := s.Rescue(ctx, old, 3); !isConflict(err) {
		t.Fatalf("rescue of a live lease: %v, want conflict", err)
	}
	// The worker's last heartbeat was short; then it died.
	if err := s.ExtendLease(ctx, old, time.Microsecond); err != nil {
		t.Fatal(err)
	}
	lapsed := waitLapsed(t, s, old.ID)
	if lapsed.LeaseToken != old.LeaseToken {
		t.Fatal("lapsed apply carries another token")
	}
	r, err := s.Rescue(ctx, lapsed, 3)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != FailedRetryable || r.Rescues != 1 || r.ErrorClass != ClassRescued || r.LeaseToken != "" ||
		r.NextAttemptAt.After(r.UpdatedAt) {
		t.Fatalf("rescued apply = %+v", r)
	}
	ts, _ := s.Tasks(ctx, old.ID)
	if ts[0].State != FailedRetryable || ts[0].ErrorClass != ClassRescued || ts[1].State != Pending {
		t.Fatalf("tasks after rescue = %+v", ts)
	}
	if _, err := s.Rescue(ctx, lapsed, 3); !isConflict(err) {
		t.Fatalf("second rescue: %v, want conflict", err)
	}
	// Due now: a new worker takes it.
	fresh := mustClaim(t, s, "new-worker")
	if fresh.ID != old.ID || fresh.Attempt != 2 {
		t.Fatalf("re-claimed = %+v", fresh)
	}
	// The dead worker wakes up: every write it tries is refused.
	_, v0 := rawApply(t, s, old.ID)
	late := map[string]error{
		"StartTask":      s.StartTask(ctx, old, 2),
		"FinishTask":     s.FinishTask(ctx, old, 1, false),
		"FailTask":       s.FailTask(ctx, old, 1, Failed, "x", "y"),
		"SetEngineState": s.SetEngineState(ctx, old, "k", "v"),
		"ExtendLease":    s.ExtendLease(ctx, old, time.Hour),
	}
	_, err = s.FinishApply(ctx, old, Completed, "", "", 0)
	late["FinishApply"] = err
	for name, err := range late {
		var ce *ConflictError
		if !errors.As(err, &ce) || ce.Current != Running || ce.ID != old.ID {
			t.Errorf("late %s: %v, want ConflictError with current state running", name, err)
		}
	}
	if st, v1 := rawApply(t, s, old.ID); st != Running || v1 != v0 {
		t.Fatalf("late writes changed the apply: %s, version %d -> %d", st, v0, v1)
	}
	if got := fmt.Sprint(taskStates(t, s, old.ID)); got != "[failed_retryable pending]" {
		t.Fatalf("late writes changed the tasks: %s", got)
	}
	// The new owner's writes go through.
	if err := s.StartTask(ctx, fresh, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FinishApply(ctx, fresh, FailedRetryable, "x", "y", 0); err != nil {
		t.Fatal(err)
	}
}

// TestRescueExhausted: past maxRescues the apply fails for good.
func TestRescueExhausted(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	id := newApply(t, s, "acme/shop", 1, "shop", "staging", 3).ID
	for i := 0; i < 2; i++ {
		a := mustClaim(t, s, "w")
		if err := s.StartTask(ctx, a, 1); err != nil {
			t.Fatal(err)
		}
		if err := s.ExtendLease(ctx, a, time.Microsecond); err != nil {
			t.Fatal(err)
		}
		waitLapsed(t, s, a.ID)
		r, err := s.Rescue(ctx, a, 1)
		if err != nil {
			t.Fatal(err)
		}
		want, class := FailedRetryable, ClassRescued
		if i == 1 {
			want, class = Failed, ClassRescueExhausted
		}
		if r.State != want || r.ErrorClass != class || r.Rescues != i+1 {
			t.Fatalf("rescue %d: %s %s rescues=%d, want %s %s", i+1, r.State, r.ErrorClass, r.Rescues, want, class)
		}
	}
	if got := fmt.Sprint(taskStates(t, s, id)); got != "[failed cancelled cancelled]" {
		t.Fatalf("tasks = %s", got)
	}
}

// waitLapsed waits until LapsedApplies lists apply id (its lease was set
// to expire at once) and returns it.
func waitLapsed(tb testing.TB, s *Store, id int64) *Apply {
	tb.Helper()
	for tries := 0; tries < 500; tries++ {
		l, err := s.LapsedApplies(context.Background(), 10)
		if err != nil {
			tb.Fatal(err)
		}
		for _, a := range l {
			if a.ID == id {
				return a
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatalf("apply %d never showed up as lapsed", id)
	return nil
}
