package plan

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync/atomic"
	"time"
)

// killTimeout bounds the KILL that ends a quiet connection.
const killTimeout = 10 * time.Second

// quietConn returns a connection of db for a run of many statements, and
// the context to run them with: one that cannot be cancelled, so that
// neither database/sql nor the driver starts a goroutine and two handoffs
// per statement to watch it (BenchmarkShowCreateTables: 500 SHOW CREATE
// TABLE over 6 connections cost 23-24 ms of CPU so, 27.5-30.5 ms watched;
// BENCHMARKS.md). ctx still ends the statements: once it is done, the
// connection is killed on the server (KILL CONNECTION, sent on another
// connection of db), so that a statement in flight ends at once, even one
// waiting for a lock, and every later one fails; callers check ctx before
// each statement and report ctx's error for one that failed after it
// ended (quietErr). done stops the watch and returns the connection to
// the pool, or closes it for good when discard is set or it was killed.
// A server that cannot name the connection (no CONNECTION_ID()) gets an
// ordinary connection, watched by the driver; on one that refuses the
// KILL, the statement in flight runs to its end, and no other starts.
func quietConn(ctx context.Context, db *sql.DB) (conn *sql.Conn, qctx context.Context, done func(discard bool), err error) {
	conn, err = db.Conn(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	closeConn := func(discard bool) {
		if discard {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}
	var id int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		if ctx.Err() != nil {
			closeConn(true)
			return nil, nil, nil, ctx.Err()
		}
		return conn, ctx, closeConn, nil
	}
	var killed atomic.Bool
	stop := context.AfterFunc(ctx, func() {
		killed.Store(true)
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killTimeout)
		defer cancel()
		// The id is the server's own number: nothing of the user's is
		// in this statement.
		_, _ = db.ExecContext(kctx, fmt.Sprintf("KILL CONNECTION %d", id))
	})
	return conn, context.WithoutCancel(ctx), func(discard bool) {
		if !stop() {
			discard = true // killed, or being killed
		}
		closeConn(discard || killed.Load())
	}, nil
}

// quietErr is the error to report for err, returned by a statement on a
// quiet connection: ctx's own once it is done (the statement was killed
// for it), else err.
func quietErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
