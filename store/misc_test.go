package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTakeLock(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	l := Lock{Repository: "acme/shop", Database: "shop", Environment: "staging", PR: 1, InstallationID: 42}
	if err := s.TakeLock(ctx, l); err != nil {
		t.Fatal(err)
	}
	if err := s.TakeLock(ctx, l); err != nil {
		t.Fatalf("holder taking its lock again: %v", err)
	}
	other := l
	other.PR = 2
	err := s.TakeLock(ctx, other)
	var held *LockHeldError
	if !errors.As(err, &held) || held.Lock.PR != 1 || held.Lock.InstallationID != 42 {
		t.Fatalf("TakeLock by #2: %v, want LockHeldError naming #1", err)
	}
	if !strings.Contains(err.Error(), "#1") {
		t.Fatalf("error %q does not name #1", err)
	}
	got, err := s.GetLock(ctx, "acme/shop", "shop", "staging")
	if err != nil || got.PR != 1 || got.CreatedAt.IsZero() {
		t.Fatalf("GetLock = %+v, %v", got, err)
	}
	if _, err := s.GetLock(ctx, "acme/shop", "shop", "production"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetLock of an unlocked target: %v", err)
	}

	// A second lock for #1, then release by (db, env) and all at once.
	prod := l
	prod.Environment = "production"
	if err := s.TakeLock(ctx, prod); err != nil {
		t.Fatal(err)
	}
	if rel, err := s.ReleaseLocks(ctx, "acme/shop", 2, "", ""); err != nil || len(rel) != 0 {
		t.Fatalf("release by a PR holding nothing: %v %v", rel, err)
	}
	if rel, err := s.ReleaseLocks(ctx, "acme/shop", 1, "shop", "production"); err != nil || len(rel) != 1 || rel[0].Environment != "production" {
		t.Fatalf("release one: %v %v", rel, err)
	}
	if ls, _ := s.LocksForPR(ctx, "acme/shop", 1); len(ls) != 1 || ls[0].Environment != "staging" {
		t.Fatalf("locks left = %+v", ls)
	}
	if err := s.TakeLock(ctx, prod); err != nil {
		t.Fatal(err)
	}
	rel, err := s.ReleaseLocks(ctx, "acme/shop", 1, "", "")
	if err != nil || len(rel) != 2 {
		t.Fatalf("release all: %v %v", rel, err)
	}
	if err := s.TakeLock(ctx, other); err != nil {
		t.Fatalf("#2 after release: %v", err)
	}

	// Racing PRs on a free target: exactly one holds it, the rest are told who.
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = s.TakeLock(ctx, Lock{Repository: "acme/shop", Database: "shop", Environment: "race", PR: 100 + i})
		}(i)
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		if err == nil {
			if winner >= 0 {
				t.Fatalf("#%d and #%d both took the lock", 100+winner, 100+i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("nobody took the lock")
	}
	for i, err := range errs {
		if i != winner && (!errors.As(err, &held) || held.Lock.PR != 100+winner) {
			t.Fatalf("loser #%d: %v, want LockHeldError naming #%d", 100+i, err, 100+winner)
		}
	}
}

func TestOpenPRs(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	s.TakeLock(ctx, Lock{Repository: "acme/shop", Database: "shop", Environment: "staging", PR: 1, InstallationID: 7})
	newApply(t, s, "acme/shop", 1, "shop", "staging", 1)
	newApply(t, s, "acme/web", 2, "web", "staging", 1)
	done := newApply(t, s, "acme/web", 3, "web", "production", 1)
	s.Cancel(ctx, done.ID, "x", "y")
	got, err := s.OpenPRs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[{acme/shop 1 42} {acme/web 2 42}]" {
		t.Fatalf("OpenPRs = %v", got)
	}
}

