package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrReportOvertaken is returned by ReportWriteSending when another
// reporter has taken over the apply's report: the caller's write would
// land after the other's newer ones, and must not be sent.
var ErrReportOvertaken = errors.New("another reporter took over this apply's report")

// ReportWrite is one reporter's round of GitHub writes for an apply,
// recorded with the apply (BeginReportWrite). Each write is announced
// before it is sent and cleared once answered, so a reporter taking over
// knows whether a write of the one before may still be on its way.
type ReportWrite struct {
	// ApplyID is the apply reported.
	ApplyID int64
	// Force says that GitHub may show something else than what the
	// ledger remembers (a reporter before this one died or was overtaken
	// mid-write, or a recheck is due): every object must be rewritten.
	Force bool

	token         string
	bound         time.Duration
	recheck       sql.NullTime // the recheck time read at the start
	recheckPassed bool
	began         time.Time    // the ledger's time at the start
	quietAt       sql.NullTime // when a write in flight of the reporter before can no longer land
}

// BeginReportWrite makes the caller apply id's reporter: writes of the
// reporter before it are refused from now on. When that one had a write in
// flight, which may still land (it can be in flight for up to bound, one
// try's timeout), the apply is due a forced report again once bound has
// passed since it was sent (ReportDue lists it then). The caller should
// hold the pull request's report lease.
func (s *Store) BeginReportWrite(ctx context.Context, id int64, bound time.Duration) (*ReportWrite, error) {
	tok, err := newToken()
	if err != nil {
		return nil, fmt.Errorf("begin report of apply %d: %w", id, err)
	}
	w := &ReportWrite{ApplyID: id, token: tok, bound: bound}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var writer string
		if err := tx.QueryRowContext(ctx, `SELECT report_writer, report_write_at + INTERVAL ? MICROSECOND, report_recheck_at,
 COALESCE(report_recheck_at <= UTC_TIMESTAMP(6), 0), UTC_TIMESTAMP(6) FROM tern_applies WHERE id = ? FOR UPDATE`, micros(bound), id).
			Scan(&writer, &w.quietAt, &w.recheck, &w.recheckPassed, &w.began); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return ErrNotFound
			}
			return err
		}
		w.Force = writer != "" || w.recheck.Valid
		_, err := tx.ExecContext(ctx, `UPDATE tern_applies SET
 report_recheck_at = `+recheckAfterWrite+`,
 report_writer = ?, report_write_at = NULL WHERE id = ?`, micros(bound), tok, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("begin report of apply %d: %w", id, err)
	}
	return w, nil
}

// recheckAfterWrite is report_recheck_at once a write sent at
// report_write_at (when not NULL) is given bound (the first argument) to
// land.
const recheckAfterWrite = `IF(report_write_at IS NULL, report_recheck_at,
 GREATEST(COALESCE(report_recheck_at, report_write_at), report_write_at + INTERVAL ? MICROSECOND))`

// TakeOverRefClaim takes over an unfinished claim on the reference key of
// repo (see ClaimRef) that a reporter before w left: one made before w
// began, once that reporter's write in flight, if it had one, can no
// longer land. Such a claimer can post nothing more (its writes are
// refused since w began), so the claim need not be waited out. It returns
// nil when the key holds no such claim yet. Only keys that reports of w's
// apply alone claim may be taken over this way.
func (s *Store) TakeOverRefClaim(ctx context.Context, repo, key string, w *ReportWrite) (*RefClaim, error) {
	tok, err := newToken()
	if err != nil {
		return nil, fmt.Errorf("take over ref claim %s %s: %w", repo, key, err)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE tern_github_refs SET meta = ?, updated_at = UTC_TIMESTAMP(6)
 WHERE repository = ? AND ref_key = ? AND ref_id = 0 AND meta LIKE 'claim:%' AND updated_at <= ?
 AND (? IS NULL OR UTC_TIMESTAMP(6) >= ?)`, claimMeta(tok), repo, key, w.began, w.quietAt, w.quietAt)
	if err != nil {
		return nil, fmt.Errorf("take over ref claim %s %s: %w", repo, key, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return nil, err
	}
	return &RefClaim{Repository: repo, Key: key, Token: tok}, nil
}

// ReportWriteSending records that w is about to send a write to GitHub.
// ErrReportOvertaken says another reporter took over: do not send it.
func (s *Store) ReportWriteSending(ctx context.Context, w *ReportWrite) error {
	res, err := s.db.ExecContext(ctx, `UPDATE tern_applies SET report_write_at = UTC_TIMESTAMP(6)
 WHERE id = ? AND report_writer = ?`, w.ApplyID, w.token)
	if err != nil {
		return fmt.Errorf("report of apply %d: announce a write: %w", w.ApplyID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return nil
	}
	// Not changed: another writer, or the same microsecond as before.
	var writer string
	if err := s.db.QueryRowContext(ctx, `SELECT report_writer FROM tern_applies WHERE id = ?`, w.ApplyID).Scan(&writer); err != nil {
		return fmt.Errorf("report of apply %d: announce a write: %w", w.ApplyID, err)
	}
	if writer != w.token {
		return fmt.Errorf("report of apply %d: %w", w.ApplyID, ErrReportOvertaken)
	}
	return nil
}

// ReportWriteAnswered records that w's write in flight got GitHub's
// answer: it can no longer land later.
func (s *Store) ReportWriteAnswered(ctx context.Context, w *ReportWrite) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE tern_applies SET report_write_at = NULL
 WHERE id = ? AND report_writer = ?`, w.ApplyID, w.token); err != nil {
		return fmt.Errorf("report of apply %d: record an answer: %w", w.ApplyID, err)
	}
	return nil
}

// EndReportWrite ends w. overtaken says another reporter took over
// meanwhile: its writes may have been overwritten by w's, and the caller
// must report again. A write of w never answered makes the apply due a
// recheck; a recheck that was due when w began is done.
func (s *Store) EndReportWrite(ctx context.Context, w *ReportWrite) (overtaken bool, err error) {
	res, err := s.db.ExecContext(ctx, `UPDATE tern_applies SET
 report_recheck_at = IF(report_write_at IS NULL AND ? AND report_recheck_at <=> ?, NULL, `+recheckAfterWrite+`),
 report_writer = '', report_write_at = NULL WHERE id = ? AND report_writer = ?`,
		w.recheckPassed, w.recheck, micros(w.bound), w.ApplyID, w.token)
	if err != nil {
		return false, fmt.Errorf("end report of apply %d: %w", w.ApplyID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return false, nil
	}
	var writer string
	if err := s.db.QueryRowContext(ctx, `SELECT report_writer FROM tern_applies WHERE id = ?`, w.ApplyID).Scan(&writer); err != nil {
		return false, fmt.Errorf("end report of apply %d: %w", w.ApplyID, err)
	}
	return writer != w.token, nil
}
