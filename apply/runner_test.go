package apply

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/engine"
	"github.com/ternhq/tern/engine/mysqlddl"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/metrics"
	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/store"
)

// fixture is a ledger, a live database and a runner wired to them.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	store *store.Store
	// storeDSN is the ledger's DSN.
	storeDSN string
	live     *sql.DB
	name     string // live database
	shadow   *sql.DB
	engine   *mysqlddl.Engine
	// wrap, when set, wraps the engine the runner sees.
	wrap     func(engine.Engine) engine.Engine
	runner   *Runner
	listener *listener
}

func newFixture(t *testing.T, lockWait time.Duration, liveSQL ...string) *fixture {
	t.Helper()
	ctx := context.Background()
	storeDSN, _ := testdb.New(t, "apply_store")
	st, err := store.Open(ctx, storeDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	live, name := testdb.Open(t, "apply_live")
	for _, s := range liveSQL {
		if _, err := live.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	eng, err := mysqlddl.New(config.MySQL{DSN: testdb.ServerDSN(), LockWaitTimeout: config.Duration(lockWait)}, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	f := &fixture{t: t, ctx: ctx, store: st, storeDSN: storeDSN, live: live, name: name, shadow: testdb.Server(t), engine: eng, listener: &listener{}}
	f.runner = &Runner{
		Store:    st,
		Targets:  f,
		Planner:  &plan.Planner{},
		Policy:   Policy{MaxAttempts: 5, BackoffBase: time.Minute, BackoffMax: time.Hour, Lease: time.Minute, Jitter: func() float64 { return 0 }},
		Listener: f.listener,
		Logger:   slog.New(slog.DiscardHandler),
		Metrics:  metrics.New(nil),
	}
	return f
}

// metric returns the scraped line of the runner's metrics that starts with
// prefix, or "".
func (f *fixture) metric(prefix string) string {
	f.t.Helper()
	rec := httptest.NewRecorder()
	f.runner.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, prefix) {
			return line
		}
	}
	return ""
}

// Target implements Targets with the fixture's live database.
func (f *fixture) Target(_ context.Context, repo, database, env string) (*Target, error) {
	if repo != "acme/shop" || database != "shop" || env != "staging" {
		return nil, fmt.Errorf("no target %s %s %s", repo, database, env)
	}
	var e engine.Engine = f.engine
	if f.wrap != nil {
		e = f.wrap(e)
	}
	return &Target{Engine: e, Shadow: f.shadow}, nil
}

// plan plans desired against the live database and stores the plan.
func (f *fixture) plan(desired string) *store.Plan {
	f.t.Helper()
	d, err := plan.Parse([]plan.File{{Path: "schema.sql", Data: []byte(desired)}})
	if err != nil {
		f.t.Fatal(err)
	}
	p, err := f.runner.Planner.Plan(f.ctx, d, f.live, f.shadow)
	if err != nil {
		f.t.Fatal(err)
	}
	var stmts []store.Statement
	for _, s := range p.Statements {
		stmts = append(stmts, store.Statement{Table: s.Table, Kind: s.Kind, DDL: s.DDL, Instant: s.Instant})
	}
	return f.save(d, stmts)
}

// save stores a plan with the given statements for desired d.
func (f *fixture) save(d *plan.Desired, stmts []store.Statement) *store.Plan {
	f.t.Helper()
	sp := &store.Plan{
		Repository: "acme/shop", PR: 7, HeadSHA: "abc123", InstallationID: 1,
		Database: "shop", Environment: "staging",
		DesiredHash: d.Hash(), Desired: d.Marshal(), Statements: stmts, Lint: []byte("[]"),
	}
	if err := f.store.SavePlan(f.ctx, sp); err != nil {
		f.t.Fatal(err)
	}
	return sp
}

func (f *fixture) createApply(p *store.Plan, maxAttempts int) *store.Apply {
	f.t.Helper()
	a, err := f.store.CreateApply(f.ctx, p, "octocat", false, maxAttempts)
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

// claim claims apply id, which must be due.
func (f *fixture) claim(id int64, lease time.Duration) *store.Apply {
	f.t.Helper()
	got, err := f.store.Claim(f.ctx, store.ClaimOptions{Owner: "test", Lease: lease, ApplyID: id})
	if err != nil {
		f.t.Fatal(err)
	}
	if len(got) != 1 {
		f.t.Fatalf("claim apply %d: got %d applies", id, len(got))
	}
	return got[0]
}

// retryNow makes a failed_retryable apply due and claims it.
func (f *fixture) retryNow(id int64) *store.Apply {
	f.t.Helper()
	if _, err := f.store.RetryNow(f.ctx, id, "test"); err != nil {
		f.t.Fatal(err)
	}
	return f.claim(id, time.Minute)
}

func (f *fixture) run(a *store.Apply) *store.Apply {
	f.t.Helper()
	got, err := f.runner.Run(f.ctx, a)
	if err != nil {
		f.t.Fatalf("Run: %v", err)
	}
	return got
}

func (f *fixture) tasks(id int64) []store.Task {
	f.t.Helper()
	ts, err := f.store.Tasks(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return ts
}

// taskStates renders tasks as "completed,failed,cancelled".
func taskStates(ts []store.Task) string {
	var s []string
	for _, t := range ts {
		s = append(s, string(t.State))
	}
	return strings.Join(s, ",")
}

func (f *fixture) columns(table string) string {
	f.t.Helper()
	rows, err := f.live.Query("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION", table)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			f.t.Fatal(err)
		}
		cols = append(cols, c)
	}
	return strings.Join(cols, ",")
}

// holdMetadataLock opens a transaction that reads table and keeps it open
// until the returned release is called.
func (f *fixture) holdMetadataLock(table string) (release func()) {
	f.t.Helper()
	c, err := f.live.Conn(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, s := range []string{"BEGIN", "SELECT * FROM " + table} {
		if _, err := c.ExecContext(f.ctx, s); err != nil {
			f.t.Fatal(err)
		}
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			c.ExecContext(f.ctx, "ROLLBACK")
			c.Close()
		})
	}
	f.t.Cleanup(release)
	return release
}