func TestDeliveries(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	d := Delivery{ID: "d-1", Event: "issue_comment", Payload: []byte(`{"action":"created"}`)}
	if ok, err := s.RecordDelivery(ctx, d); err != nil || !ok {
		t.Fatalf("first record: %v %v", ok, err)
	}
	dup := d
	dup.Payload = []byte(`{"action":"edited"}`)
	if ok, err := s.RecordDelivery(ctx, dup); err != nil || ok {
		t.Fatalf("redelivery: %v %v, want false", ok, err)
	}
	got, err := s.ClaimDeliveries(ctx, "w1", 10, time.Hour)
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %v %v", got, err)
	}
	if got[0].ID != "d-1" || string(got[0].Payload) != `{"action":"created"}` || got[0].Attempts != 1 || got[0].Event != "issue_comment" {
		t.Fatalf("claimed %+v", got[0])
	}
	if again, err := s.ClaimDeliveries(ctx, "w2", 10, time.Hour); err != nil || len(again) != 0 {
		t.Fatalf("claim of a leased delivery: %v %v", again, err)
	}
	if err := s.FinishDelivery(ctx, "d-1", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.FinishDelivery(ctx, "d-1", ""); err != nil {
		t.Fatalf("finishing twice: %v", err)
	}
	if err := s.FinishDelivery(ctx, "nope", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("finish unknown: %v", err)
	}
	// A processor dies: its lease lapses and another takes the delivery.
	s.RecordDelivery(ctx, Delivery{ID: "d-2", Event: "pull_request", Payload: []byte("{}")})
	if got, _ := s.ClaimDeliveries(ctx, "w1", 10, time.Microsecond); len(got) != 1 || got[0].ID != "d-2" {
		t.Fatalf("claim d-2: %v", got)
	}
	var retaken []Delivery
	for tries := 0; len(retaken) == 0 && tries < 500; tries++ {
		if retaken, err = s.ClaimDeliveries(ctx, "w2", 10, time.Hour); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(retaken) != 1 || retaken[0].ID != "d-2" || retaken[0].Attempts != 2 {
		t.Fatalf("lapsed delivery: %+v", retaken)
	}
	if err := s.FinishDelivery(ctx, "d-2", "boom"); err != nil {
		t.Fatal(err)
	}
	var st, msg string
	s.DB().QueryRow(`SELECT state, last_error FROM tern_deliveries WHERE id = 'd-2'`).Scan(&st, &msg)
	if st != "failed" || msg != "boom" {
		t.Fatalf("d-2 is %s %q", st, msg)
	}
	if got, _ := s.ClaimDeliveries(ctx, "w3", 10, time.Hour); len(got) != 0 {
		t.Fatalf("finished deliveries claimed again: %v", got)
	}

	// Concurrent claimers never share a delivery.
	for i := 0; i < 50; i++ {
		s.RecordDelivery(ctx, Delivery{ID: fmt.Sprintf("c-%d", i), Event: "ping", Payload: []byte("{}")})
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				ds, err := s.ClaimDeliveries(ctx, fmt.Sprint(w), 3, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					seen[d.ID]++
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	if len(seen) != 50 {
		t.Fatalf("%d of 50 deliveries claimed", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("delivery %s claimed %d times", id, n)
		}
	}
}

func TestRefs(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if _, _, err := s.Ref(ctx, "acme/shop", "plan-comment/1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing ref: %v", err)
	}
	if err := s.SetRef(ctx, "acme/shop", "plan-comment/1", 111, "sha=abc"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetRef(ctx, "acme/web", "plan-comment/1", 999, ""); err != nil {
		t.Fatal(err)
	}
	if id, meta, err := s.Ref(ctx, "acme/shop", "plan-comment/1"); err != nil || id != 111 || meta != "sha=abc" {
		t.Fatalf("Ref = %d %q %v", id, meta, err)
	}
	if err := s.SetRef(ctx, "acme/shop", "plan-comment/1", 222, "sha=def"); err != nil {
		t.Fatal(err)
	}
	if id, meta, err := s.Ref(ctx, "acme/shop", "plan-comment/1"); err != nil || id != 222 || meta != "sha=def" {
		t.Fatalf("Ref after update = %d %q %v", id, meta, err)
	}
	if id, _, _ := s.Ref(ctx, "acme/web", "plan-comment/1"); id != 999 {
		t.Fatalf("other repository's ref = %d", id)
	}
}

func TestReportDue(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	due := func() []int64 {
		as, err := s.ReportDue(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, a := range as {
			ids = append(ids, a.ID)
		}
		return ids
	}
	a := newApply(t, s, "acme/shop", 1, "shop", "staging", 1)
	if got := due(); fmt.Sprint(got) != fmt.Sprint([]int64{a.ID}) {
		t.Fatalf("due after create = %v", got)
	}
	if err := s.MarkReported(ctx, a.ID, a.Version); err != nil {
		t.Fatal(err)
	}
	if got := due(); len(got) != 0 {
		t.Fatalf("due after report = %v", got)
	}
	c := mustClaim(t, s, "w")
	if got := due(); len(got) != 1 || c.Version != a.Version+1 {
		t.Fatalf("due after claim = %v (version %d)", got, c.Version)
	}
	// A heartbeat is not news.
	if err := s.ExtendLease(ctx, c, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, v := rawApply(t, s, c.ID); v != c.Version {
		t.Fatalf("ExtendLease bumped the version to %d", v)
	}
	// A stale report does not move reported_version back or clear the flag.
	if err := s.MarkReported(ctx, a.ID, a.Version); err != nil {
		t.Fatal(err)
	}
	if got := due(); len(got) != 1 {
		t.Fatalf("due after a stale report = %v", got)
	}
	if err := s.MarkReported(ctx, a.ID, c.Version+5); err == nil {
		t.Fatal("reporting a version the apply never had was accepted")
	}
	if err := s.MarkReported(ctx, 999999, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("MarkReported of a missing apply: %v", err)
	}
	if err := s.MarkReported(ctx, a.ID, c.Version); err != nil {
		t.Fatal(err)
	}
	if got := due(); len(got) != 0 {
		t.Fatalf("due after reporting the latest version = %v", got)
	}
	// The query goes through the report_due index.
	if k := explainKey(t, s, `SELECT id FROM tern_applies WHERE report_due = 1 ORDER BY id LIMIT 10`); k != "tern_applies_report" {
		t.Fatalf("ReportDue's query uses index %q, want tern_applies_report", k)
	}
}

// explainKey returns the index EXPLAIN says the first table of query uses.
func explainKey(tb testing.TB, s *Store, query string, args ...any) string {
	tb.Helper()
	rows, err := s.DB().Query("EXPLAIN "+query, args...)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if !rows.Next() {
		tb.Fatal("EXPLAIN returned no rows")
	}
	if err := rows.Scan(ptrs...); err != nil {
		tb.Fatal(err)
	}
	for i, c := range cols {
		if c == "key" {
			return vals[i].String
		}
	}
	return ""
}

func TestEventsAndAddEvent(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if err := s.AddEvent(ctx, Event{Repository: "acme/shop", PR: 3, Actor: "bob", Action: "command.unlock", Detail: "all"}); err != nil {
		t.Fatal(err)
	}
	a := newApply(t, s, "acme/shop", 3, "shop", "staging", 0)
	all, err := s.Events(ctx, 0)
	if err != nil || len(all) != 2 {
		t.Fatalf("all events: %v %v", all, err)
	}
	if all[0].Action != "command.unlock" || all[0].At.IsZero() || all[1].ApplyID != a.ID {
		t.Fatalf("events = %+v", all)
	}
	if mine, _ := s.Events(ctx, a.ID); len(mine) != 1 || mine[0].Action != "apply.requested" {
		t.Fatalf("apply events = %+v", mine)
	}
	// An apply with no statements is created fine and completes.
	c := mustClaim(t, s, "w")
	fin, err := s.FinishApply(ctx, c, Completed, "", "", 0)
	if err != nil || fin.State != Completed {
		t.Fatalf("finish empty apply: %v %v", fin, err)
	}
	ok, err := s.HasCompletedApply(ctx, "acme/shop", 3, "shop", "staging", "hash-shop")
	if err != nil || !ok {
		t.Fatalf("HasCompletedApply = %v %v", ok, err)
	}
	if ok, _ := s.HasCompletedApply(ctx, "acme/shop", 3, "shop", "staging", "other-hash"); ok {
		t.Fatal("HasCompletedApply matched another desired hash")
	}
}

func TestPlans(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	p1 := savePlan(t, s, "acme/shop", 5, "shop", "staging", 2)
	p2 := savePlan(t, s, "acme/shop", 5, "shop", "staging", 3)
	got, err := s.Plan(ctx, p1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != p1.ID || len(got.Statements) != 2 || got.Statements[1] != p1.Statements[1] ||
		string(got.Desired) != string(p1.Desired) || string(got.Lint) != "[]" || got.CreatedAt.IsZero() ||
		got.InstallationID != 42 || got.HeadSHA != "abc123" {
		t.Fatalf("Plan = %+v", got)
	}
	latest, err := s.LatestPlan(ctx, "acme/shop", 5, "shop", "staging")
	if err != nil || latest.ID != p2.ID {
		t.Fatalf("LatestPlan = %v %v, want %d", latest, err, p2.ID)
	}
	if _, err := s.Plan(ctx, 12345); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing plan: %v", err)
	}
	if _, err := s.LatestApply(ctx, "acme/shop", 5, "shop", "staging"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LatestApply with none: %v", err)
	}
	a, _ := s.CreateApply(ctx, p2, "alice", true, 3)
	if la, err := s.LatestApply(ctx, "acme/shop", 5, "shop", "staging"); err != nil || la.ID != a.ID || !la.AllowUnsafe || la.PlanID != p2.ID {
		t.Fatalf("LatestApply = %+v %v", la, err)
	}
	if as, err := s.AppliesForPR(ctx, "acme/shop", 5); err != nil || len(as) != 1 {
		t.Fatalf("AppliesForPR = %v %v", as, err)
	}
}
