package ptosc

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

// Bounds of stopping a copy.
const (
	// stopTimeout bounds the cleanup of a stopped or failed copy.
	stopTimeout = 2 * time.Minute
	// pollEvery is the pause between two looks at the process list.
	pollEvery = 50 * time.Millisecond
)

// dropCopy drops, for task seq, what state names: the tool's triggers
// (only those that write into the named shadow table, so nobody else's)
// and the shadow table. Statements still copying into the shadow are
// stopped with KILL QUERY first.
func (e *Engine) dropCopy(ctx context.Context, state map[string]string, seq int) error {
	shadow := state[stateKey(seq, StateShadow)]
	if shadow == "" {
		return nil
	}
	if !strings.HasPrefix(shadow, "_tern_") {
		return &engine.PermanentError{Class: engine.ClassUnknown, Err: fmt.Errorf(
			"the ledger names %q as task %d's copy, which is not a name tern gives; dropped nothing", shadow, seq)}
	}
	var errs []error
	if err := e.dropTriggers(ctx, shadow, state[stateKey(seq, StateTriggers)]); err != nil {
		errs = append(errs, err)
	}
	if err := e.killCopiers(ctx, shadow); err != nil {
		errs = append(errs, err)
	}
	if _, err := e.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+quote(shadow)); err != nil {
		errs = append(errs, fmt.Errorf("drop %s: %w", shadow, err))
	}
	if err := errors.Join(errs...); err != nil {
		return engine.ClassifyMySQL(err)
	}
	return nil
}

// dropNamed drops task seq's triggers, copy and old table as state names
// them.
func (e *Engine) dropNamed(ctx context.Context, state map[string]string, seq int) error {
	err := e.dropCopy(ctx, state, seq)
	if old := state[stateKey(seq, StateOld)]; old != "" && strings.HasPrefix(old, "_tern_") {
		if _, derr := e.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+quote(old)); derr != nil {
			err = errors.Join(err, fmt.Errorf("drop %s: %w", old, derr))
		}
	}
	return err
}

// dropTriggers drops the triggers of list (comma-separated) that exist in
// the live schema and write into shadow.
func (e *Engine) dropTriggers(ctx context.Context, shadow, list string) error {
	var errs []error
	for _, name := range strings.Split(list, ",") {
		if name == "" {
			continue
		}
		var n int
		err := e.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.TRIGGERS
 WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME = ? AND ACTION_STATEMENT LIKE CONCAT('%', ?, '%')`,
			name, likeEscape(quote(shadow))).Scan(&n)
		if err != nil {
			errs = append(errs, fmt.Errorf("look for trigger %s: %w", name, err))
			continue
		}
		if n == 0 {
			continue
		}
		if _, err := e.db.ExecContext(ctx, "DROP TRIGGER IF EXISTS "+quote(name)); err != nil {
			errs = append(errs, fmt.Errorf("drop trigger %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// copiers returns the threads (other than the caller's) whose statement
// names shadow: the tool's chunk copies.
func (e *Engine) copiers(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, shadow string) ([]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT ID FROM information_schema.PROCESSLIST
 WHERE ID <> CONNECTION_ID() AND INFO LIKE CONCAT('%', ?, '%')`, likeEscape(quote(shadow)))
	if err != nil {
		return nil, fmt.Errorf("read the process list: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read the process list: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// killCopiers stops, with KILL QUERY, every statement still copying into
// shadow (a chunk the killed tool left running: the server finishes a
// statement whose client died), and waits until none runs.
func (e *Engine) killCopiers(ctx context.Context, shadow string) error {
	for {
		ids, err := e.copiers(ctx, e.db, shadow)
		if err != nil || len(ids) == 0 {
			return err
		}
		for _, id := range ids {
			// The thread may have ended meanwhile: that error is moot.
			_, _ = e.db.ExecContext(ctx, "KILL QUERY "+strconv.FormatInt(id, 10))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("statements copying into %s still run after KILL QUERY: %w", shadow, ctx.Err())
		case <-time.After(pollEvery):
		}
	}
}

// cleanFinished drops what the ledger names for tasks that are not in
// job but whose copy never recorded its end (a worker died after the
// swap, and the re-plan found the change live): their triggers, copy and
// old table. A table whose copy lock another session holds is left for a
// later attempt.
func (e *Engine) cleanFinished(ctx context.Context, job engine.Job) {
	inJob := map[int]bool{}
	for _, t := range job.Tasks {
		inJob[t.Seq] = true
	}
	for key, phase := range job.EngineState {
		rest, ok := strings.CutPrefix(key, "online.")
		if !ok || !strings.HasSuffix(rest, "."+StatePhase) || phase == PhaseDone {
			continue
		}
		seq, err := strconv.Atoi(strings.TrimSuffix(rest, "."+StatePhase))
		if err != nil || inJob[seq] {
			continue
		}
		table := job.EngineState[stateKey(seq, StateTable)]
		n := namesFor(e.database, table, job.ApplyID, seq)
		conn, err := e.db.Conn(ctx)
		if err != nil {
			return
		}
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 0)", n.lock).Scan(&got); err == nil && got.Int64 == 1 {
			if err := e.dropNamed(ctx, job.EngineState, seq); err != nil {
				e.opts.Logger.Warn("pt-osc: drop what a finished task left", "task", seq, "table", table, "err", err)
			}
		}
		discard(conn)
	}
}

// InFlight reports a copy of job's apply still running on the target: a
// session holding the copy lock of a table the ledger names, or a
// statement copying into a shadow table it names. While one runs, a new
// attempt must wait.
func (e *Engine) InFlight(ctx context.Context, job engine.Job) (string, error) {
	var found []string
	for key, phase := range job.EngineState {
		rest, ok := strings.CutPrefix(key, "online.")
		if !ok || !strings.HasSuffix(rest, "."+StatePhase) || phase == PhaseDone {
			continue
		}
		seq, err := strconv.Atoi(strings.TrimSuffix(rest, "."+StatePhase))
		if err != nil {
			continue
		}
		table := job.EngineState[stateKey(seq, StateTable)]
		n := namesFor(e.database, table, job.ApplyID, seq)
		var holder sql.NullInt64
		if err := e.db.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?)", n.lock).Scan(&holder); err != nil {
			return "", engine.ClassifyMySQL(fmt.Errorf("look for a running copy of %s: %w", table, err))
		}
		if holder.Valid {
			found = append(found, fmt.Sprintf("an online copy of table %s holds lock %s on connection %d", table, n.lock, holder.Int64))
			continue
		}
		if shadow := job.EngineState[stateKey(seq, StateShadow)]; shadow != "" {
			ids, err := e.copiers(ctx, e.db, shadow)
			if err != nil {
				return "", engine.ClassifyMySQL(err)
			}
			if len(ids) > 0 {
				found = append(found, fmt.Sprintf("statements still copying into %s on connections %v", shadow, ids))
			}
		}
	}
	if len(found) == 0 {
		return "", nil
	}
	return "a pt-online-schema-change copy of this apply is still running on the target: " + strings.Join(found, "; "), nil
}

// likeEscape escapes LIKE's wildcards in s.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
