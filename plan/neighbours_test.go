package plan

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ternhq/tern/internal/testdb"
)

// countRecorder keeps the integer attributes of the planner's "planned"
// log lines.
type countRecorder struct {
	mu sync.Mutex
	n  map[string]int64
}

func (r *countRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *countRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *countRecorder) WithGroup(string) slog.Handler            { return r }
func (r *countRecorder) Handle(_ context.Context, rec slog.Record) error {
	if rec.Message != "planned" {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n = map[string]int64{}
	rec.Attrs(func(a slog.Attr) bool {
		if a.Value.Kind() == slog.KindInt64 {
			r.n[a.Key] = a.Value.Int64()
		}
		return true
	})
	return nil
}

// TestNeighboursOnlyForKeyChanges: a changed table's foreign-key
// neighbours go through the shadow (so that the server checks the
// reference) when the change may touch a reference: a key column, a key,
// the foreign key itself. A change elsewhere in the table leaves them out,
// with the same plan as the full shadow's.
func TestNeighboursOnlyForKeyChanges(t *testing.T) {
	ctx := context.Background()
	srv := testdb.Server(t)
	const (
		parent = "CREATE TABLE `parent` (\n  `id` int(11) NOT NULL,\n  `name` varchar(20) DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"
		child  = "CREATE TABLE `child` (\n  `id` int(11) NOT NULL,\n  `parent_id` int(11) DEFAULT NULL,\n  `other_id` int(11) DEFAULT NULL,\n  `note` varchar(20) DEFAULT NULL,\n" +
			"  PRIMARY KEY (`id`),\n  KEY `parent_id` (`parent_id`),\n  KEY `note` (`note`),\n  CONSTRAINT `child_parent` FOREIGN KEY (`parent_id`) REFERENCES `parent` (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"
		grandchild = "CREATE TABLE `grandchild` (\n  `id` int(11) NOT NULL,\n  `child_id` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  KEY `child_id` (`child_id`),\n" +
			"  CONSTRAINT `gc_child` FOREIGN KEY (`child_id`) REFERENCES `child` (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"
	)
	cases := []struct {
		name          string
		parent, child string
		shadow        int64
	}{
		{"add an unrelated column", parent, strings.Replace(child, "  PRIMARY KEY", "  `extra` int DEFAULT NULL,\n  PRIMARY KEY", 1), 1},
		{"add an unrelated index", parent, strings.Replace(child, "  KEY `note`", "  KEY `other_id` (`other_id`),\n  KEY `note`", 1), 1},
		{"drop an unrelated index", parent, strings.Replace(child, "  KEY `note` (`note`),\n", "", 1), 1},
		{"change an unrelated column", parent, strings.Replace(child, "`note` varchar(20)", "`note` varchar(40)", 1), 1},
		{"change the foreign key column", parent, strings.Replace(child, "`parent_id` int(11) DEFAULT NULL", "`parent_id` int(11) NOT NULL", 1), 3},
		{"drop the foreign key's index", parent, strings.Replace(child, "  KEY `parent_id` (`parent_id`),\n", "  KEY `parent_id` (`parent_id`, `note`),\n", 1), 3},
		{"add a foreign key", parent, strings.Replace(child, "  CONSTRAINT `child_parent`", "  CONSTRAINT `child_other` FOREIGN KEY (`other_id`) REFERENCES `parent` (`id`),\n  CONSTRAINT `child_parent`", 1), 3},
		{"change a referenced column", strings.Replace(parent, "`id` int(11) NOT NULL", "`id` int(11) NOT NULL COMMENT 'x'", 1), child, 2},
		{"change the parent elsewhere", strings.Replace(parent, "`name` varchar(20)", "`name` varchar(30)", 1), child, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			live, _ := testdb.Open(t, "plan_neighbours")
			execAll(t, live, []string{parent, child, grandchild})
			d, err := Parse([]File{{Path: "s.sql", Data: []byte(tc.parent + ";\n" + tc.child + ";\n" + grandchild + ";\n")}})
			if err != nil {
				t.Fatal(err)
			}
			rec := &countRecorder{}
			got, err := (&Planner{Logger: slog.New(rec)}).Plan(ctx, d, live, srv)
			if err != nil {
				t.Fatal(err)
			}
			if n := rec.n["shadow_tables"]; n != tc.shadow {
				t.Errorf("%d tables through the shadow, want %d", n, tc.shadow)
			}
			full, err := (&Planner{FullShadow: true}).Plan(ctx, d, live, srv)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Statements) != 1 || len(full.Statements) != 1 || got.Statements[0].DDL != full.Statements[0].DDL {
				t.Fatalf("plan %v, full shadow's %v", got.Statements, full.Statements)
			}
		})
	}
}