type listener struct {
	mu     sync.Mutex
	events []string
}

func (l *listener) ApplyEvent(_ context.Context, e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := string(e.Kind)
	if e.Task != nil {
		s += fmt.Sprintf("(%d)", e.Task.Seq)
	}
	l.events = append(l.events, s)
}

func (l *listener) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.events, " ")
}

const (
	liveT   = "CREATE TABLE t (id INT NOT NULL, v INT DEFAULT NULL, PRIMARY KEY (id)) ENGINE=InnoDB"
	desired = `CREATE TABLE t (id INT NOT NULL, v INT DEFAULT NULL, c INT DEFAULT NULL, PRIMARY KEY (id)) ENGINE=InnoDB;
CREATE TABLE u (id INT NOT NULL, PRIMARY KEY (id)) ENGINE=InnoDB;`
)

func TestRunCompletes(t *testing.T) {
	f := newFixture(t, time.Second, liveT)
	p := f.plan(desired)
	if len(p.Statements) != 2 {
		t.Fatalf("plan has %d statements, want 2: %+v", len(p.Statements), p.Statements)
	}
	a := f.createApply(p, 5)
	got := f.run(f.claim(a.ID, time.Minute))
	if got.State != store.Completed {
		t.Fatalf("apply %s (%s: %s), want completed", got.State, got.ErrorClass, got.LastError)
	}
	if s := taskStates(f.tasks(a.ID)); s != "completed,completed" {
		t.Errorf("tasks %s", s)
	}
	if c := f.columns("t"); c != "id,v,c" {
		t.Errorf("t columns %q", c)
	}
	if c := f.columns("u"); c != "id" {
		t.Errorf("u columns %q", c)
	}
	if ev := f.listener.String(); ev != "started task_done(1) task_done(2) completed" {
		t.Errorf("events %q", ev)
	}
}

