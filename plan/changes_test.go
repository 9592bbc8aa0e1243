package plan

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/testdb"
)

func mustParse(t *testing.T, sql string) *Desired {
	t.Helper()
	d, err := Parse([]File{{Path: "db/schema.sql", Data: []byte(sql)}})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return d
}

// findingKeys renders findings as "severity table column/index" for
// comparison.
func findingKeys(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%s %s %s%s @%d", f.Severity, f.Table, f.Column, f.Index, f.Statement))
	}
	return out
}

const base = "CREATE TABLE p (id int NOT NULL, code varchar(20) NOT NULL, PRIMARY KEY (id), UNIQUE KEY uk_code (code)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;\n"

func TestChangeKinds(t *testing.T) {
	tests := []struct {
		name          string
		live, desired string
		ddl           []string
		kinds         []string
		findings      []string
	}{
		{
			name:     "add column",
			live:     base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, a int);",
			desired:  base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, a int, b varchar(10) NOT NULL DEFAULT '');",
			ddl:      []string{"ALTER TABLE `t` ADD COLUMN `b` varchar(10) NOT NULL DEFAULT ''"},
			kinds:    []string{KindAlter},
			findings: nil,
		},
		{
			name:     "add column in the middle keeps order",
			live:     base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, a int);",
			desired:  base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, m int, a int);",
			ddl:      []string{"ALTER TABLE `t` ADD COLUMN `m` int AFTER `id`"},
			kinds:    []string{KindAlter},
			findings: nil,
		},
		{
			name:     "add NOT NULL column without default",
			live:     base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY);",
			desired:  base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, b int NOT NULL);",
			ddl:      []string{"ALTER TABLE `t` ADD COLUMN `b` int NOT NULL"},
			kinds:    []string{KindAlter},
			findings: nil, // t holds no rows (lint_test.go has one that does)
		},
		{
			name:     "drop column",
			live:     base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, a int, b int);",
			desired:  base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, a int);",
			ddl:      []string{"ALTER TABLE `t` DROP COLUMN `b`"},
			kinds:    []string{KindAlter},
			findings: []string{"error t b @0"},
		},
		{
			name:     "widen varchar",
			live:     base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, s varchar(10));",
			desired:  base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, s varchar(20));",
			ddl:      []string{"ALTER TABLE `t` MODIFY COLUMN `s` varchar(20)"},
			kinds:    []string{KindAlter},
			findings: nil,
		},
		{
			name:     "narrow varchar",
			live:     base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, s varchar(20));",
			desired:  base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, s varchar(10));",
			ddl:      []string{"ALTER TABLE `t` MODIFY COLUMN `s` varchar(10)"},
			kinds:    []string{KindAlter},
			findings: []string{"error t s @0"},
		},
		{
			name:     "narrow int and change sign",
			live:     base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, n bigint, u int unsigned);",
			desired:  base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, n int, u int);",
			ddl:      []string{"ALTER TABLE `t` MODIFY COLUMN `n` int, MODIFY COLUMN `u` int"},
			kinds:    []string{KindAlter},
			findings: []string{"error t n @0", "error t u @0"},
		},
		{
			name:     "charset change",
			live:     base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, s varchar(10) CHARACTER SET utf8mb4);",
			desired:  base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, s varchar(10) CHARACTER SET latin1);",
			ddl:      []string{"ALTER TABLE `t` MODIFY COLUMN `s` varchar(10) CHARACTER SET latin1 COLLATE latin1_swedish_ci"},
			kinds:    []string{KindAlter},
			findings: []string{"error t s @0", "warning t s @0"}, // lossy-column-change, charset
		},
		{
			name:     "reorder columns",
			live:     base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, a int, b int);",
			desired:  base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, b int, a int);",
			ddl:      []string{"ALTER TABLE `t` MODIFY COLUMN `b` int AFTER `id`"},
			kinds:    []string{KindAlter},
			findings: nil,
		},
		{
			name:     "change default",
			live:     base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, n int NOT NULL DEFAULT 0);",
			desired:  base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, n int NOT NULL DEFAULT 5);",
			ddl:      []string{"ALTER TABLE `t` MODIFY COLUMN `n` int NOT NULL DEFAULT 5"},
			kinds:    []string{KindAlter},
			findings: nil,
		},
		{
			name:     "add and drop secondary index",
			live:     base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, a int, b int, KEY ix_a (a));",
			desired:  base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, a int, b int, KEY ix_b (b));",
			ddl:      []string{"ALTER TABLE `t` DROP KEY `ix_a`, ADD KEY `ix_b` (`b`)"},
			kinds:    []string{KindAlter},
			findings: []string{"warning t ix_a @0"},
		},
		{
			name:     "drop unique key",
			live:     base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, a int, UNIQUE KEY uk_a (a));",
			desired:  base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, a int);",
			ddl:      []string{"ALTER TABLE `t` DROP KEY `uk_a`"},
			kinds:    []string{KindAlter},
			findings: []string{"error t uk_a @0"},
		},
		{
			name:     "change primary key",
			live:     base + "CREATE TABLE t (id int NOT NULL, a int NOT NULL, PRIMARY KEY (id));",
			desired:  base + "CREATE TABLE t (id int NOT NULL, a int NOT NULL, PRIMARY KEY (id, a));",
			ddl:      []string{"ALTER TABLE `t` DROP PRIMARY KEY, ADD PRIMARY KEY (`id`, `a`)"},
			kinds:    []string{KindAlter},
			findings: []string{"error t PRIMARY @0"},
		},
		{
			name:     "add foreign key",
			live:     base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, p_id int, KEY ix_p (p_id));",
			desired:  base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, p_id int, KEY ix_p (p_id), CONSTRAINT fk_p FOREIGN KEY (p_id) REFERENCES p (id));",
			ddl:      []string{"ALTER TABLE `t` ADD CONSTRAINT `fk_p` FOREIGN KEY (`p_id`) REFERENCES `p` (`id`)"},
			kinds:    []string{KindAlter},
			findings: nil,
		},
		{
			name:     "drop foreign key",
			live:     base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, p_id int, KEY ix_p (p_id), CONSTRAINT fk_p FOREIGN KEY (p_id) REFERENCES p (id));",
			desired:  base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY, p_id int, KEY ix_p (p_id));",
			ddl:      []string{"ALTER TABLE `t` DROP FOREIGN KEY `fk_p`"},
			kinds:    []string{KindAlter},
			findings: []string{"warning t fk_p @0"},
		},
		{
			name:     "new table referencing a new table",
			live:     base,
			desired:  base + "CREATE TABLE c (id int NOT NULL PRIMARY KEY, o_id int, CONSTRAINT fk_o FOREIGN KEY (o_id) REFERENCES o (id));\nCREATE TABLE o (id int NOT NULL PRIMARY KEY);",
			ddl:      []string{"CREATE TABLE `o` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci", "CREATE TABLE `c` (\n  `id` int(11) NOT NULL,\n  `o_id` int(11) DEFAULT NULL,\n  PRIMARY KEY (`id`),\n  KEY `fk_o` (`o_id`),\n  CONSTRAINT `fk_o` FOREIGN KEY (`o_id`) REFERENCES `o` (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"},
			kinds:    []string{KindCreate, KindCreate},
			findings: nil,
		},
		{
			name:     "drop table",
			live:     base + "CREATE TABLE gone (id int NOT NULL PRIMARY KEY);",
			desired:  base,
			ddl:      []string{"DROP TABLE `gone`"},
			kinds:    []string{KindDrop},
			findings: []string{"error gone  @0"},
		},
		{
			name:     "table options and charset",
			live:     base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY) ENGINE=MyISAM COMMENT='old';",
			desired:  base + "CREATE TABLE t (id int NOT NULL PRIMARY KEY) ENGINE=InnoDB COMMENT='new' DEFAULT CHARSET=latin1;",
			ddl:      []string{"ALTER TABLE `t` ENGINE InnoDB CHARSET latin1 COLLATE latin1_swedish_ci COMMENT 'new'"},
			kinds:    []string{KindAlter},
			findings: []string{"warning t  @0", "warning t  @0"}, // charset, engine-change
		},
	}
	ctx := context.Background()
	srv := testdb.Server(t)
	update := os.Getenv("TERN_PLAN_PRINT") != ""
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live, _ := testdb.Open(t, "plan_change")
			execAll(t, live, tableSQL(mustParse(t, tt.live)))
			d := mustParse(t, tt.desired)
			p := &Planner{}
			pl, err := p.Plan(ctx, d, live, srv)
			if err != nil {
				t.Fatalf("Plan: %v", err)
			}
			got := ddl(pl.Statements)
			var kinds []string
			for _, s := range pl.Statements {
				kinds = append(kinds, s.Kind)
			}
			if update {
				t.Logf("ddl: %#v\nkinds: %#v\nfindings: %#v\n%+v", got, kinds, findingKeys(pl.Findings), pl.Findings)
			}
			if !slices.Equal(got, tt.ddl) {
				t.Errorf("DDL:\n got %q\nwant %q", got, tt.ddl)
			}
			// schemadiff's INSTANT verdicts for MySQL 8, spot-checked.
			if want, ok := map[string]bool{"add column": true, "narrow varchar": false, "drop table": false}[tt.name]; ok && pl.Statements[0].Instant != want {
				t.Errorf("instant = %v, want %v", pl.Statements[0].Instant, want)
			}
			if !slices.Equal(kinds, tt.kinds) {
				t.Errorf("kinds: got %v, want %v", kinds, tt.kinds)
			}
			if fk := findingKeys(pl.Findings); !slices.Equal(fk, tt.findings) {
				t.Errorf("findings:\n got %q\nwant %q\n%+v", fk, tt.findings, pl.Findings)
			}
			for _, f := range pl.Findings {
				if f.Table == "" || f.Message == "" || !strings.Contains(f.Message, ":") {
					t.Errorf("finding does not say what and why: %+v", f)
				}
			}
			// The DDL runs on the server, and afterwards nothing is left to do.
			execAll(t, live, got)
			again, err := p.Diff(ctx, d, live, srv)
			if err != nil {
				t.Fatalf("re-plan: %v", err)
			}
			if len(again) > 0 {
				t.Errorf("re-plan after applying has changes: %q", ddl(again))
			}
		})
	}
}
