package recovery_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ternhq/tern/recovery"
	"github.com/ternhq/tern/store"
)

// picky fails the reports of some applies, always (their repository's App
// was uninstalled), and records the others.
type picky struct {
	mu       sync.Mutex
	never    map[int64]bool
	reported map[int64]int
}

func (r *picky) Report(_ context.Context, a *store.Apply) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.never[a.ID] {
		return errors.New("github: 404 Not Found (installation gone)")
	}
	r.reported[a.ID]++
	return nil
}

// TestUnreportableDoNotStarve: more applies that can never be reported
// than one pass takes must not keep a newer one from being reported: they
// age behind it.
func TestUnreportableDoNotStarve(t *testing.T) {
	e := newEnv(t)
	as := e.seed(t, 3, 1, 5)
	e.run(t, e.pass()) // all completed, none reported
	rep := &picky{never: map[int64]bool{as[0].ID: true, as[1].ID: true}, reported: map[int64]int{}}
	withRep := func(p *recovery.Pass) { p.Reporter = rep; p.ReportLimit = 2 }
	for range 2 {
		e.run(t, e.pass(withRep))
	}
	if rep.reported[as[2].ID] != 1 {
		t.Fatalf("apply %d reported %d times after two passes, want 1: the unreportable ones starve it", as[2].ID, rep.reported[as[2].ID])
	}
}

// TestUnreportableGivenUp: an apply whose reports have failed often
// enough, for long enough, is given up on with a reason in the audit log,
// and no longer taken by passes.
func TestUnreportableGivenUp(t *testing.T) {
	e := newEnv(t)
	a := e.seed(t, 1, 1, 5)[0]
	e.run(t, e.pass())
	rep := &picky{never: map[int64]bool{a.ID: true}, reported: map[int64]int{}}
	withRep := func(p *recovery.Pass) {
		p.Reporter = rep
		p.ReportGiveUp = store.ReportGiveUp{Failures: 2, After: time.Microsecond}
	}
	ctx := context.Background()
	if res := e.run(t, e.pass(withRep)); res.ReportErrors != 1 {
		t.Fatalf("first failing pass: report_errors=%d, want 1", res.ReportErrors)
	}
	if due, err := e.st.ReportDue(ctx, 10); err != nil || len(due) != 1 {
		t.Fatalf("after one failure: %d report-due (%v), want still due", len(due), err)
	}
	e.run(t, e.pass(withRep))
	if due, err := e.st.ReportDue(ctx, 10); err != nil || len(due) != 0 {
		t.Fatalf("after the give-up: %d report-due (%v), want none", len(due), err)
	}
	evs, err := e.st.Events(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs {
		found = found || (ev.Action == "report.abandoned" && len(ev.Detail) > 0)
	}
	if !found {
		t.Error("no report.abandoned audit row saying why")
	}
	if res := e.run(t, e.pass(withRep)); res.ReportErrors != 0 {
		t.Errorf("a pass after the give-up tried again: report_errors=%d", res.ReportErrors)
	}
}
