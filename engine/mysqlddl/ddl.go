package mysqlddl

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ternhq/tern/engine"
)

// StateConn is the engine-state key under which the engine records, before
// it sends a task's DDL, the session that runs it: "task=SEQ id=ID
// server=HOST:PORT" (the connection id as the server numbers it, and the
// server's own @@hostname and @@port). A rescuer or an operator finds an
// orphaned DDL with it; the engine itself finds one through the tag every
// DDL it sends carries (see tag).
const StateConn = "mysql_ddl_conn"

// Bounds of stopping a DDL.
const (
	// stopTimeout bounds how long a stopped attempt waits for its killed
	// DDL to end (the server rolls a copying ALTER back first). Past it
	// the session is dropped and the next dispatch's InFlight check keeps
	// the DDL from being sent again while it runs.
	stopTimeout = 2 * time.Minute
	// pollEvery is the pause between two looks at the process list.
	pollEvery = 50 * time.Millisecond
)

// session is the dedicated connection one Apply runs its DDL on, and who it
// is on the server.
type session struct {
	conn   *sql.Conn
	id     int64  // CONNECTION_ID()
	server string // @@hostname:@@port
	// busy is closed when no statement runs on conn; nil when none was
	// left running.
	busy chan struct{}
}

// openSession takes a connection of its own from the pool and reads who it
// is.
func (e *Engine) openSession(ctx context.Context) (*session, error) {
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return nil, engine.ClassifyMySQL(fmt.Errorf("connect: %w", err))
	}
	s := &session{conn: conn}
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID(), CONCAT(@@hostname, ':', @@port)").Scan(&s.id, &s.server); err != nil {
		discard(conn)
		return nil, engine.ClassifyMySQL(fmt.Errorf("read connection id: %w", err))
	}
	return s, nil
}

// close drops the session's connection for good (it carries this job's
// settings and must not go back to the pool). When a statement abandoned
// by a stop still runs on it, the connection is dropped once that
// statement returns.
func (s *session) close() {
	if s.busy != nil {
		go func(busy chan struct{}) { <-busy; discard(s.conn) }(s.busy)
		return
	}
	discard(s.conn)
}

// tag is the comment every DDL of task seq of apply applyID starts with, so
// that the process list shows whose it is and InFlight can find it.
func tag(applyID int64, seq int) string {
	return fmt.Sprintf("/* tern apply=%d task=%d */ ", applyID, seq)
}

// execDDL is the one place the engine runs DDL on the target. It sends
// stmt, tagged with the apply and task, on the session, and returns the
// statement's own error.
//
// When ctx ends while the statement runs (the worker stops, the lease is
// lost), closing the client is not enough: MariaDB finishes a copying
// ALTER whose client went away. So execDDL sends KILL QUERY for the
// session's thread from a second connection (after checking that this is
// the same server and that the thread still runs this DDL), waits for the
// statement to return and for the thread to leave the process list's DDL,
// and only then returns: the attempt is recorded after the DDL is really
// over. A DDL that completed before the kill took hold returns nil; one
// that was stopped returns a transient error of class interrupted.
func (e *Engine) execDDL(ctx context.Context, s *session, applyID int64, seq int, stmt string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	text := tag(applyID, seq) + stmt
	done := make(chan error, 1)
	busy := make(chan struct{})
	go func() {
		defer close(busy)
		// The driver would only drop the connection on ctx's end, leaving
		// the DDL running: the statement runs until it returns, and a stop
		// is a KILL QUERY.
		_, err := s.conn.ExecContext(context.WithoutCancel(ctx), text)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	cause := context.Cause(ctx)
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	// The kill is sent again until the statement returns: one sent before
	// the server showed the statement (it had only just been sent) finds
	// nothing to kill.
	var err, kerr error
	for stopped := false; !stopped; {
		kerr = e.killQuery(stopCtx, s, applyID, seq)
		select {
		case err = <-done:
			stopped = true
		case <-time.After(time.Second):
		case <-stopCtx.Done():
			s.busy = busy
			return &engine.RetryableError{Class: engine.ClassInterrupted, Err: fmt.Errorf(
				"DDL of task %d did not stop within %s of KILL QUERY %d (%v); it may still be running on %s: %w",
				seq, stopTimeout, s.id, kerr, s.server, cause)}
		}
	}
	if werr := e.waitGone(stopCtx, s, applyID, seq); werr != nil && kerr == nil {
		kerr = werr
	}
	if err == nil {
		// It ended before the kill took hold: the change is made.
		return nil
	}
	msg := fmt.Sprintf("DDL of task %d stopped with KILL QUERY %d on %s", seq, s.id, s.server)
	if kerr != nil {
		msg = fmt.Sprintf("DDL of task %d stopped (KILL QUERY %d on %s: %v)", seq, s.id, s.server, kerr)
	}
	return &engine.RetryableError{Class: engine.ClassInterrupted, Err: fmt.Errorf("%s: %w", msg, errors.Join(cause, err))}
}

// killQuery stops the DDL of task seq that session s runs, from another
// connection of the pool. It kills nothing when that connection reaches
// another server (a failover moved the DSN) or the thread no longer runs
// this DDL.
func (e *Engine) killQuery(ctx context.Context, s *session, applyID int64, seq int) error {
	c, err := e.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect to kill: %w", err)
	}
	defer c.Close()
	var server string
	if err := c.QueryRowContext(ctx, "SELECT CONCAT(@@hostname, ':', @@port)").Scan(&server); err != nil {
		return fmt.Errorf("read server: %w", err)
	}
	if server != s.server {
		return fmt.Errorf("the pool now reaches %s, not %s: nothing killed", server, s.server)
	}
	running, err := threadRuns(ctx, c, s.id, tag(applyID, seq))
	if err != nil || !running {
		return err
	}
	if _, err := c.ExecContext(ctx, "KILL QUERY "+strconv.FormatInt(s.id, 10)); err != nil {
		return fmt.Errorf("KILL QUERY %d: %w", s.id, err)
	}
	return nil
}

