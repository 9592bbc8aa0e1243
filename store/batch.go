package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
)

// The hot fenced writes of an attempt (Claim, StartTask, FinishTask,
// FailTask, FinishApply, ExtendLease) send their statements as one
// multi-statement batch per round trip, on a pool of their own (the only
// one with multiStatements on; every value still travels as a `?`
// interpolated and escaped by the driver). A batch never decides to commit:
// its statements after the fence are conditioned on the fence having held
// (@tern_fenced = 1), its last statement is a SELECT that reports what each
// step did, and Go checks those counts and then commits or rolls back,
// exactly as when the statements went one by one.

// stmt is one statement of a batch with its arguments.
type stmt struct {
	q    string
	args []any
}

// joinStmts joins statements into one batch.
func joinStmts(ss ...stmt) (string, []any) {
	qs := make([]string, len(ss))
	var args []any
	for i, s := range ss {
		qs[i] = s.q
		args = append(args, s.args...)
	}
	return strings.Join(qs, ";\n"), args
}

// writeTx is inTx on the batch pool.
func (s *Store) writeTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// errBatchNoRow is returned by batchRow when the final SELECT found no row.
var errBatchNoRow = errors.New("batch: no row")

// batchRow runs ss in one round trip on q (a transaction, or the batch
// pool) and scans the single row of the last statement, a SELECT, into
// dest. The statements before it must return no result set; an error in
// any of them is returned. errBatchNoRow when the SELECT found no row.
func batchRow(ctx context.Context, q querier, ss []stmt, dest ...any) error {
	return batchScan(ctx, q, ss, func(r rowScanner) error { return r.Scan(dest...) })
}

// batchScan is batchRow with a scan function.
func batchScan(ctx context.Context, q querier, ss []stmt, scan func(rowScanner) error) error {
	query, args := joinStmts(ss...)
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	// The driver steps over the results without columns (surfacing their
	// errors) to the first result set: the final SELECT's.
	found := rows.Next()
	if found {
		if err := scan(rows); err != nil {
			return err
		}
		for rows.Next() {
		}
	}
	for rows.NextResultSet() {
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if !found {
		return errBatchNoRow
	}
	return nil
}
