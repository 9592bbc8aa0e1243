package ptosc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ternhq/tern/engine"
	"github.com/ternhq/tern/internal/testdb"
)

// copyRows is the size of the tables the tests copy: big enough that the
// copy takes a while, small enough to keep the suite quick.
const copyRows = 1 << 18

const widen = "ALTER TABLE `t` MODIFY COLUMN `v` bigint NOT NULL"

func task(ddl string) engine.Task {
	return engine.Task{Seq: 1, Table: "t", Kind: "alter", DDL: ddl, Algorithm: "ONLINE", Lock: "NONE"}
}

// writer changes the table from its own connection until stopped, and
// remembers what the table must hold afterwards.
type writer struct {
	db       *sql.DB
	maxID    int64
	mu       sync.Mutex
	values   map[int64]int64 // id -> v written last
	inserted map[int64]bool
	deleted  map[int64]bool
	writes   int
	retried  int // writes that failed, rolled back, and were retried
	err      error
}

// run inserts, updates and deletes rows at random; ids up to maxID exist
// or were deleted (the table's ids have gaps).
func (w *writer) run(ctx context.Context) {
	r := rand.New(rand.NewPCG(1, 2))
	for ctx.Err() == nil {
		var res sql.Result
		var err error
		id, v := 1+r.Int64N(w.maxID), r.Int64N(1<<30)
		op := r.IntN(3)
		switch op {
		case 0:
			res, err = w.db.Exec("INSERT INTO t (v, s) VALUES (?, 'new')", v)
		case 1:
			res, err = w.db.Exec("UPDATE t SET v = ? WHERE id = ?", v, id)
		default:
			res, err = w.db.Exec("DELETE FROM t WHERE id = ?", id)
		}
		var me *mysql.MySQLError
		if errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205 || (me.Number == 1146 && strings.Contains(me.Message, "_tern_"))) {
			// The statement failed and was rolled back, as an application
			// sees it, and is retried: the copy's chunks and the triggers
			// take row locks (deadlocks), and a prepared statement run just
			// after the triggers are created can fail with 1146 naming the
			// shadow table (MariaDB's, see docs/online-engine.md). The final check proves none of
			// these half-happened.
			w.mu.Lock()
			w.retried++
			w.mu.Unlock()
			continue
		}
		if err != nil {
			w.err = fmt.Errorf("op %d at %s: %w", op, time.Now().Format("15:04:05.000"), err)
			return
		}
		n, _ := res.RowsAffected()
		w.mu.Lock()
		switch {
		case op == 0:
			id, _ = res.LastInsertId()
			w.inserted[id], w.values[id] = true, v
		case op == 1 && n == 1:
			w.values[id] = v
		case op == 2 && n == 1:
			w.deleted[id] = true
			delete(w.values, id)
		}
		w.writes++
		w.mu.Unlock()
	}
}

