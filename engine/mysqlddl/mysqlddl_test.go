package mysqlddl

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/engine"
	"github.com/ternhq/tern/internal/enginetest"
	"github.com/ternhq/tern/internal/testdb"
)

// recorder notes the calls an engine makes, and can fail one.
type recorder = enginetest.Recorder

// newEngine makes a fresh database and an engine on it whose DSN names no
// database (so the target's name is used).
func newEngine(t *testing.T, lockWait time.Duration) (*Engine, *sql.DB, string) {
	t.Helper()
	db, name := testdb.Open(t, "mysqlddl")
	e, err := New(config.MySQL{DSN: testdb.ServerDSN(), LockWaitTimeout: config.Duration(lockWait)}, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, db, name
}

func tasks(ddl ...string) []engine.Task {
	var out []engine.Task
	for i, d := range ddl {
		out = append(out, engine.Task{Seq: i + 1, Kind: "alter", Table: "t", DDL: d})
	}
	return out
}

func columns(t *testing.T, db *sql.DB, table string) string {
	t.Helper()
	rows, err := db.Query("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION", table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	return strings.Join(cols, ",")
}

func mustExec(t *testing.T, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func TestApplyRunsTasksInOrder(t *testing.T) {
	ctx := context.Background()
	e, db, _ := newEngine(t, time.Second)
	ts := tasks(
		"CREATE TABLE t (id INT PRIMARY KEY, v INT)",
		"ALTER TABLE t ADD COLUMN c INT;",
		// Instant on both servers.
		"ALTER TABLE t ADD COLUMN d INT",
		// MariaDB and MySQL refuse INSTANT for an index: the engine must
		// fall back to the plain DDL.
		"ALTER TABLE t ADD UNIQUE KEY uv (v)",
	)
	ts[0].Kind = "create"
	ts[2].Instant = true
	ts[3].Instant = true
	rec := &recorder{}
	if err := e.Apply(ctx, engine.Job{ApplyID: 1, Attempt: 1, Tasks: ts}, rec); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got, want := rec.String(), "start 1, done 1, start 2, done 2, start 3, done 3, start 4, done 4"; got != want {
		t.Errorf("recorder calls = %q, want %q", got, want)
	}
	if got := columns(t, db, "t"); got != "id,v,c,d" {
		t.Errorf("columns = %q", got)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME = 'uv'").Scan(&n); err != nil || n != 1 {
		t.Errorf("unique key uv missing (n=%d, err=%v)", n, err)
	}
}

// TestApplyLeavesNoConnection: an apply's connection carries its session
// settings and is closed, not pooled, so that a process serving many
// targets does not hold an idle connection per target (four recovery passes
// over 200 targets once ran a server out of connections that way).
func TestApplyLeavesNoConnection(t *testing.T) {
	ctx := context.Background()
	e, _, _ := newEngine(t, time.Second)
	for i := 1; i <= 3; i++ {
		job := engine.Job{ApplyID: int64(i), Attempt: 1, Tasks: tasks(fmt.Sprintf("CREATE TABLE t%d (id INT PRIMARY KEY)", i))}
		if err := e.Apply(ctx, job, &recorder{}); err != nil {
			t.Fatalf("Apply %d: %v", i, err)
		}
		if st := e.db.Stats(); st.OpenConnections != 0 {
			t.Fatalf("after apply %d the pool holds %d connections (%d idle), want 0", i, st.OpenConnections, st.Idle)
		}
	}
}

func TestApplyPermanentFailureStops(t *testing.T) {
	ctx := context.Background()
	e, db, _ := newEngine(t, time.Second)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY, v INT)", "INSERT INTO t VALUES (1, 7), (2, 7)")
	rec := &recorder{}
	err := e.Apply(ctx, engine.Job{Tasks: tasks(
		"ALTER TABLE t ADD COLUMN c INT",
		"ALTER TABLE t ADD UNIQUE KEY uv (v)",
		"ALTER TABLE t ADD COLUMN d INT",
	)}, rec)
	var te *engine.TaskError
	if !errors.As(err, &te) || te.Seq != 2 {
		t.Fatalf("Apply = %v, want TaskError for task 2", err)
	}
	if engine.IsRetryable(err) || engine.Class(err) != engine.ClassDuplicate {
		t.Errorf("class = %q retryable = %v, want permanent duplicate", engine.Class(err), engine.IsRetryable(err))
	}
	if got := rec.String(); got != "start 1, done 1, start 2" {
		t.Errorf("recorder calls = %q", got)
	}
	if got := columns(t, db, "t"); got != "id,v,c" {
		t.Errorf("columns = %q", got)
	}
}

func TestApplyStopsWhenRecorderFails(t *testing.T) {
	e, db, _ := newEngine(t, time.Second)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	rec := &recorder{FailStart: 2}
	err := e.Apply(context.Background(), engine.Job{Tasks: tasks("ALTER TABLE t ADD COLUMN c INT", "ALTER TABLE t ADD COLUMN d INT")}, rec)
	if !errors.Is(err, enginetest.ErrLease) {
		t.Fatalf("Apply = %v, want the recorder's error", err)
	}
	var te *engine.TaskError
	if errors.As(err, &te) {
		t.Errorf("a recorder failure is not a task failure: %v", err)
	}
	if got := columns(t, db, "t"); got != "id,c" {
		t.Errorf("columns = %q: task 2 ran without being recorded", got)
	}
}

// TestApplyMetadataLock: an open transaction that read the table holds a
// metadata lock; the ALTER gives up after lock_wait_timeout with a
// transient error, and succeeds once the lock is released.
func TestApplyMetadataLock(t *testing.T) {
	ctx := context.Background()
	e, db, _ := newEngine(t, time.Second)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	holder, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	mustExec(t, holder, "BEGIN", "SELECT * FROM t")

	job := engine.Job{Tasks: tasks("ALTER TABLE t ADD COLUMN c INT")}
	rec := &recorder{}
	err = e.Apply(ctx, job, rec)
	var te *engine.TaskError
	if !errors.As(err, &te) || te.Seq != 1 {
		t.Fatalf("Apply = %v, want TaskError for task 1", err)
	}
	if !engine.IsRetryable(err) || engine.Class(err) != engine.ClassLockWaitTimeout {
		t.Fatalf("class = %q retryable = %v, want transient lock_wait_timeout", engine.Class(err), engine.IsRetryable(err))
	}
	if got := rec.String(); got != "start 1" {
		t.Errorf("recorder calls = %q", got)
	}

	mustExec(t, holder, "ROLLBACK")
	if err := e.Apply(ctx, job, &recorder{}); err != nil {
		t.Fatalf("Apply after the lock was released: %v", err)
	}
	if got := columns(t, db, "t"); got != "id,c" {
		t.Errorf("columns = %q", got)
	}
}

// TestApplyKilledConnection kills the engine's connection while its DDL
// waits on a held metadata lock: the failure is transient and a second
// attempt completes.
func TestApplyKilledConnection(t *testing.T) {
	ctx := context.Background()
	e, db, name := newEngine(t, 10*time.Minute)
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	holder, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	mustExec(t, holder, "BEGIN", "SELECT * FROM t")

	job := engine.Job{Tasks: tasks("ALTER TABLE t ADD COLUMN c INT")}
	done := make(chan error, 1)
	go func() { done <- e.Apply(ctx, job, &recorder{}) }()
	id := testdb.WaitForMetadataLockWait(t, db, name)
	mustExec(t, db, fmt.Sprintf("KILL %d", id))
	err = <-done
	var te *engine.TaskError
	if !errors.As(err, &te) || te.Seq != 1 {
		t.Fatalf("Apply = %v, want TaskError for task 1", err)
	}
	if !engine.IsRetryable(err) {
		t.Fatalf("killed connection is not retryable: class %q: %v", engine.Class(err), err)
	}

	mustExec(t, holder, "ROLLBACK")
	if err := e.Apply(ctx, job, &recorder{}); err != nil {
		t.Fatalf("Apply after the kill: %v", err)
	}
	if got := columns(t, db, "t"); got != "id,c" {
		t.Errorf("columns = %q", got)
	}
}

func TestNewDatabaseAndParams(t *testing.T) {
	ctx := context.Background()
	_, name := testdb.Open(t, "mysqlddl")
	cfg := testdb.Config(t)
	cfg.Params = map[string]string{"sql_mode": "'ANSI_QUOTES'"}
	withParams := cfg.FormatDSN()
	cfg.DBName = name
	withDB := cfg.FormatDSN()

	tests := []struct {
		name, dsn, database string
	}{
		{"database from the target", withParams, name},
		{"database from the DSN wins", withDB, "some_other_name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(config.MySQL{DSN: tt.dsn}, tt.database)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			if e.Database() != name {
				t.Errorf("Database() = %q, want %q", e.Database(), name)
			}
			live, err := e.Live(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var db, mode string
			if err := live.QueryRowContext(ctx, "SELECT DATABASE(), @@SESSION.sql_mode").Scan(&db, &mode); err != nil {
				t.Fatal(err)
			}
			if db != name || !strings.Contains(mode, "ANSI_QUOTES") {
				t.Errorf("live session: database %q sql_mode %q", db, mode)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(config.MySQL{DSN: "root:s3cret@tcp(127.0.0.1:3306"}, "x"); err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("invalid DSN: err = %v (must fail without echoing the password)", err)
	}
	if _, err := New(config.MySQL{DSN: "root@tcp(127.0.0.1:3306)/"}, ""); err == nil {
		t.Error("no database name: want an error")
	}
}

func TestParseFlavor(t *testing.T) {
	tests := []struct {
		version  string
		want     flavor
		lockWait string // for 1.5s
	}{
		{"10.11.6-MariaDB-0+deb12u1", flavor{mariadb: true, instant: true}, "1.5"},
		{"10.2.44-MariaDB", flavor{mariadb: true}, "1.5"},
		{"5.5.5-10.6.16-MariaDB", flavor{mariadb: true, instant: true}, "1.5"},
		{"8.0.36", flavor{instant: true}, "2"},
		{"8.4.0-commercial", flavor{instant: true}, "2"},
		{"5.7.44-log", flavor{}, "2"},
	}
	for _, tt := range tests {
		got := parseFlavor(tt.version)
		if got != tt.want {
			t.Errorf("parseFlavor(%q) = %+v, want %+v", tt.version, got, tt.want)
		}
		if lw := got.lockWaitValue(1500 * time.Millisecond); lw != tt.lockWait {
			t.Errorf("%s: lockWaitValue(1.5s) = %q, want %q", tt.version, lw, tt.lockWait)
		}
	}
	if got := (flavor{}).lockWaitValue(100 * time.Millisecond); got != "1" {
		t.Errorf("MySQL lock_wait_timeout below 1s = %q, want 1", got)
	}
}
