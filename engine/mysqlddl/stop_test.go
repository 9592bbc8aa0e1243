package mysqlddl

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/engine"
	"github.com/ternhq/tern/internal/testdb"
)

// bigRows makes a copying ALTER of the test table take seconds.
const bigRows = 1 << 19

// TestApplyStopKillsCopyingAlter: the attempt's context ends while a
// copying ALTER of a big table runs. MariaDB would finish the ALTER after
// its client went away; the engine must KILL QUERY it and return only once
// the server has stopped it, so that the attempt is recorded while nothing
// runs. Before the stop, the session is recorded and InFlight sees the DDL.
func TestApplyStopKillsCopyingAlter(t *testing.T) {
	e, db, name := newEngine(t, time.Second)
	testdb.BigTable(t, db, "t", bigRows)
	const ddl = "ALTER TABLE t MODIFY v BIGINT NOT NULL"
	job := engine.Job{ApplyID: 42, Attempt: 1, Tasks: tasks(ddl)}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	rec := &recorder{}
	done := make(chan error, 1)
	go func() { done <- e.Apply(ctx, job, rec) }()
	id := testdb.WaitForStage(t, db, name, ddl, "copy to tmp table")

	conn := rec.State()[StateConn]
	if !strings.Contains(conn, "task=1 ") || !strings.Contains(conn, " server=") || !strings.Contains(conn, "id="+strconv.FormatInt(id, 10)+" ") {
		t.Errorf("recorded session %q, want task=1 id=%d server=...", conn, id)
	}
	inflight, err := e.InFlight(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(inflight, "apply 42 task 1 on thread "+strconv.FormatInt(id, 10)) {
		t.Errorf("InFlight while the ALTER runs = %q", inflight)
	}

	stop := errors.New("worker stopping")
	stopped := time.Now()
	cancel(stop)
	err = <-done
	t.Logf("Apply returned %s after the stop", time.Since(stopped))
	if left := testdb.Running(t, db, name, ddl); left != "" {
		t.Fatalf("Apply returned while its DDL still runs on the server:\n%s", left)
	}
	var te *engine.TaskError
	if !errors.As(err, &te) || te.Seq != 1 || engine.Class(err) != engine.ClassInterrupted || !engine.IsRetryable(err) {
		t.Fatalf("Apply = %v (class %q), want a transient interrupted TaskError for task 1", err, engine.Class(err))
	}
	if !errors.Is(err, stop) || !strings.Contains(err.Error(), "KILL QUERY") {
		t.Errorf("error %q does not say it was stopped by KILL QUERY, or lost the cause", err)
	}
	var typ string
	if err := db.QueryRow("SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't' AND COLUMN_NAME = 'v'").Scan(&typ); err != nil {
		t.Fatal(err)
	}
	if typ != "int" {
		t.Errorf("column v is %s after the stop: the killed ALTER went on", typ)
	}
	if got, err := e.InFlight(context.Background(), job); err != nil || got != "" {
		t.Errorf("InFlight after the stop = %q, %v; want nothing", got, err)
	}
}

// TestInFlightOtherApply: a DDL of another apply (targets of several
// environments may share one schema), or one running in another database,
// is not this apply's.
func TestInFlightOtherApply(t *testing.T) {
	e, db, name := newEngine(t, time.Second)
	testdb.BigTable(t, db, "t", bigRows)
	const ddl = "ALTER TABLE t MODIFY v BIGINT NOT NULL"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Apply(ctx, engine.Job{ApplyID: 7, Attempt: 1, Tasks: tasks(ddl)}, &recorder{}) }()
	testdb.WaitForStage(t, db, name, ddl, "copy to tmp table")
	for _, id := range []int64{70, 1} {
		if got, err := e.InFlight(context.Background(), engine.Job{ApplyID: id}); err != nil || got != "" {
			t.Errorf("InFlight(apply %d) = %q, %v; want nothing", id, got, err)
		}
	}
	_, otherName := testdb.New(t, "mysqlddl_other")
	other, err := New(config.MySQL{DSN: testdb.ServerDSN()}, otherName)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if got, err := other.InFlight(context.Background(), engine.Job{ApplyID: 7}); err != nil || got != "" {
		t.Errorf("InFlight in another database = %q, %v; want nothing", got, err)
	}
	cancel()
	<-done
}