// TestRunMetadataLock: a held metadata lock makes the ALTER time out after
// lock_wait_timeout; the apply is retryable, and completes once the lock
// is gone.
func TestRunMetadataLock(t *testing.T) {
	f := newFixture(t, time.Second, liveT)
	a := f.createApply(f.plan(desired), 5)
	release := f.holdMetadataLock("t")

	got := f.run(f.claim(a.ID, time.Minute))
	if got.State != store.FailedRetryable || got.ErrorClass != engine.ClassLockWaitTimeout {
		t.Fatalf("apply %s class %q (%s), want failed_retryable lock_wait_timeout", got.State, got.ErrorClass, got.LastError)
	}
	if wait := time.Until(got.NextAttemptAt); wait < 30*time.Second {
		t.Errorf("next attempt in %v, want about the 1m backoff", wait)
	}
	ts := f.tasks(a.ID)
	if ts[0].State != store.FailedRetryable || ts[0].Attempt != 1 || ts[0].ErrorClass != engine.ClassLockWaitTimeout {
		t.Errorf("task 1: %s attempt %d class %q", ts[0].State, ts[0].Attempt, ts[0].ErrorClass)
	}
	if f.listener.String() != "started failed_retryable" {
		t.Errorf("events %q", f.listener)
	}

	release()
	got = f.run(f.retryNow(a.ID))
	if got.State != store.Completed || got.Attempt != 2 {
		t.Fatalf("apply %s attempt %d (%s), want completed on attempt 2", got.State, got.Attempt, got.LastError)
	}
	ts = f.tasks(a.ID)
	if ts[0].Attempt != 2 || ts[0].Skipped {
		t.Errorf("task 1 attempt %d skipped %v, want run on attempt 2", ts[0].Attempt, ts[0].Skipped)
	}
	if c := f.columns("t"); c != "id,v,c" {
		t.Errorf("t columns %q", c)
	}
	for _, want := range []string{
		`tern_apply_retries_total{class="lock_wait_timeout"} 1`,
		`tern_apply_transitions_total{to="failed_retryable"} 1`,
		`tern_apply_transitions_total{to="completed"} 1`,
	} {
		if got := f.metric(want[:strings.LastIndex(want, " ")]); got != want {
			t.Errorf("metric %q, want %q", got, want)
		}
	}
}

// TestRunKilledConnection kills the engine's connection while its ALTER
// waits on a metadata lock: transient, retried, completes.
func TestRunKilledConnection(t *testing.T) {
	f := newFixture(t, 10*time.Minute, liveT)
	a := f.createApply(f.plan(desired), 5)
	release := f.holdMetadataLock("t")

	done := make(chan *store.Apply, 1)
	claimed := f.claim(a.ID, time.Minute)
	go func() {
		got, err := f.runner.Run(f.ctx, claimed)
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		done <- got
	}()
	id := testdb.WaitForMetadataLockWait(t, f.live, f.name)
	if _, err := f.live.Exec(fmt.Sprintf("KILL %d", id)); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got == nil || got.State != store.FailedRetryable {
		t.Fatalf("apply after kill: %+v, want failed_retryable", got)
	}
	t.Logf("killed connection classified as %s: %s", got.ErrorClass, got.LastError)

	release()
	got = f.run(f.retryNow(a.ID))
	if got.State != store.Completed {
		t.Fatalf("apply %s (%s), want completed", got.State, got.LastError)
	}
	if c := f.columns("t"); c != "id,v,c" {
		t.Errorf("t columns %q", c)
	}
}

