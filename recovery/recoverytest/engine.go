// Package recoverytest holds test doubles for the recovery pass that still
// run against a real MySQL/MariaDB: a fast engine that records every DDL
// execution in a table (so executions are counted across connections and
// processes) and fails transiently on demand.
package recoverytest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ternhq/tern/engine"
)

// Forever makes a fault that never clears.
const Forever = -1

// Engine is an engine.Engine for tests and benchmarks. It runs no DDL on a
// target: each task it executes becomes one row of test_ddl_runs, and an
// apply with a fault in test_faults fails transiently (lock_wait_timeout)
// before its first task runs, as many times as the fault says.
type Engine struct {
	db *sql.DB
}

// NewEngine returns an engine recording into db (whose default database
// holds the tables Migrate creates). It does not own db.
func NewEngine(db *sql.DB) *Engine { return &Engine{db: db} }

// Migrate creates the engine's tables.
func Migrate(ctx context.Context, db *sql.DB) error {
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS test_ddl_runs (
		  id BIGINT AUTO_INCREMENT PRIMARY KEY,
		  apply_id BIGINT NOT NULL,
		  seq INT NOT NULL,
		  attempt INT NOT NULL,
		  KEY (apply_id, seq))`,
		`CREATE TABLE IF NOT EXISTS test_faults (
		  apply_id BIGINT PRIMARY KEY,
		  remaining INT NOT NULL)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("create test engine tables: %w", err)
		}
	}
	return nil
}

// SetFault makes apply id fail transiently its next n attempts (Forever:
// every attempt); 0 removes the fault.
func SetFault(ctx context.Context, db *sql.DB, id int64, n int) error {
	_, err := db.ExecContext(ctx,
		`INSERT INTO test_faults (apply_id, remaining) VALUES (?, ?)
		 ON DUPLICATE KEY UPDATE remaining = VALUES(remaining)`, id, n)
	if err != nil {
		return fmt.Errorf("set fault: %w", err)
	}
	return nil
}

// Runs returns how many times each task of each apply was executed:
// apply id -> seq -> count.
func Runs(ctx context.Context, db *sql.DB) (map[int64]map[int]int, error) {
	rows, err := db.QueryContext(ctx, `SELECT apply_id, seq, COUNT(*) FROM test_ddl_runs GROUP BY apply_id, seq`)
	if err != nil {
		return nil, fmt.Errorf("count runs: %w", err)
	}
	defer rows.Close()
	out := map[int64]map[int]int{}
	for rows.Next() {
		var id int64
		var seq, n int
		if err := rows.Scan(&id, &seq, &n); err != nil {
			return nil, fmt.Errorf("count runs: %w", err)
		}
		if out[id] == nil {
			out[id] = map[int]int{}
		}
		out[id][seq] = n
	}
	return out, rows.Err()
}

// ErrInjected is the transient fault the engine injects.
var ErrInjected = errors.New("lock wait timeout exceeded; try restarting transaction (injected fault)")

// Apply runs job: a pending fault fails the first task transiently;
// otherwise every task is recorded as executed, in order, through rec.
func (e *Engine) Apply(ctx context.Context, job engine.Job, rec engine.Recorder) error {
	res, err := e.db.ExecContext(ctx,
		`UPDATE test_faults SET remaining = IF(remaining < 0, remaining, remaining - 1)
		 WHERE apply_id = ? AND remaining <> 0`, job.ApplyID)
	if err != nil {
		return fmt.Errorf("check fault: %w", err)
	}
	faulted, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("check fault: %w", err)
	}
	for i, t := range job.Tasks {
		if err := rec.TaskStarted(ctx, t.Seq); err != nil {
			return err
		}
		if i == 0 && faulted > 0 {
			return &engine.TaskError{Seq: t.Seq, Err: &engine.RetryableError{Class: engine.ClassLockWaitTimeout, Err: ErrInjected}}
		}
		if _, err := e.db.ExecContext(ctx,
			`INSERT INTO test_ddl_runs (apply_id, seq, attempt) VALUES (?, ?, ?)`,
			job.ApplyID, t.Seq, job.Attempt); err != nil {
			return &engine.TaskError{Seq: t.Seq, Err: &engine.RetryableError{Class: engine.ClassConnectionLost, Err: err}}
		}
		if err := rec.TaskDone(ctx, t.Seq); err != nil {
			return err
		}
	}
	return nil
}

// Live returns the recording database.
func (e *Engine) Live(ctx context.Context) (*sql.DB, error) { return e.db, nil }

// Close does nothing: the engine does not own its pool.
func (e *Engine) Close() error { return nil }
