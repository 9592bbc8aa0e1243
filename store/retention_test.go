package store

import (
	"context"
	"testing"
	"time"
)

// Prune removes, in bounded batches, old processed deliveries, old
// superseded plans no apply ran, and the events of old applies that ended
// and were reported; a dry run counts the same rows and removes nothing;
// what a pending delivery, an open PR's latest plan, an apply or a pending
// report needs stays.
func TestPrune(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := s.DB().ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := s.DB().QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	old := time.Now().UTC().Add(-400 * 24 * time.Hour)

	// Deliveries: two old processed (pruned), an old pending and a new
	// processed one (kept).
	for _, id := range []string{"old-done", "old-failed", "old-pending", "new-done"} {
		if _, err := s.RecordDelivery(ctx, Delivery{ID: id, Event: "ping", Payload: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	exec("UPDATE tern_deliveries SET state = 'done' WHERE id IN ('old-done', 'new-done')")
	exec("UPDATE tern_deliveries SET state = 'failed' WHERE id = 'old-failed'")
	exec("UPDATE tern_deliveries SET received_at = ? WHERE id LIKE 'old-%'", old)

	// Plans of one PR and target: superseded and unused (pruned),
	// superseded but applied (kept), the latest (kept, however old).
	unused := savePlan(t, s, "acme/shop", 1, "shop", "staging", 1)
	applied := newApply(t, s, "acme/shop", 1, "shop", "staging", 1)
	latest := savePlan(t, s, "acme/shop", 1, "shop", "staging", 1)
	exec("UPDATE tern_plans SET created_at = ?", old)

	// Applies on their own targets: ended and reported long ago (events
	// pruned), ended but not reported (kept), active (kept).
	reported := newApply(t, s, "acme/shop", 2, "shop", "e1", 1)
	unreported := newApply(t, s, "acme/shop", 3, "shop", "e2", 1)
	active := newApply(t, s, "acme/shop", 4, "shop", "e3", 1)
	exec("UPDATE tern_applies SET state = 'completed', finished_at = ?, reported_version = version WHERE id IN (?, ?)", old, reported.ID, applied.ID)
	exec("UPDATE tern_applies SET state = 'failed', finished_at = ?, version = version + 1 WHERE id = ?", old, unreported.ID)
	eventsOf := func(id int64) int { return count("SELECT COUNT(*) FROM tern_events WHERE apply_id = ?", id) }
	reportedEvents := eventsOf(reported.ID) + eventsOf(applied.ID)
	if reportedEvents == 0 || eventsOf(unreported.ID) == 0 || eventsOf(active.ID) == 0 {
		t.Fatal("CreateApply wrote no events to prune")
	}
	keepEvents := eventsOf(unreported.ID) + eventsOf(active.ID)

	r := Retention{Deliveries: 14 * 24 * time.Hour, SupersededPlans: 30 * 24 * time.Hour, Events: 180 * 24 * time.Hour}
	want := Pruned{Deliveries: 2, Plans: 1, Events: reportedEvents}
	got, err := s.Prune(ctx, r, true)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("dry run: %+v, want %+v", got, want)
	}
	if n := count("SELECT COUNT(*) FROM tern_deliveries"); n != 4 {
		t.Errorf("a dry run removed deliveries: %d left", n)
	}

	// One batch of one row per kind, then the rest.
	small := r
	small.Batch, small.MaxBatches = 1, 1
	if got, err = s.Prune(ctx, small, false); err != nil {
		t.Fatal(err)
	}
	if got != (Pruned{Deliveries: 1, Plans: 1, Events: 1}) {
		t.Errorf("one batch of one: %+v", got)
	}
	if got, err = s.Prune(ctx, r, false); err != nil {
		t.Fatal(err)
	}
	if want := (Pruned{Deliveries: 1, Events: reportedEvents - 1}); got != want {
		t.Errorf("the rest: %+v, want %+v", got, want)
	}
	if got, err = s.Prune(ctx, r, false); err != nil || got != (Pruned{}) {
		t.Errorf("a third prune: %+v %v, want nothing", got, err)
	}

	if n := count("SELECT COUNT(*) FROM tern_deliveries WHERE id IN ('old-pending', 'new-done')"); n != 2 {
		t.Errorf("%d of the pending and the recent delivery kept, want 2", n)
	}
	if n := count("SELECT COUNT(*) FROM tern_plans WHERE id = ?", unused.ID); n != 0 {
		t.Error("the superseded unused plan is still there")
	}
	if n := count("SELECT COUNT(*) FROM tern_plans WHERE id IN (?, ?)", applied.PlanID, latest.ID); n != 2 {
		t.Errorf("%d of the applied and the latest plan kept, want 2", n)
	}
	if n := eventsOf(unreported.ID) + eventsOf(active.ID); n != keepEvents {
		t.Errorf("events of unreported and active applies: %d, want %d", n, keepEvents)
	}
	if n := eventsOf(reported.ID) + eventsOf(applied.ID); n != 0 {
		t.Errorf("%d events of reported old applies left", n)
	}
}