// TestRunPermanentFailure: a unique index over duplicate rows fails for
// good on the first attempt; the later task is cancelled, nothing retries.
func TestRunPermanentFailure(t *testing.T) {
	f := newFixture(t, time.Second, liveT, "INSERT INTO t VALUES (1, 7), (2, 7)")
	d, err := plan.Parse([]plan.File{{Path: "schema.sql", Data: []byte(desired)}})
	if err != nil {
		t.Fatal(err)
	}
	p := f.save(d, []store.Statement{
		{Table: "t", Kind: plan.KindAlter, DDL: "ALTER TABLE `t` ADD COLUMN `c` int"},
		{Table: "t", Kind: plan.KindAlter, DDL: "ALTER TABLE `t` ADD UNIQUE KEY `uv` (`v`)"},
		{Table: "u", Kind: plan.KindCreate, DDL: "CREATE TABLE `u` (`id` int NOT NULL, PRIMARY KEY (`id`))"},
	})
	a := f.createApply(p, 5)
	got := f.run(f.claim(a.ID, time.Minute))
	if got.State != store.Failed || got.ErrorClass != engine.ClassDuplicate {
		t.Fatalf("apply %s class %q (%s), want failed duplicate", got.State, got.ErrorClass, got.LastError)
	}
	if !strings.Contains(got.LastError, "task 2") || !strings.Contains(got.LastError, "Duplicate") {
		t.Errorf("last error %q does not name task 2 and the duplicate", got.LastError)
	}
	ts := f.tasks(a.ID)
	if s := taskStates(ts); s != "completed,failed,cancelled" {
		t.Errorf("tasks %s, want completed,failed,cancelled", s)
	}
	if ts[1].ErrorClass != engine.ClassDuplicate {
		t.Errorf("task 2 class %q", ts[1].ErrorClass)
	}
	if f.listener.String() != "started task_done(1) failed" {
		t.Errorf("events %q", f.listener)
	}
	again, err := f.store.Claim(f.ctx, store.ClaimOptions{Owner: "test", Lease: time.Minute, ApplyID: a.ID})
	if err != nil || len(again) != 0 {
		t.Errorf("a failed apply was claimed again: %v %v", again, err)
	}
	if c := f.columns("u"); c != "" {
		t.Errorf("cancelled task ran: u has columns %q", c)
	}
}

// TestRunAttemptsExhausted: a transient failure on the last attempt fails
// the apply for good with retries_exhausted, keeping the last error.
func TestRunAttemptsExhausted(t *testing.T) {
	f := newFixture(t, time.Second, liveT)
	a := f.createApply(f.plan(desired), 2)
	f.holdMetadataLock("t")
	got := f.run(f.claim(a.ID, time.Minute))
	if got.State != store.FailedRetryable {
		t.Fatalf("attempt 1: %s, want failed_retryable", got.State)
	}
	got = f.run(f.retryNow(a.ID))
	if got.State != store.Failed || got.ErrorClass != store.ClassRetriesExhausted {
		t.Fatalf("attempt 2: %s class %q, want failed retries_exhausted", got.State, got.ErrorClass)
	}
	if !strings.Contains(got.LastError, "Lock wait timeout") || !strings.Contains(got.LastError, "2 attempts") {
		t.Errorf("last error %q does not keep the last error", got.LastError)
	}
	ts := f.tasks(a.ID)
	if ts[0].State != store.Failed || ts[0].ErrorClass != engine.ClassLockWaitTimeout || ts[0].Attempt != 2 {
		t.Errorf("task 1: %s class %q attempt %d", ts[0].State, ts[0].ErrorClass, ts[0].Attempt)
	}
	if !strings.HasSuffix(f.listener.String(), "failed") {
		t.Errorf("events %q", f.listener)
	}
}

// crashingEngine runs the DDL of the task crashAfter and then "dies"
// before recording it: it returns a lost lease without calling TaskDone.
type crashingEngine struct {
	engine.Engine
	crashAfter int
}

func (c *crashingEngine) Apply(ctx context.Context, job engine.Job, rec engine.Recorder) error {
	return c.Engine.Apply(ctx, job, crashRecorder{rec, c.crashAfter})
}

type crashRecorder struct {
	engine.Recorder
	crashAfter int
}

func (c crashRecorder) TaskDone(ctx context.Context, seq int) error {
	if seq == c.crashAfter {
		return &store.ConflictError{Op: "simulated crash", Want: store.Running}
	}
	return c.Recorder.TaskDone(ctx, seq)
}

// countingEngine counts the DDL each task's start sends.
type countingEngine struct {
	engine.Engine
	mu     *sync.Mutex
	counts map[int]int
}

func (c countingEngine) Apply(ctx context.Context, job engine.Job, rec engine.Recorder) error {
	return c.Engine.Apply(ctx, job, countingRecorder{rec, c})
}

type countingRecorder struct {
	engine.Recorder
	c countingEngine
}

func (r countingRecorder) TaskStarted(ctx context.Context, seq int) error {
	r.c.mu.Lock()
	r.c.counts[seq]++
	r.c.mu.Unlock()
	return r.Recorder.TaskStarted(ctx, seq)
}

