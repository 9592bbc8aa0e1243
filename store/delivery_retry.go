package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// RetryDelivery hands a claimed delivery whose processing failed back to
// the queue: it stays pending, records errMsg, and may be claimed again
// once retryIn has passed on the database's clock. ClaimDeliveries counts
// the attempts. A delivery already finished is left alone; one that does
// not exist gives ErrNotFound.
func (s *Store) RetryDelivery(ctx context.Context, id, errMsg string, retryIn time.Duration) error {
	if retryIn < 0 {
		retryIn = 0
	}
	res, err := s.db.ExecContext(ctx, `UPDATE tern_deliveries SET last_error = ?, lease_owner = '',
 available_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND, updated_at = UTC_TIMESTAMP(6)
 WHERE id = ? AND state = ?`, errMsg, micros(retryIn), id, deliveryPending)
	if err != nil {
		return fmt.Errorf("retry delivery %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		var one int
		err := s.db.QueryRowContext(ctx, `SELECT 1 FROM tern_deliveries WHERE id = ?`, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("retry delivery %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("retry delivery %s: %w", id, err)
		}
	}
	return nil
}
