package apply

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/engine"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/store"
)

// TestRunStopsWhenLedgerUnreachable: the worker loses its way to the
// ledger (a proxy between them is cut) while its DDL waits on a held
// metadata lock. It cannot extend its lease, so another worker may soon
// own the apply: the attempt must stop itself (the DDL killed) once its
// last confirmed lease, less a margin, has passed on its own clock, not
// wait for the ledger or the DDL. When the ledger is back, the attempt is
// recorded as interrupted.
func TestRunStopsWhenLedgerUnreachable(t *testing.T) {
	f := newFixture(t, 10*time.Minute, liveT)
	a := f.createApply(f.plan(desired), 5)
	f.holdMetadataLock("t")

	proxy := testdb.NewProxy(t)
	dsn := proxy.DSN(t, f.storeDSN)
	viaProxy, err := store.Open(f.ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { viaProxy.Close() })
	f.runner.Store = viaProxy
	const lease = 3 * time.Second
	f.runner.Policy.Lease = lease
	claimed := f.claim(a.ID, lease)

	type result struct {
		a   *store.Apply
		err error
	}
	done := make(chan result, 1)
	go func() {
		got, err := f.runner.Run(context.Background(), claimed)
		done <- result{got, err}
	}()
	testdb.WaitForMetadataLockWait(t, f.live, f.name)
	proxy.Cut()

	// The DDL must go away by itself; without the stop it waits for the
	// lock for ten minutes.
	for i := 0; testdb.Running(t, f.live, f.name, "ALTER TABLE") != ""; i++ {
		if i > 600 {
			t.Fatal("the DDL still runs a minute after the ledger became unreachable")
		}
		time.Sleep(100 * time.Millisecond)
	}
	cur, err := f.store.Apply(f.ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if cur.State != store.Running {
		t.Fatalf("apply is %s while the worker cannot reach the ledger", cur.State)
	}
	proxy.Restore()
	r := <-done
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if r.a.State != store.FailedRetryable || r.a.ErrorClass != engine.ClassInterrupted {
		t.Fatalf("apply %s class %q (%s), want failed_retryable interrupted", r.a.State, r.a.ErrorClass, r.a.LastError)
	}
	if c := f.columns("t"); c != "id,v" {
		t.Errorf("t columns %q", c)
	}
	if !strings.Contains(r.a.LastError, ErrLeaseExpired.Error()) {
		t.Errorf("last error %q does not say the lease ran out", r.a.LastError)
	}
}