// TestRunResumeAfterCrash: the worker dies after task 1's DDL ran but
// before it was recorded; after the lease lapses and a rescue, the next
// attempt finds the change live and marks it done without running it.
func TestRunResumeAfterCrash(t *testing.T) {
	f := newFixture(t, time.Second, liveT)
	a := f.createApply(f.plan(desired), 5)
	counts := countingEngine{mu: &sync.Mutex{}, counts: map[int]int{}}
	f.wrap = func(e engine.Engine) engine.Engine {
		counts.Engine = &crashingEngine{Engine: e, crashAfter: 1}
		return counts
	}
	f.runner.Policy.Lease = time.Second
	claimed := f.claim(a.ID, time.Second)
	if _, err := f.runner.Run(f.ctx, claimed); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("crashed Run = %v, want a lost lease", err)
	}
	if c := f.columns("t"); c != "id,v,c" {
		t.Fatalf("task 1's DDL did not run before the crash: %q", c)
	}
	cur, err := f.store.Apply(f.ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cur.State != store.Running {
		t.Fatalf("after the crash the runner wrote: apply is %s", cur.State)
	}

	// The lease lapses; a recovery pass rescues the apply.
	lapsed := waitLapsed(t, f.store, a.ID)
	rescued, err := f.store.Rescue(f.ctx, lapsed, 3)
	if err != nil {
		t.Fatal(err)
	}
	if rescued.State != store.FailedRetryable || rescued.Rescues != 1 {
		t.Fatalf("rescued: %s rescues %d", rescued.State, rescued.Rescues)
	}

	f.wrap = func(e engine.Engine) engine.Engine {
		counts.Engine = e
		return counts
	}
	got := f.run(f.claim(a.ID, time.Minute))
	if got.State != store.Completed {
		t.Fatalf("apply %s class %q (%s), want completed", got.State, got.ErrorClass, got.LastError)
	}
	ts := f.tasks(a.ID)
	if !ts[0].Skipped || ts[0].State != store.Completed {
		t.Errorf("task 1: %s skipped %v, want completed without running", ts[0].State, ts[0].Skipped)
	}
	if ts[1].Skipped || ts[1].State != store.Completed {
		t.Errorf("task 2: %s skipped %v, want run", ts[1].State, ts[1].Skipped)
	}
	if counts.counts[1] != 1 || counts.counts[2] != 1 {
		t.Errorf("executions per task = %v, want each exactly once", counts.counts)
	}
	if c := f.columns("u"); c != "id" {
		t.Errorf("u columns %q", c)
	}
}

