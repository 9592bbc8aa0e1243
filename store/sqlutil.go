package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MySQL error numbers the store reacts to.
const errDuplicateKey = 1062

func isDuplicateKey(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == errDuplicateKey
}

// inTx runs fn in a READ COMMITTED transaction and commits it when fn
// returns nil. Every write path of the store goes through here, so no
// transaction holds gap locks that would block claimers.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	// Sessions are READ COMMITTED already (see Open).
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// placeholders returns "?, ?, ..." for vals and vals as query arguments.
func placeholders[T any](vals []T) (string, []any) {
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	return strings.TrimSuffix(strings.Repeat("?, ", len(vals)), ", "), args
}

// scanColumn reads the one column of every row and closes rows.
func scanColumn[T any](rows *sql.Rows) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// newToken returns a random lease token.
func newToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("lease token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func micros(d time.Duration) int64 { return d.Microseconds() }

// applyCols lists tern_applies' columns in the order scanApply reads them.
const applyCols = `id, plan_id, repository, pr, head_sha, installation_id, database_name, environment,
 desired_hash, state, attempt, max_attempts, rescues, next_attempt_at, lease_owner, lease_token,
 lease_expires_at, last_error, error_class, requested_by, allow_unsafe, engine_state, version,
 reported_version, created_at, updated_at, finished_at, allow_blocking`

type rowScanner interface{ Scan(dest ...any) error }

// scanApply reads one row of applyCols, then any extra columns into extra.
func scanApply(r rowScanner, extra ...any) (*Apply, error) {
	var a Apply
	var lease, finished sql.NullTime
	var engineState string
	dest := []any{&a.ID, &a.PlanID, &a.Repository, &a.PR, &a.HeadSHA, &a.InstallationID, &a.Database,
		&a.Environment, &a.DesiredHash, &a.State, &a.Attempt, &a.MaxAttempts, &a.Rescues, &a.NextAttemptAt,
		&a.LeaseOwner, &a.LeaseToken, &lease, &a.LastError, &a.ErrorClass, &a.RequestedBy, &a.AllowUnsafe,
		&engineState, &a.Version, &a.ReportedVersion, &a.CreatedAt, &a.UpdatedAt, &finished, &a.AllowBlocking}
	if err := r.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	a.LeaseExpiresAt = lease.Time
	a.FinishedAt = finished.Time
	a.EngineState = map[string]string{}
	if engineState != "" {
		if err := json.Unmarshal([]byte(engineState), &a.EngineState); err != nil {
			return nil, fmt.Errorf("apply %d: engine_state: %w", a.ID, err)
		}
	}
	return &a, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// queryApplies runs a SELECT of applyCols and returns the rows.
func queryApplies(ctx context.Context, q querier, where string, args ...any) ([]*Apply, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+applyCols+" FROM tern_applies "+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Apply
	for rows.Next() {
		a, err := scanApply(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// queryApply returns one apply or ErrNotFound.
func queryApply(ctx context.Context, q querier, where string, args ...any) (*Apply, error) {
	a, err := scanApply(q.QueryRowContext(ctx, "SELECT "+applyCols+" FROM tern_applies "+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	return a, err
}

// addEvent appends e to the audit log in tx (or on the pool).
func addEvent(ctx context.Context, x execer, e Event) error {
	_, err := x.ExecContext(ctx, `INSERT INTO tern_events (at, apply_id, repository, pr, actor, action, detail)
 VALUES (UTC_TIMESTAMP(6), ?, ?, ?, ?, ?, ?)`, e.ApplyID, e.Repository, e.PR, e.Actor, e.Action, e.Detail)
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// applyEvents appends one event per apply in ids, in tx, reading repository
// and PR from the rows themselves.
func applyEvents(ctx context.Context, tx *sql.Tx, ids []int64, actor, action, detail string) error {
	st := applyEventsStmt(ids, actor, action, detail, "")
	if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// applyEventsStmt is the INSERT of applyEvents; cond, when set, is an extra
// condition (e.g. "@tern_fenced = 1") with no arguments.
func applyEventsStmt(ids []int64, actor, action, detail, cond string) stmt {
	in, args := placeholders(ids)
	q := `INSERT INTO tern_events (at, apply_id, repository, pr, actor, action, detail)
 SELECT UTC_TIMESTAMP(6), id, repository, pr, ?, ?, ? FROM tern_applies WHERE id IN (` + in + `)`
	if cond != "" {
		q += " AND " + cond
	}
	return stmt{q, append([]any{actor, action, detail}, args...)}
}

// moveTasks moves the tasks of the given applies that are in one of from
// to state to, writing one event per task first. set adds assignments
// (with args) to the UPDATE. The caller holds the applies' rows.
func moveTasks(ctx context.Context, tx *sql.Tx, applyIDs []int64, from []State, to State, actor, detail, set string, setArgs ...any) error {
	ss, err := moveTasksStmts(applyIDs, from, to, actor, detail, "", set, setArgs...)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, ss[0].q, ss[0].args...); err != nil {
		return fmt.Errorf("audit task.%s: %w", to, err)
	}
	if _, err := tx.ExecContext(ctx, ss[1].q, ss[1].args...); err != nil {
		return fmt.Errorf("move tasks to %s: %w", to, err)
	}
	return nil
}

// moveTasksStmts returns moveTasks' two statements (the events' INSERT,
// then the tasks' UPDATE); cond, when set, is an extra condition with no
// arguments on both.
func moveTasksStmts(applyIDs []int64, from []State, to State, actor, detail, cond, set string, setArgs ...any) ([]stmt, error) {
	in, idArgs := placeholders(applyIDs)
	states := make([]any, len(from))
	for i, f := range from {
		if !CanTransitionTask(f, to) {
			return nil, &TransitionError{From: f, To: to}
		}
		states[i] = string(f)
	}
	sin := strings.TrimSuffix(strings.Repeat("?, ", len(from)), ", ")
	where := ` WHERE t.apply_id IN (` + in + `) AND t.state IN (` + sin + `)`
	if cond != "" {
		where += " AND " + cond
	}
	whereArgs := append(append([]any{}, idArgs...), states...)
	audit := stmt{`INSERT INTO tern_events (at, apply_id, repository, pr, actor, action, detail)
 SELECT UTC_TIMESTAMP(6), t.apply_id, a.repository, a.pr, ?, ?, CONCAT('task ', t.seq, ': ', t.state, ' -> ', ?, IF(? = '', '', CONCAT(': ', ?)))
 FROM tern_tasks t JOIN tern_applies a ON a.id = t.apply_id` + where,
		append([]any{actor, "task." + string(to), string(to), detail, detail}, whereArgs...)}
	q := `UPDATE tern_tasks t SET t.state = ?, t.updated_at = UTC_TIMESTAMP(6)`
	if to.Terminal() {
		q += `, t.finished_at = UTC_TIMESTAMP(6)`
	}
	if set != "" {
		q += ", " + set
	}
	move := stmt{q + where, append(append([]any{string(to)}, setArgs...), whereArgs...)}
	return []stmt{audit, move}, nil
}

// currentState reads an apply's state for a ConflictError ("" when the
// row is missing or unreadable).
func currentState(ctx context.Context, q querier, id int64) State {
	var st State
	if err := q.QueryRowContext(ctx, `SELECT state FROM tern_applies WHERE id = ?`, id).Scan(&st); err != nil {
		return ""
	}
	return st
}

// fenceRunning updates a running apply a, fenced on its lease token: set
// holds extra assignments; version and updated_at always change. It
// returns a *ConflictError when the apply is no longer a's to write.
func fenceRunning(ctx context.Context, tx *sql.Tx, op string, a *Apply, bump bool, set string, args ...any) error {
	if a.LeaseToken == "" {
		return &ConflictError{Op: op, ID: a.ID, Want: Running, Current: currentState(ctx, tx, a.ID)}
	}
	q := `UPDATE tern_applies SET updated_at = UTC_TIMESTAMP(6)`
	if bump {
		q += `, version = version + 1`
	}
	if set != "" {
		q += ", " + set
	}
	q += ` WHERE id = ? AND state = 'running' AND lease_token = ?`
	res, err := tx.ExecContext(ctx, q, append(args, a.ID, a.LeaseToken)...)
	if err != nil {
		return fmt.Errorf("%s %d: %w", op, a.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s %d: %w", op, a.ID, err)
	}
	if n == 0 {
		return &ConflictError{Op: op, ID: a.ID, Want: Running, Current: currentState(ctx, tx, a.ID)}
	}
	return nil
}
