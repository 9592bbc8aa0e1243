package recovery_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ternhq/tern/apply"
	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/engine"
	"github.com/ternhq/tern/engine/mysqlddl"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/recovery"
	"github.com/ternhq/tern/recovery/recoverytest"
	"github.com/ternhq/tern/store"
)

// The pass through the real apply runner and the real MySQL engine, on a
// live MariaDB database, with a held metadata lock as the transient fault.

const (
	liveSchema = `CREATE TABLE t (id INT PRIMARY KEY, v INT)`
	wantSchema = `CREATE TABLE t (id INT PRIMARY KEY, v INT, c INT);
CREATE TABLE u (id INT PRIMARY KEY);`
)

// counted wraps an engine and counts, per apply and task, the DDL that
// took effect (the engine's TaskDone).
type counted struct {
	engine.Engine
	mu   sync.Mutex
	done map[int64]map[int]int
}

type countingRecorder struct {
	engine.Recorder
	c  *counted
	id int64
}

func (r countingRecorder) TaskDone(ctx context.Context, seq int) error {
	r.c.mu.Lock()
	if r.c.done[r.id] == nil {
		r.c.done[r.id] = map[int]int{}
	}
	r.c.done[r.id][seq]++
	r.c.mu.Unlock()
	return r.Recorder.TaskDone(ctx, seq)
}

func (c *counted) Apply(ctx context.Context, job engine.Job, rec engine.Recorder) error {
	return c.Engine.Apply(ctx, job, countingRecorder{rec, c, job.ApplyID})
}

func (c *counted) count(id int64, seq int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done[id][seq]
}

// liveFixture is a ledger, a live database and the apply runner.
type liveFixture struct {
	*env
	live   *sql.DB
	shadow *sql.DB
	eng    *counted
	runner *apply.Runner
}

func (f *liveFixture) Target(_ context.Context, repo, database, envName string) (*apply.Target, error) {
	if repo != "acme/shop" || database != "shop" || envName != "staging" {
		return nil, fmt.Errorf("no target %s %s %s", repo, database, envName)
	}
	return &apply.Target{Engine: f.eng, Shadow: f.shadow}, nil
}