func waitLapsed(t *testing.T, st *store.Store, id int64) *store.Apply {
	t.Helper()
	for i := 0; ; i++ {
		as, err := st.LapsedApplies(context.Background(), 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range as {
			if a.ID == id {
				return a
			}
		}
		if i > 600 {
			t.Fatalf("apply %d's lease never lapsed", id)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRunDrift: between attempts someone alters the table by hand; the
// next attempt re-plans, sees DDL nobody reviewed, and fails for good.
func TestRunDrift(t *testing.T) {
	f := newFixture(t, time.Second, liveT)
	a := f.createApply(f.plan(desired), 5)
	release := f.holdMetadataLock("t")
	if got := f.run(f.claim(a.ID, time.Minute)); got.State != store.FailedRetryable {
		t.Fatalf("attempt 1: %s, want failed_retryable", got.State)
	}
	release()
	if _, err := f.live.Exec("ALTER TABLE t ADD COLUMN by_hand INT"); err != nil {
		t.Fatal(err)
	}
	got := f.run(f.retryNow(a.ID))
	if got.State != store.Failed || got.ErrorClass != store.ClassDrift {
		t.Fatalf("apply %s class %q (%s), want failed drift", got.State, got.ErrorClass, got.LastError)
	}
	if !strings.Contains(got.LastError, "by_hand") {
		t.Errorf("drift message does not list the difference: %q", got.LastError)
	}
	if c := f.columns("t"); c != "id,v,by_hand" {
		t.Errorf("t columns %q: something ran despite the drift", c)
	}
	if s := taskStates(f.tasks(a.ID)); s != "cancelled,cancelled" {
		t.Errorf("tasks %s", s)
	}
}

func TestRunRefusesUnclaimed(t *testing.T) {
	f := newFixture(t, time.Second, liveT)
	a := f.createApply(f.plan(desired), 5)
	if _, err := f.runner.Run(f.ctx, a); err == nil {
		t.Fatal("Run of a pending apply: want an error")
	}
	if s := taskStates(f.tasks(a.ID)); s != "pending,pending" {
		t.Errorf("tasks %s", s)
	}
}

func TestCompare(t *testing.T) {
	const u = "CREATE TABLE `u` (\n  `id` int\n)"
	task := func(seq int, table, ddl string, st store.State) store.Task {
		return store.Task{Seq: seq, Table: table, DDL: ddl, State: st}
	}
	all := []store.Task{
		task(1, "a", "CREATE TABLE `a` (`id` int)", store.Completed),
		task(2, "t", "ALTER TABLE `t` ADD COLUMN `c` int", store.FailedRetryable),
		task(3, "u", u, store.Pending),
	}
	todo := all[1:]
	tests := []struct {
		name   string
		replan []string
		live   string // seqs found live
		drift  []string
	}{
		{"nothing ran yet", []string{"ALTER TABLE `t` ADD COLUMN `c` int", u}, "", nil},
		{"whitespace and semicolons do not matter", []string{"ALTER  TABLE `t`\n ADD COLUMN `c` int;", "CREATE TABLE `u`   (\n\t`id` int\n);"}, "", nil},
		{"other spacing is a difference", []string{"ALTER TABLE `t` ADD COLUMN `c` int", "CREATE TABLE `u` (`id` int)"}, "", []string{"CREATE TABLE `u` (`id` int)"}},
		{"task 2 already live", []string{u}, "2", nil},
		{"all live", nil, "2,3", nil},
		{"changed by hand", []string{"ALTER TABLE `t` ADD COLUMN `c` bigint", u}, "", []string{"ADD COLUMN `c` bigint", "task 2: ALTER TABLE `t` ADD COLUMN `c` int"}},
		{"completed task undone by hand", []string{"CREATE TABLE `a` (`id` int)", "ALTER TABLE `t` ADD COLUMN `c` int", u}, "", []string{"CREATE TABLE `a`"}},
		{"statement twice", []string{"ALTER TABLE `t` ADD COLUMN `c` int", "ALTER TABLE `t` ADD COLUMN `c` int", u}, "", []string{"ADD COLUMN `c` int"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live, err := compare(tt.replan, all, todo)
			if tt.drift != nil {
				if engine.Class(err) != store.ClassDrift {
					t.Fatalf("err = %v, want drift", err)
				}
				for _, s := range tt.drift {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("drift message %q lacks %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var seqs []string
			for _, tk := range todo {
				if live[tk.Seq] {
					seqs = append(seqs, fmt.Sprint(tk.Seq))
				}
			}
			if got := strings.Join(seqs, ","); got != tt.live {
				t.Errorf("live tasks %q, want %q", got, tt.live)
			}
		})
	}
}

// TestRunLeaseLost: another worker takes the apply over while the DDL
// waits; the lease keeper notices, the attempt stops, and the runner
// writes nothing more.
func TestRunLeaseLost(t *testing.T) {
	f := newFixture(t, 10*time.Minute, liveT)
	a := f.createApply(f.plan(desired), 5)
	f.holdMetadataLock("t")
	f.runner.Policy.Lease = time.Second
	claimed := f.claim(a.ID, time.Minute)

	done := make(chan error, 1)
	go func() {
		_, err := f.runner.Run(f.ctx, claimed)
		done <- err
	}()
	testdb.WaitForMetadataLockWait(t, f.live, f.name)
	if _, err := f.store.DB().Exec("UPDATE tern_applies SET lease_token = 'stolen' WHERE id = ?", a.ID); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Run = %v, want a lost lease", err)
	}
	cur, err := f.store.Apply(f.ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cur.State != store.Running || cur.LeaseToken != "stolen" {
		t.Errorf("apply %s token %q: the runner wrote after losing its lease", cur.State, cur.LeaseToken)
	}
	if s := taskStates(f.tasks(a.ID)); s != "running,pending" {
		t.Errorf("tasks %s, want running,pending", s)
	}
	if f.listener.String() != "started" {
		t.Errorf("events %q", f.listener)
	}
}