// TestCopyKeepsEveryWrite: a change the server could only make as a
// blocking copy runs through pt-online-schema-change while another
// connection inserts, updates and deletes rows the whole time. Every
// write lands, the column is changed, nothing of the copy is left, the
// ledger says how far it got, and the tool's command line never holds the
// password.
func TestCopyKeepsEveryWrite(t *testing.T) {
	tg := newTarget(t)
	testdb.BigTable(t, tg.db, "t", copyRows)
	var before, maxID int64
	if err := tg.db.QueryRow("SELECT COUNT(*), MAX(id) FROM t").Scan(&before, &maxID); err != nil {
		t.Fatal(err)
	}
	e := tg.engine(t, 5*time.Second, Options{ChunkSize: 2000})
	w := &writer{db: tg.db, maxID: maxID, values: map[int64]int64{}, inserted: map[int64]bool{}, deleted: map[int64]bool{}}
	ctx, stop := context.WithCancel(context.Background())
	wrote := make(chan struct{})
	go func() { defer close(wrote); w.run(ctx) }()

	rec := &recorder{}
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		done <- e.Apply(context.Background(), engine.Job{ApplyID: 31, Attempt: 1, Tasks: []engine.Task{task(widen)}}, rec)
	}()
	var argv []string
	var err error
	for finished := false; !finished; {
		select {
		case err = <-done:
			finished = true
		default:
			if argv == nil {
				argv = toolArgv(t)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	took := time.Since(start)
	stop()
	<-wrote
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if w.err != nil {
		t.Fatalf("a write failed during the copy: %v", w.err)
	}
	t.Logf("copied %d rows in %s while %d writes went on (%d failed, rolled back and retried)", before, took, w.writes, w.retried)
	if len(argv) == 0 {
		t.Fatal("never saw the tool running")
	}
	for _, a := range argv {
		if strings.Contains(a, tg.password) {
			t.Fatalf("the password is on the tool's command line: %s", a)
		}
		if !strings.Contains(a, "F=/") || !strings.Contains(a, "--alter MODIFY COLUMN `v` bigint NOT NULL") {
			t.Errorf("command line %q: want the option file and only the change", a)
		}
	}
	progress, _ := rec.Progress()
	t.Logf("progress recorded %d times: %+v", len(progress), progress)
	for _, p := range progress {
		if p.Stage != stageCopying || p.Percent < 0 || p.Percent > 100 {
			t.Errorf("progress %+v", p)
		}
	}
	if got := rec.String(); got != "start 1, done 1" {
		t.Errorf("recorded %q", got)
	}
	st := rec.State()
	if st["online.1.phase"] != PhaseDone || st["online.1.shadow"] != "_tern_31_1_new_t" || !strings.HasPrefix(st["online.1.tool"], "pt-osc 3.") {
		t.Errorf("state %v", st)
	}
	for k, v := range st {
		if strings.Contains(v, tg.password) {
			t.Errorf("state %s holds the password", k)
		}
	}
	if typ := tg.columnType(t, "t", "v"); typ != "bigint(20)" {
		t.Errorf("v is %s after the copy", typ)
	}
	if left := tg.leftovers(t); left != "" {
		t.Errorf("left behind: %s", left)
	}
	// Every write is there, and nothing else changed.
	var rows, news int64
	if err := tg.db.QueryRow("SELECT COUNT(*), COALESCE(SUM(s = 'new'), 0) FROM t").Scan(&rows, &news); err != nil {
		t.Fatal(err)
	}
	var inserted, deletedOld int64
	for id := range w.inserted {
		if !w.deleted[id] {
			inserted++
		}
	}
	for id := range w.deleted {
		if !w.inserted[id] {
			deletedOld++
		}
	}
	if want := before - deletedOld + inserted; rows != want {
		t.Errorf("table has %d rows, want %d (%d before, %d deleted, %d inserted)", rows, want, before, deletedOld, inserted)
	}
	for id, v := range w.values {
		var got int64
		if err := tg.db.QueryRow("SELECT v FROM t WHERE id = ?", id).Scan(&got); err != nil {
			t.Fatalf("row %d written during the copy: %v", id, err)
		}
		if got != v {
			t.Fatalf("row %d has v=%d, the last write set %d", id, got, v)
		}
	}
	for id := range w.deleted {
		var n int
		if err := tg.db.QueryRow("SELECT COUNT(*) FROM t WHERE id = ?", id).Scan(&n); err != nil || n != 0 {
			t.Fatalf("row %d deleted during the copy is back (%d, %v)", id, n, err)
		}
	}
}

// TestSwapWaitsOnMetadataLock: a transaction holds the table's metadata
// lock when the copy is done, so the swap cannot happen within
// lock_wait_timeout. The attempt fails transiently and says why, leaves
// the table as it was with nothing of the copy behind; the next attempt,
// once the transaction is gone, applies the change.
func TestSwapWaitsOnMetadataLock(t *testing.T) {
	tg := newTarget(t)
	testdb.BigTable(t, tg.db, "t", 1<<16)
	// 3 s, not 1: the swap's wait must be seen by polling, and under load
	// a 1 s window was once missed (failed once in a full suite).
	e := tg.engine(t, 3*time.Second, Options{ChunkSize: 500})
	rec := &recorder{}
	job := engine.Job{ApplyID: 32, Attempt: 1, Tasks: []engine.Task{task(widen)}}
	done := make(chan error, 1)
	go func() { done <- e.Apply(context.Background(), job, rec) }()
	release := tg.holdLastRow(t, "t")
	waitFor(t, "the copy to wait on the held row", func() bool { return tg.copyWaiting(t) != 0 })
	// A reader's open transaction: it holds the metadata lock but no row.
	reader, err := tg.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Rollback()
	if _, err := reader.Exec("SELECT COUNT(*) FROM t WHERE id < 10"); err != nil {
		t.Fatal(err)
	}
	release()
	waitFor(t, "the swap to wait for the reader's metadata lock", func() bool { return tg.renameWaiting(t) })
	waitFor(t, "the swap to give up", func() bool { return !tg.renameWaiting(t) })
	// The engine drops the triggers once the lock is free.
	reader.Rollback()
	err = <-done
	var te *engine.TaskError
	if !errors.As(err, &te) || te.Seq != 1 || !engine.IsRetryable(err) || engine.Class(err) != engine.ClassLockWaitTimeout {
		t.Fatalf("Apply = %v (class %s), want a transient lock_wait_timeout of task 1", err, engine.Class(err))
	}
	if !strings.Contains(err.Error(), "swap") || !strings.Contains(err.Error(), "retried") {
		t.Errorf("error %q does not say the swap waited and that it is retried", err)
	}
	if typ := tg.columnType(t, "t", "v"); typ != "int(11)" {
		t.Errorf("v is %s after the failed swap", typ)
	}
	if left := tg.leftovers(t); left != "" {
		t.Errorf("left behind after the failed swap: %s", left)
	}
	job.Attempt, job.EngineState = 2, rec.State()
	if err := e.Apply(context.Background(), job, rec); err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	if typ := tg.columnType(t, "t", "v"); typ != "bigint(20)" {
		t.Errorf("v is %s after the second attempt", typ)
	}
	if left := tg.leftovers(t); left != "" {
		t.Errorf("left behind: %s", left)
	}
}

// TestStopDropsTriggers: the attempt's context ends while the copy runs
// (its chunk waits on a row lock, after the triggers are in place). Apply
// kills the tool, stops its chunk on the server with KILL QUERY, drops the
// triggers and the copy, and only then returns a transient interrupted
// error carrying the cause. InFlight sees the copy while it runs, not
// after.
func TestStopDropsTriggers(t *testing.T) {
	tg := newTarget(t)
	testdb.BigTable(t, tg.db, "t", 1<<16)
	e := tg.engine(t, 5*time.Second, Options{ChunkSize: 500})
	rec := &recorder{}
	job := engine.Job{ApplyID: 33, Attempt: 1, Tasks: []engine.Task{task(widen)}}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	done := make(chan error, 1)
	go func() { done <- e.Apply(ctx, job, rec) }()
	release := tg.holdLastRow(t, "t")
	waitFor(t, "the copy to wait on the held row", func() bool { return tg.copyWaiting(t) != 0 })
	if left := tg.leftovers(t); !strings.Contains(left, "trigger pt_osc_") {
		t.Fatalf("no triggers while copying: %q", left)
	}
	in, err := e.InFlight(context.Background(), engine.Job{ApplyID: 33, EngineState: rec.State()})
	if err != nil || !strings.Contains(in, "online copy of table t") {
		t.Errorf("InFlight while copying = %q, %v", in, err)
	}
	stop := errors.New("worker stopping")
	cancel(stop)
	waitFor(t, "the tool's chunk to be stopped", func() bool { return tg.copyWaiting(t) == 0 })
	if argv := toolArgv(t); len(argv) != 0 {
		t.Errorf("the tool still runs after its chunk was stopped: %v", argv)
	}
	// The held row's transaction holds the table's metadata lock, which
	// dropping the triggers needs.
	release()
	err = <-done
	if !engine.IsRetryable(err) || engine.Class(err) != engine.ClassInterrupted || !errors.Is(err, stop) {
		t.Fatalf("Apply = %v (class %s), want transient interrupted carrying the cause", err, engine.Class(err))
	}
	if left := tg.leftovers(t); left != "" {
		t.Errorf("left behind after the stop: %s", left)
	}
	if typ := tg.columnType(t, "t", "v"); typ != "int(11)" {
		t.Errorf("v is %s after the stop", typ)
	}
	if in, err := e.InFlight(context.Background(), engine.Job{ApplyID: 33, EngineState: rec.State()}); err != nil || in != "" {
		t.Errorf("InFlight after the stop = %q, %v", in, err)
	}
}

// TestResumeDropsOnlyWhatTheLedgerNames: an attempt that died left its
// shadow table and a trigger. The next attempt drops those (the ledger
// names them), leaves a look-alike table the ledger does not name, and
// copies again.
func TestResumeDropsOnlyWhatTheLedgerNames(t *testing.T) {
	tg := newTarget(t)
	testdb.BigTable(t, tg.db, "t", 1<<10)
	e := tg.engine(t, 5*time.Second, Options{})
	for _, s := range []string{
		"CREATE TABLE _tern_34_1_new_t LIKE t",
		"CREATE TABLE _tern_99_1_new_t LIKE t",
		"CREATE TRIGGER pt_osc_" + tg.name + "_t_ins AFTER INSERT ON t FOR EACH ROW REPLACE INTO `" + tg.name + "`.`_tern_34_1_new_t` (id, v, s) VALUES (NEW.id, NEW.v, NEW.s)",
	} {
		if _, err := tg.db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	state := map[string]string{
		"online.1.table": "t", "online.1.shadow": "_tern_34_1_new_t", "online.1.phase": PhaseCopying,
		"online.1.triggers": "pt_osc_" + tg.name + "_t_ins,pt_osc_" + tg.name + "_t_upd,pt_osc_" + tg.name + "_t_del",
	}
	rec := &recorder{}
	err := e.Apply(context.Background(), engine.Job{ApplyID: 34, Attempt: 2, Tasks: []engine.Task{task(widen)}, EngineState: state}, rec)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if typ := tg.columnType(t, "t", "v"); typ != "bigint(20)" {
		t.Errorf("v is %s", typ)
	}
	if left := tg.leftovers(t); left != "table _tern_99_1_new_t" {
		t.Errorf("left: %q, want only the table the ledger does not name", left)
	}
}

// TestOneCopyPerTable: while a copy of a table holds its lock, another
// apply's copy of the same table fails transiently within
// lock_wait_timeout and changes nothing.
func TestOneCopyPerTable(t *testing.T) {
	tg := newTarget(t)
	testdb.BigTable(t, tg.db, "t", 1<<10)
	e := tg.engine(t, time.Second, Options{})
	c, err := tg.db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got int
	if err := c.QueryRowContext(context.Background(), "SELECT GET_LOCK(?, 0)", namesFor(tg.name, "t", 1, 1).lock).Scan(&got); err != nil || got != 1 {
		t.Fatalf("GET_LOCK = %d, %v", got, err)
	}
	err = e.Apply(context.Background(), engine.Job{ApplyID: 35, Attempt: 1, Tasks: []engine.Task{task(widen)}}, &recorder{})
	if !engine.IsRetryable(err) || !strings.Contains(err.Error(), "another online copy of table t") {
		t.Fatalf("Apply = %v, want transient: another copy runs", err)
	}
	if left := tg.leftovers(t); left != "" {
		t.Errorf("left: %s", left)
	}
}

// TestEligible: tables the tool cannot take, and changes it cannot make,
// are refused with the reason; a plain table with a primary key is taken.
func TestEligible(t *testing.T) {
	tg := newTarget(t)
	for _, s := range []string{
		"CREATE TABLE ok (id INT PRIMARY KEY, v INT)",
		"CREATE TABLE nokey (v INT)",
		"CREATE TABLE parent (id INT PRIMARY KEY)",
		"CREATE TABLE child (id INT PRIMARY KEY, p INT, FOREIGN KEY (p) REFERENCES parent (id))",
		"CREATE TABLE trig (id INT PRIMARY KEY, v INT)",
		"CREATE TRIGGER trig_ins BEFORE INSERT ON trig FOR EACH ROW SET NEW.v = 1",
	} {
		if _, err := tg.db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	e := tg.engine(t, time.Second, Options{})
	for _, tt := range []struct{ table, ddl, want string }{
		{"ok", "ALTER TABLE `ok` MODIFY COLUMN `v` bigint", ""},
		{"ok", "ALTER TABLE `ok` CHANGE COLUMN `v` `v` bigint", ""},
		{"nokey", "ALTER TABLE `nokey` MODIFY COLUMN `v` bigint", "no primary key or unique key"},
		{"parent", "ALTER TABLE `parent` MODIFY COLUMN `id` bigint", "reference the table"},
		{"child", "ALTER TABLE `child` MODIFY COLUMN `p` bigint", "renames the foreign keys"},
		{"trig", "ALTER TABLE `trig` MODIFY COLUMN `v` bigint", "has triggers"},
		{"ok", "ALTER TABLE `ok` ADD UNIQUE KEY `v` (`v`)", "drop duplicate rows"},
		{"ok", "ALTER TABLE `ok` DROP PRIMARY KEY", "primary key to stay"},
		{"ok", "ALTER TABLE `ok` CHANGE COLUMN `v` `w` bigint", "rename columns"},
	} {
		got, err := e.Eligible(context.Background(), tt.table, tt.ddl)
		if err != nil {
			t.Fatal(err)
		}
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("Eligible(%s) = %q, want %q", tt.ddl, got, tt.want)
		}
	}
}

// TestProgressThrottled: progress lines reach a ProgressRecorder at most
// once per interval.
func TestProgressThrottled(t *testing.T) {
	e := &Engine{progressInterval: time.Hour}
	rec := &recorder{}
	p := e.progress(context.Background(), rec, 1)
	p("Copying `d`.`t`:  43% 00:40 remain")
	if got, _ := rec.Progress(); len(got) != 0 {
		t.Fatalf("reported before an interval passed: %v", got)
	}
	e.progressInterval = time.Nanosecond
	p = e.progress(context.Background(), rec, 1)
	time.Sleep(time.Millisecond)
	p("not progress")
	p("Copying `d`.`t`:  43% 00:40 remain")
	if got, _ := rec.Progress(); len(got) != 1 || got[0].Percent != 43 || got[0].Remaining != 40*time.Second {
		t.Fatalf("progress %v", got)
	}
	if e.progress(context.Background(), &struct{ recorder2 }{}, 1) != nil {
		t.Error("a recorder without TaskProgress got a progress reader")
	}
}

// recorder2 is a Recorder that does not record progress.
type recorder2 struct{}

func (recorder2) TaskStarted(context.Context, int) error          { return nil }
func (recorder2) TaskDone(context.Context, int) error             { return nil }
func (recorder2) SaveState(context.Context, string, string) error { return nil }
