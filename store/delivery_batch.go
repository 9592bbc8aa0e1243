package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"
)

// RecordDeliveries stores a batch of webhook deliveries in one transaction
// (one multi-row INSERT, so one durable commit for all of them) and
// reports, for each delivery in ds, whether it was new. A delivery whose id
// was already recorded, by an earlier call, by another process at the same
// moment, or earlier in ds itself, is reported false and stored once. It is
// all or nothing: on error nothing of the batch is stored (a caller may
// then record the deliveries one by one to isolate a bad row).
func (s *Store) RecordDeliveries(ctx context.Context, ds []Delivery) ([]bool, error) {
	fresh := make([]bool, len(ds))
	// The first occurrence of each id is a candidate; rows go in in id
	// order, so concurrent batches lock shared ids in the same order.
	first := map[string]int{}
	var ids []string
	for i, d := range ds {
		if _, dup := first[d.ID]; dup {
			continue
		}
		first[d.ID] = i
		ids = append(ids, d.ID)
	}
	if len(ids) == 0 {
		return fresh, nil
	}
	sort.Strings(ids)
	token, err := newToken()
	if err != nil {
		return nil, fmt.Errorf("record deliveries: %w", err)
	}
	// Rows this call inserted carry the marker until the end of the
	// transaction; rows already there keep theirs.
	marker := "recording:" + token
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var q strings.Builder
		q.WriteString(`INSERT INTO tern_deliveries (id, event, payload, state, attempts, available_at,
 lease_owner, last_error, received_at, updated_at) VALUES `)
		args := make([]any, 0, 5*len(ids))
		for i, id := range ids {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, 0, UTC_TIMESTAMP(6), ?, '', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))")
			d := ds[first[id]]
			payload := d.Payload
			if payload == nil {
				payload = []byte{}
			}
			args = append(args, id, d.Event, payload, deliveryPending, marker)
		}
		// A duplicate id changes nothing (and waits for a concurrent
		// inserter of it to commit); any other error fails the batch.
		q.WriteString(" ON DUPLICATE KEY UPDATE id = id")
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
		in := strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")
		sel := make([]any, 0, len(ids)+1)
		sel = append(sel, marker)
		for _, id := range ids {
			sel = append(sel, id)
		}
		rows, err := tx.QueryContext(ctx, `SELECT id FROM tern_deliveries WHERE lease_owner = ? AND id IN (`+in+`)`, sel...)
		if err != nil {
			return err
		}
		var inserted []any
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			fresh[first[id]] = true
			inserted = append(inserted, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(inserted) == 0 {
			return err
		}
		in = strings.TrimSuffix(strings.Repeat("?, ", len(inserted)), ", ")
		_, err = tx.ExecContext(ctx, `UPDATE tern_deliveries SET lease_owner = '' WHERE id IN (`+in+`)`, inserted...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record %d deliveries: %w", len(ids), err)
	}
	return fresh, nil
}
