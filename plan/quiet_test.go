package plan

import (
	"context"
	"errors"
	"testing"

	"github.com/ternhq/tern/internal/testdb"
)

// TestQuietConnEndsWithItsContext: a statement on a quiet connection runs
// with a context that cannot be cancelled, yet it ends as soon as the
// caller's context does (the connection is killed on the server), and the
// error to report is the context's; an uncancelled quiet connection goes
// back to the pool alive.
func TestQuietConnEndsWithItsContext(t *testing.T) {
	srv := testdb.Server(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn, qctx, done, err := quietConn(ctx, srv)
	if err != nil {
		t.Fatal(err)
	}
	if qctx.Done() != nil {
		t.Fatal("the quiet context can be cancelled: the driver would watch it")
	}
	var id int64
	if err := conn.QueryRowContext(qctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() {
		var slept int
		err := conn.QueryRowContext(qctx, "SELECT SLEEP(60)").Scan(&slept)
		res <- quietErr(ctx, err)
	}()
	// Cancel once the server runs the statement (unless it failed first).
	for running := false; !running; {
		select {
		case err = <-res:
			t.Fatalf("the statement ended before it was cancelled: %v", err)
		default:
		}
		var n int
		if err := srv.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND INFO = 'SELECT SLEEP(60)'", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		running = n == 1
	}
	cancel()
	if err = <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("the statement ended with %v, want the context's error", err)
	}
	done(false)

	conn2, qctx2, done2, err := quietConn(context.Background(), srv)
	if err != nil {
		t.Fatal(err)
	}
	if err := conn2.QueryRowContext(qctx2, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	done2(false)
	var n int
	if err := srv.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", id).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the uncancelled connection %d: %d in the processlist (%v), want it alive", id, n, err)
	}
}
