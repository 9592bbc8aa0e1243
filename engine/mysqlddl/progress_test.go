package mysqlddl

import (
	"context"
	"testing"
	"time"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/engine"
	"github.com/ternhq/tern/internal/testdb"
)

// TestProgressOfACopy: while a copying ALTER of a 524,288-row table runs,
// the engine reports the server's stage and a growing percentage through
// the recorder, no more often than the configured interval.
func TestProgressOfACopy(t *testing.T) {
	ctx := context.Background()
	db, name := testdb.Open(t, "mysqlddl_progress")
	testdb.BigTable(t, db, "big", 1<<19)
	const interval = 300 * time.Millisecond
	e, err := New(config.MySQL{DSN: testdb.ServerDSN(), ProgressInterval: config.Duration(interval)}, name)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rec := &recorder{}
	task := engine.Task{Seq: 1, Kind: "alter", Table: "big", DDL: "ALTER TABLE `big` MODIFY COLUMN `v` bigint NOT NULL", Algorithm: "COPY", Lock: "SHARED"}
	start := time.Now()
	if err := e.Apply(ctx, engine.Job{ApplyID: 1, Tasks: []engine.Task{task}}, rec); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	progress, at := rec.Progress()
	t.Logf("copy took %s; %d progress reports: %+v", took, len(progress), progress)
	if len(progress) == 0 {
		t.Fatal("no progress reported during the copy")
	}
	sawCopy := false
	for i, p := range progress {
		sawCopy = sawCopy || p.Stage == "copy to tmp table"
		if p.Percent <= 0 || p.Percent > 100 {
			t.Errorf("report %d: percent %v", i, p.Percent)
		}
		if i > 0 && p.Percent < progress[i-1].Percent {
			t.Errorf("report %d: percent went back from %v to %v", i, progress[i-1].Percent, p.Percent)
		}
		if i > 0 && at[i].Sub(at[i-1]) < interval {
			t.Errorf("reports %d and %d only %s apart, interval %s", i-1, i, at[i].Sub(at[i-1]), interval)
		}
	}
	if !sawCopy {
		t.Errorf("no report of stage %q", "copy to tmp table")
	}
}

func TestProgressColumns(t *testing.T) {
	if st, p, ok := mariadbProgress(1, 2, 36.7, "copy to tmp table"); !ok || st != "copy to tmp table" || p != 36.7 {
		t.Errorf("mariadb stage 1: %q %v %v", st, p, ok)
	}
	if _, p, ok := mariadbProgress(2, 2, 0, "Enabling keys"); !ok || p != 50 {
		t.Errorf("mariadb stage 2 restarting at 0: %v %v, want 50", p, ok)
	}
	if _, _, ok := mariadbProgress(0, 0, 0, "Waiting for table metadata lock"); ok {
		t.Error("a statement without progress reported some")
	}
	if st, p, ok := mysqlProgress("stage/innodb/alter table (read PK and internal sort)", 40, 160); !ok || st != "alter table (read PK and internal sort)" || p != 25 {
		t.Errorf("mysql: %q %v %v", st, p, ok)
	}
	if _, _, ok := mysqlProgress("stage/sql/executing", 0, 0); ok {
		t.Error("a stage without an estimate reported progress")
	}
}
