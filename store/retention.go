package store

import (
	"context"
	"fmt"
	"time"
)

// Retention is how long the ledger keeps rows nothing needs any more. A
// zero duration keeps that kind forever.
type Retention struct {
	// Deliveries: processed (done or failed) webhook deliveries, by arrival.
	Deliveries time.Duration
	// SupersededPlans: plans a newer plan of the same PR and target
	// replaced and that no apply references, by creation.
	SupersededPlans time.Duration
	// Events: the audit events of applies that ended (completed, failed,
	// cancelled) and were reported, by the apply's end.
	Events time.Duration
	// Batch is the rows removed per statement. Default 500.
	Batch int
	// MaxBatches bounds the statements per kind in one Prune, so a pass
	// stays short; the rest waits for the next pass. Default 10.
	MaxBatches int
}

// Pruned counts the rows Prune removed, or would remove on a dry run.
type Pruned struct {
	Deliveries, Plans, Events int
}

// pruneKind is one kind of row Prune removes: the candidate ids older
// than a cutoff (whose statement takes the cutoff, then a LIMIT), and
// the table they are deleted from.
type pruneKind struct {
	keep  time.Duration
	table string
	// from is the FROM and WHERE of the candidates, with one ? for the
	// cutoff; id is the candidates' id column.
	from, id string
	count    *int
}

// Prune removes what r no longer keeps, in batches of r.Batch rows, at
// most r.MaxBatches per kind; with dryRun it only counts (every candidate,
// unbatched). Nothing a pending delivery, an open PR's latest plan, an
// apply (any state) or an apply still to be reported needs is a candidate.
func (s *Store) Prune(ctx context.Context, r Retention, dryRun bool) (Pruned, error) {
	if r.Batch <= 0 {
		r.Batch = 500
	}
	if r.MaxBatches <= 0 {
		r.MaxBatches = 10
	}
	var out Pruned
	kinds := []pruneKind{
		{keep: r.Deliveries, table: "tern_deliveries", id: "d.id", count: &out.Deliveries,
			from: `tern_deliveries d WHERE d.state IN ('done', 'failed') AND d.received_at < ?`},
		{keep: r.SupersededPlans, table: "tern_plans", id: "p.id", count: &out.Plans,
			from: `tern_plans p WHERE p.created_at < ?
 AND EXISTS (SELECT 1 FROM tern_plans n WHERE n.repository = p.repository AND n.pr = p.pr
   AND n.database_name = p.database_name AND n.environment = p.environment AND n.id > p.id)
 AND NOT EXISTS (SELECT 1 FROM tern_applies a WHERE a.plan_id = p.id)`},
		{keep: r.Events, table: "tern_events", id: "e.id", count: &out.Events,
			from: `tern_events e JOIN tern_applies a ON a.id = e.apply_id
 WHERE a.state IN ('completed', 'failed', 'cancelled') AND a.reported_version = a.version AND a.finished_at < ?`},
	}
	for _, k := range kinds {
		if k.keep <= 0 {
			continue
		}
		cutoff := time.Now().UTC().Add(-k.keep)
		if dryRun {
			if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+k.from, cutoff).Scan(k.count); err != nil {
				return out, fmt.Errorf("prune %s (dry run): %w", k.table, err)
			}
			continue
		}
		for range r.MaxBatches {
			n, err := s.pruneBatch(ctx, k, cutoff, r.Batch)
			*k.count += n
			if err != nil {
				return out, fmt.Errorf("prune %s: %w", k.table, err)
			}
			if n < r.Batch {
				break
			}
		}
	}
	return out, nil
}

// pruneBatch deletes up to batch candidates of k. The candidates are read
// first, as MySQL and MariaDB refuse a LIMIT in an IN subquery; a row that
// stopped being a candidate in between (a delivery cannot, a plan or an
// apply's events can only stay one) is safe to delete all the same.
func (s *Store) pruneBatch(ctx context.Context, k pruneKind, cutoff time.Time, batch int) (int, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+k.id+" FROM "+k.from+" ORDER BY "+k.id+" LIMIT ?", cutoff, batch)
	if err != nil {
		return 0, err
	}
	ids, err := scanColumn[any](rows)
	if err != nil || len(ids) == 0 {
		return 0, err
	}
	in, args := placeholders(ids)
	res, err := s.db.ExecContext(ctx, "DELETE FROM "+k.table+" WHERE id IN ("+in+")", args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