// waitGone waits until thread s.id no longer runs the DDL of task seq.
func (e *Engine) waitGone(ctx context.Context, s *session, applyID int64, seq int) error {
	for {
		running, err := threadRuns(ctx, e.db, s.id, tag(applyID, seq))
		if err != nil || !running {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("thread %d still runs the DDL: %w", s.id, ctx.Err())
		case <-time.After(pollEvery):
		}
	}
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// threadRuns reports whether thread id runs a statement starting with
// prefix.
func threadRuns(ctx context.Context, q queryer, id int64, prefix string) (bool, error) {
	var n int
	err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.PROCESSLIST
 WHERE ID = ? AND INFO LIKE CONCAT(?, '%')`, id, likeEscape(prefix)).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read the process list: %w", err)
	}
	return n > 0, nil
}

// InFlight looks in the target's process list for a DDL of job's apply
// still running on the live schema (left by an attempt that was stopped,
// or whose worker died), and describes it ("apply 12 task 2 on thread
// 1234, copy to tmp table"), or returns "" when there is none. While one
// runs, the apply must wait: sending the DDL again would block behind it,
// then fail or run it twice. It needs no PROCESS privilege: tern's user
// sees its own threads.
func (e *Engine) InFlight(ctx context.Context, job engine.Job) (string, error) {
	prefix := fmt.Sprintf("/* tern apply=%d task=", job.ApplyID)
	rows, err := e.db.QueryContext(ctx, `SELECT ID, COALESCE(STATE, ''), INFO FROM information_schema.PROCESSLIST
 WHERE ID <> CONNECTION_ID() AND DB = ? AND INFO LIKE CONCAT(?, '%') ORDER BY ID`, e.database, likeEscape(prefix))
	if err != nil {
		return "", engine.ClassifyMySQL(fmt.Errorf("read the process list: %w", err))
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var id int64
		var state, info string
		if err := rows.Scan(&id, &state, &info); err != nil {
			return "", engine.ClassifyMySQL(fmt.Errorf("read the process list: %w", err))
		}
		seq, _, _ := strings.Cut(strings.TrimPrefix(info, prefix), " */")
		d := fmt.Sprintf("apply %d task %s on thread %d", job.ApplyID, seq, id)
		if state != "" {
			d += ", " + state
		}
		found = append(found, d)
	}
	if err := rows.Err(); err != nil {
		return "", engine.ClassifyMySQL(fmt.Errorf("read the process list: %w", err))
	}
	if len(found) == 0 {
		return "", nil
	}
	d := "a DDL of this apply is still running on the target: " + strings.Join(found, "; ")
	if c := job.EngineState[StateConn]; c != "" {
		d += " (this apply's last recorded session: " + c + ")"
	}
	return d, nil
}

// likeEscape escapes LIKE's wildcards in s.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
