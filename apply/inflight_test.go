package apply

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/store"
)

// TestRunWaitsForOrphanDDL: a worker died while its copying ALTER ran; the
// server goes on with the ALTER. The rescued apply's next dispatch must see
// that DDL in the process list and wait for it, without spending an
// attempt and without sending the DDL again (which would block behind it,
// then fail "Duplicate column" and end the apply failed while the change
// is live). Once the orphan is done, the next attempt finds the change
// live and completes without running it.
func TestRunWaitsForOrphanDDL(t *testing.T) {
	f := newFixture(t, 30*time.Second)
	testdb.BigTable(t, f.live, "t", 1<<19)
	a := f.createApply(f.plan(`CREATE TABLE t (id INT NOT NULL AUTO_INCREMENT, v INT NOT NULL,
 s VARCHAR(100) NOT NULL, c INT DEFAULT NULL, PRIMARY KEY (id)) ENGINE=InnoDB;`), 5)
	ts := f.tasks(a.ID)
	if len(ts) != 1 {
		t.Fatalf("plan has %d tasks", len(ts))
	}

	// The dead worker: it claimed, started task 1, sent its DDL, and died.
	claimed := f.claim(a.ID, time.Second)
	if err := f.store.StartTask(f.ctx, claimed, 1); err != nil {
		t.Fatal(err)
	}
	orphan := fmt.Sprintf("/* tern apply=%d task=1 */ ALTER TABLE t ADD COLUMN c INT DEFAULT NULL, ALGORITHM=COPY", a.ID)
	done := make(chan error, 1)
	go func() { _, err := f.live.ExecContext(context.Background(), orphan); done <- err }()
	testdb.WaitForStage(t, f.live, f.name, "ALTER TABLE t ADD COLUMN c", "copy to tmp table")
	rescued, err := f.store.Rescue(f.ctx, waitLapsed(t, f.store, a.ID), 3)
	if err != nil {
		t.Fatal(err)
	}

	got := f.run(f.claim(a.ID, time.Minute))
	if got.State != store.FailedRetryable || got.ErrorClass != store.ClassStillRunning {
		t.Fatalf("dispatch while the orphan runs: %s class %q (%s), want failed_retryable %s", got.State, got.ErrorClass, got.LastError, store.ClassStillRunning)
	}
	if got.Attempt != rescued.Attempt {
		t.Errorf("the wait cost an attempt: attempt %d, was %d", got.Attempt, rescued.Attempt)
	}
	if err := <-done; err != nil {
		t.Fatalf("the orphan ALTER: %v", err)
	}

	got = f.run(f.retryNow(a.ID))
	if got.State != store.Completed {
		t.Fatalf("after the orphan ended: %s class %q (%s), want completed", got.State, got.ErrorClass, got.LastError)
	}
	if got.Attempt != rescued.Attempt+1 {
		t.Errorf("attempt %d, want %d", got.Attempt, rescued.Attempt+1)
	}
	if ts := f.tasks(a.ID); !ts[0].Skipped {
		t.Errorf("task 1 was run again instead of being found live")
	}
}
