package store

import (
	"context"
	"testing"
	"time"
)

// TestClaimNeverPassesMaxAttempts: every claim counts, and none raises the
// attempt past max_attempts: an apply claimed with its attempts used keeps
// its attempt and is marked NoAttemptsLeft. Wait gives a counted attempt
// back, and FailExhausted leaves a waiting apply alone.
func TestClaimNeverPassesMaxAttempts(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	p := savePlan(t, s, "acme/shop", 1, "db", "staging", 1)
	a, err := s.CreateApply(ctx, p, "alice", false, 1)
	if err != nil {
		t.Fatal(err)
	}
	claim := func() *Apply {
		t.Helper()
		got, err := s.Claim(ctx, ClaimOptions{Owner: "w", ApplyID: a.ID, Lease: time.Minute})
		if err != nil || len(got) != 1 {
			t.Fatalf("claim: %v (%d)", err, len(got))
		}
		return got[0]
	}
	c := claim()
	if c.Attempt != 1 || c.NoAttemptsLeft {
		t.Fatalf("first claim: attempt %d, no attempts left %v", c.Attempt, c.NoAttemptsLeft)
	}
	// Its worker dies; a rescue hands it back.
	if _, err := s.DB().Exec("UPDATE tern_applies SET lease_expires_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND WHERE id = ?", a.ID); err != nil {
		t.Fatal(err)
	}
	c.LeaseExpiresAt = time.Time{}
	if _, err := s.Rescue(ctx, c, 3); err != nil {
		t.Fatal(err)
	}
	c = claim()
	if c.Attempt != 1 || !c.NoAttemptsLeft {
		t.Fatalf("claim after the last attempt died: attempt %d, no attempts left %v; want 1, true", c.Attempt, c.NoAttemptsLeft)
	}
	if got := rawAttempt(t, s, a.ID); got != 1 {
		t.Fatalf("stored attempt %d, want 1", got)
	}
	// It waits on work under way: nothing to give back, and not exhausted.
	w, err := s.Wait(ctx, c, ClassStillRunning, "a DDL still runs", 0)
	if err != nil {
		t.Fatal(err)
	}
	if w.State != FailedRetryable || w.Attempt != 1 {
		t.Fatalf("after the wait: %s attempt %d", w.State, w.Attempt)
	}
	if ex, err := s.FailExhausted(ctx, 10); err != nil || len(ex) != 0 {
		t.Fatalf("FailExhausted took %d applies (%v) while it waits", len(ex), err)
	}

	// A counted attempt that waits is given back.
	b := newApply(t, s, "acme/shop", 2, "db2", "staging", 1)
	got, err := s.Claim(ctx, ClaimOptions{Owner: "w", ApplyID: b.ID, Lease: time.Minute})
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %v", err)
	}
	if w, err := s.Wait(ctx, got[0], ClassStillRunning, "waiting", 0); err != nil || w.Attempt != 0 {
		t.Fatalf("wait of a counted attempt: attempt %v (%v), want 0", w, err)
	}
}

func rawAttempt(tb testing.TB, s *Store, id int64) int {
	tb.Helper()
	var n int
	if err := s.DB().QueryRow("SELECT attempt FROM tern_applies WHERE id = ?", id).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestMigrateAfterCutShortRun: a migration whose statements ran but whose
// version was not recorded (the process died in between) is finished by
// the next Migrate: what it added is there already.
func TestMigrateAfterCutShortRun(t *testing.T) {
	s, _ := newStore(t)
	if _, err := s.DB().Exec("DELETE FROM tern_schema_migrations WHERE version = ?", LatestVersion()); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate again: %v", err)
	}
	if got := migrationRows(t, s); got != LatestVersion() {
		t.Errorf("%d migration rows, want %d", got, LatestVersion())
	}
}
