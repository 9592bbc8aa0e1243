package store

import (
	"context"
	"fmt"
)

// KnownDeliveries returns which of ids (X-GitHub-Delivery values) the
// ledger has recorded, whatever became of them.
func (s *Store) KnownDeliveries(ctx context.Context, ids []string) (map[string]bool, error) {
	known := map[string]bool{}
	for len(ids) > 0 {
		batch := ids[:min(len(ids), 500)]
		ids = ids[len(batch):]
		in, args := placeholders(batch)
		rows, err := s.db.QueryContext(ctx, "SELECT id FROM tern_deliveries WHERE id IN ("+in+")", args...)
		if err != nil {
			return nil, fmt.Errorf("known deliveries: %w", err)
		}
		got, err := scanColumn[string](rows)
		if err != nil {
			return nil, fmt.Errorf("known deliveries: %w", err)
		}
		for _, id := range got {
			known[id] = true
		}
	}
	return known, nil
}
