package store

import (
	"context"
	"database/sql"
	"fmt"
)

// Error classes of applies whose GitHub App installation went away: the
// App was uninstalled or suspended, or the repository was removed from the
// installation. No retry can report to GitHub again, so they fail for good.
const (
	ClassInstallationDeleted   = "installation_deleted"
	ClassInstallationSuspended = "installation_suspended"
	ClassRepositoryRemoved     = "repository_removed"
)

// FailWaiting fails for good, with class and msg, every pending or
// failed_retryable apply of the installation (installationID != 0) or of
// the repository (repo != ""), and returns them. A running apply is left
// to end its attempt. Their failed_retryable tasks fail and their pending
// tasks are cancelled.
func (s *Store) FailWaiting(ctx context.Context, installationID int64, repo, class, msg string) ([]*Apply, error) {
	where, arg := "installation_id = ?", any(installationID)
	if installationID == 0 {
		where, arg = "repository = ?", any(repo)
	}
	var out []*Apply
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM tern_applies WHERE `+where+
			` AND state IN ('pending', 'failed_retryable') ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED`, arg)
		if err != nil {
			return err
		}
		ids, err := scanColumn[int64](rows)
		if err != nil || len(ids) == 0 {
			return err
		}
		in, args := placeholders(ids)
		if err := applyEvents(ctx, tx, ids, "tern", "apply.failed", class); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tern_applies SET state = 'failed', error_class = ?, last_error = ?,
 finished_at = UTC_TIMESTAMP(6), version = version + 1, updated_at = UTC_TIMESTAMP(6)
 WHERE state IN ('pending', 'failed_retryable') AND id IN (`+in+`)`, append([]any{class, msg}, args...)...); err != nil {
			return err
		}
		if err := moveTasks(ctx, tx, ids, []State{FailedRetryable}, Failed, "tern", class, ""); err != nil {
			return err
		}
		if err := moveTasks(ctx, tx, ids, []State{Pending}, Cancelled, "tern", class, ""); err != nil {
			return err
		}
		out, err = queryApplies(ctx, tx, "WHERE id IN ("+in+") ORDER BY id", args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fail applies of a gone installation: %w", err)
	}
	return out, nil
}
