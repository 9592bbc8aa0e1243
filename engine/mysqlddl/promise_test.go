package mysqlddl

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/engine"
)

func columnType(t *testing.T, e *Engine, table, col string) string {
	t.Helper()
	var typ string
	if err := e.db.QueryRow("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?", table, col).Scan(&typ); err != nil {
		t.Fatal(err)
	}
	return typ
}

// TestBrokenPromiseIsRefused: a task whose plan promised INPLACE without
// locks, for a change the server can only make by copying, is refused by
// the server before anything changes: a permanent broken_promise error
// that says what was promised, why the server cannot, and what to do.
// The same change promised as a COPY runs.
func TestBrokenPromiseIsRefused(t *testing.T) {
	ctx := context.Background()
	e, db, _ := newEngine(t, 5*time.Second)
	if _, err := db.Exec("CREATE TABLE t (id int PRIMARY KEY, b int)"); err != nil {
		t.Fatal(err)
	}
	broken := engine.Task{Seq: 1, Kind: "alter", Table: "t", DDL: "ALTER TABLE `t` MODIFY COLUMN `b` bigint", Algorithm: "INPLACE", Lock: "NONE"}
	rec := &recorder{}
	err := e.Apply(ctx, engine.Job{ApplyID: 1, Tasks: []engine.Task{broken}}, rec)
	var te *engine.TaskError
	if !errors.As(err, &te) || te.Seq != 1 {
		t.Fatalf("Apply = %v, want a TaskError for task 1", err)
	}
	if engine.IsRetryable(err) || engine.Class(te.Err) != engine.ClassBrokenPromise {
		t.Fatalf("class %q retryable %v, want permanent %s", engine.Class(te.Err), engine.IsRetryable(err), engine.ClassBrokenPromise)
	}
	for _, want := range []string{"ALGORITHM=INPLACE, LOCK=NONE", "Cannot change column type", "nothing was changed", "/tern plan", "--allow-blocking"} {
		if !strings.Contains(te.Err.Error(), want) {
			t.Errorf("message %q lacks %q", te.Err, want)
		}
	}
	if got := columnType(t, e, "t", "b"); got != "int(11)" {
		t.Fatalf("column b is %s after a refused ALTER, want int(11)", got)
	}
	kept := broken
	kept.Algorithm, kept.Lock = "COPY", "SHARED"
	if err := e.Apply(ctx, engine.Job{ApplyID: 1, Tasks: []engine.Task{kept}}, &recorder{}); err != nil {
		t.Fatalf("promised as a copy: %v", err)
	}
	if got := columnType(t, e, "t", "b"); got != "bigint(20)" {
		t.Fatalf("column b is %s, want bigint(20)", got)
	}
	// An instant promise that holds.
	inst := engine.Task{Seq: 1, Kind: "alter", Table: "t", DDL: "ALTER TABLE `t` ADD COLUMN `c` int", Algorithm: "INSTANT", Lock: "NONE"}
	if err := e.Apply(ctx, engine.Job{ApplyID: 1, Tasks: []engine.Task{inst}}, &recorder{}); err != nil {
		t.Fatalf("instant: %v", err)
	}
}

// TestPromiseOnRepartition: a promised repartitioning runs; the clause
// goes before PARTITION BY, where the grammar wants it.
func TestPromiseOnRepartition(t *testing.T) {
	ctx := context.Background()
	e, db, _ := newEngine(t, 5*time.Second)
	if _, err := db.Exec("CREATE TABLE t (id int NOT NULL PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	task := engine.Task{Seq: 1, Kind: "alter", Table: "t", DDL: "ALTER TABLE `t` \nPARTITION BY HASH (`id`) PARTITIONS 4", Algorithm: "COPY", Lock: "SHARED"}
	if err := e.Apply(ctx, engine.Job{ApplyID: 1, Tasks: []engine.Task{task}}, &recorder{}); err != nil {
		t.Fatalf("repartition with a promise: %v", err)
	}
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't'").Scan(&n); err != nil || n != 4 {
		t.Fatalf("partitions: %d, %v", n, err)
	}
}