func newLiveFixture(t *testing.T, maxAttempts int) (*liveFixture, *store.Apply) {
	t.Helper()
	ctx := context.Background()
	e := newEnv(t)
	live, name := testdb.Open(t, "recovery_live")
	if _, err := live.Exec(liveSchema); err != nil {
		t.Fatal(err)
	}
	eng, err := mysqlddl.New(config.MySQL{DSN: testdb.ServerDSN(), LockWaitTimeout: config.Duration(time.Second)}, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	f := &liveFixture{env: e, live: live, shadow: testdb.Server(t), eng: &counted{Engine: eng, done: map[int64]map[int]int{}}}
	f.runner = &apply.Runner{
		Store: e.st, Targets: f, Planner: &plan.Planner{},
		Policy: apply.Policy{MaxAttempts: maxAttempts, BackoffBase: time.Minute, BackoffMax: time.Hour, Lease: time.Minute,
			Jitter: func() float64 { return 0 }},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}

	d, err := plan.Parse([]plan.File{{Path: "schema.sql", Data: []byte(wantSchema)}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.runner.Planner.Plan(ctx, d, live, f.shadow)
	if err != nil {
		t.Fatal(err)
	}
	sp := &store.Plan{
		Repository: "acme/shop", PR: 7, HeadSHA: "abc123", InstallationID: 1, Database: "shop", Environment: "staging",
		DesiredHash: d.Hash(), Desired: d.Marshal(), Lint: []byte("[]"),
	}
	for _, s := range p.Statements {
		sp.Statements = append(sp.Statements, store.Statement{Table: s.Table, Kind: s.Kind, DDL: s.DDL, Instant: s.Instant})
	}
	if len(sp.Statements) != 2 {
		t.Fatalf("plan has %d statements, want 2: %+v", len(sp.Statements), sp.Statements)
	}
	if err := e.st.SavePlan(ctx, sp); err != nil {
		t.Fatal(err)
	}
	a, err := e.st.CreateApply(ctx, sp, "octocat", false, maxAttempts)
	if err != nil {
		t.Fatal(err)
	}
	return f, a
}

func (f *liveFixture) pass(opts ...func(*recovery.Pass)) *recovery.Pass {
	return f.env.pass(append([]func(*recovery.Pass){func(p *recovery.Pass) { p.Runner = f.runner }}, opts...)...)
}

// holdMetadataLock holds a shared metadata lock on table until release,
// so that an ALTER of it waits out lock_wait_timeout: a transient fault.
func (f *liveFixture) holdMetadataLock(t *testing.T, table string) (release func()) {
	t.Helper()
	tx, err := f.live.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("SELECT * FROM " + table); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { tx.Rollback() }) }
	t.Cleanup(release)
	return release
}

// checkDoneOnce fails unless each of the apply's tasks took effect once,
// counted at the engine, and the live schema has them.
func (f *liveFixture) checkDoneOnce(t *testing.T, a *store.Apply) {
	t.Helper()
	for seq := 1; seq <= 2; seq++ {
		if n := f.eng.count(a.ID, seq); n != 1 {
			t.Errorf("task %d took effect %d times at the engine, want 1", seq, n)
		}
	}
	var n int
	if err := f.live.QueryRow(`SELECT COUNT(*) FROM information_schema.columns
		WHERE table_schema = DATABASE() AND ((table_name = 't' AND column_name = 'c') OR table_name = 'u')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("live schema has %d of the 2 changes", n)
	}
}

func TestRealRunnerTransientFault(t *testing.T) {
	f, a := newLiveFixture(t, 5)
	ctx := context.Background()
	release := f.holdMetadataLock(t, "t")
	res := f.run(t, f.pass())
	if res.Retrying != 1 {
		t.Fatalf("pass under a metadata lock: %s, want retrying=1", res.Summary())
	}
	l := res.Lines[0]
	if l.Apply.ErrorClass != engine.ClassLockWaitTimeout || l.Apply.Attempt != 1 || l.Apply.NextAttemptAt.Before(time.Now().Add(30*time.Second)) {
		t.Fatalf("retrying apply: class %q attempt %d next %v, want lock_wait_timeout, 1, about a minute on", l.Apply.ErrorClass, l.Apply.Attempt, l.Apply.NextAttemptAt)
	}
	release()
	if _, err := f.st.RetryNow(ctx, a.ID, "octocat"); err != nil {
		t.Fatal(err)
	}
	res = f.run(t, f.pass())
	if res.Recovered != 1 {
		t.Fatalf("pass after the fault cleared: %s, want recovered=1", res.Summary())
	}
	want := fmt.Sprintf("apply %d acme/shop#7 shop/staging: completed after 2 attempts", a.ID)
	if got := res.Lines[0].String(); got != want {
		t.Errorf("line %q, want %q", got, want)
	}
	f.checkDoneOnce(t, a)
}

func TestRealRunnerFaultNeverClears(t *testing.T) {
	f, a := newLiveFixture(t, 2)
	ctx := context.Background()
	f.holdMetadataLock(t, "t")
	if res := f.run(t, f.pass()); res.Retrying != 1 {
		t.Fatalf("first pass: %s, want retrying=1", res.Summary())
	}
	if _, err := f.st.RetryNow(ctx, a.ID, "octocat"); err != nil {
		t.Fatal(err)
	}
	res := f.run(t, f.pass())
	if res.Failed != 1 {
		t.Fatalf("last attempt's pass: %s, want failed=1", res.Summary())
	}
	got := f.apply(t, a.ID)
	if got.State != store.Failed || got.ErrorClass != store.ClassRetriesExhausted || got.Attempt != 2 {
		t.Errorf("apply %s class %q attempt %d, want failed %s attempt 2", got.State, got.ErrorClass, got.Attempt, store.ClassRetriesExhausted)
	}
}

// A worker dies mid-apply after its first task took effect: the next pass
// rescues the apply, the runner's re-plan finds task 1 live and skips it,
// and task 2 runs: each took effect exactly once.
func TestRealRunnerRescueAfterCrash(t *testing.T) {
	f, a := newLiveFixture(t, 5)
	ctx := context.Background()
	claimed, err := f.st.Claim(ctx, store.ClaimOptions{Owner: "dead-worker", Limit: 1, Lease: 50 * time.Millisecond})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim: %v (%d)", err, len(claimed))
	}
	// The dead worker ran task 1 and died before task 2.
	rec := countingRecorder{Recorder: recoverytest.NewRecorder(f.st, claimed[0]), c: f.eng, id: a.ID}
	tasks, err := f.st.Tasks(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	first := engine.Task{Seq: tasks[0].Seq, Table: tasks[0].Table, Kind: tasks[0].Kind, DDL: tasks[0].DDL, Instant: tasks[0].Instant}
	if err := f.eng.Engine.Apply(ctx, engine.Job{ApplyID: a.ID, Attempt: 1, Repository: a.Repository, PR: a.PR, Tasks: []engine.Task{first}}, rec); err != nil {
		t.Fatal(err)
	}
	f.waitLapsed(t, a.ID)
	res := f.run(t, f.pass())
	if res.Rescued != 1 || res.Recovered != 1 {
		t.Fatalf("rescuing pass: %s, want recovered=1 rescued=1", res.Summary())
	}
	f.checkDoneOnce(t, a)
}
