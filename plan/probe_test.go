package plan

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/ternhq/tern/internal/ddlclause"
	"github.com/ternhq/tern/internal/testdb"
)

// TestProbeUnrunMatchesRun: on MariaDB the last ALTER of a table is asked
// without being run (probeUnrun). For each kind of change, that answer is
// the one the server gives when the probe runs the statement, and the
// unrun probe leaves the table as it was.
func TestProbeUnrunMatchesRun(t *testing.T) {
	ctx := context.Background()
	srv := testdb.Server(t)
	if v := serverVersion(t, srv); !parseServer(v).mariadb {
		t.Fatalf("this test needs MariaDB (probeUnrun is MariaDB's), the server is %s", v)
	}
	const fulltext = "CREATE TABLE `docs` (`id` int NOT NULL, `body` text, PRIMARY KEY (`id`), FULLTEXT KEY `ft` (`body`)) ENGINE=InnoDB"
	const parts = "CREATE TABLE `parts` (`id` int NOT NULL, `v` int, PRIMARY KEY (`id`)) ENGINE=InnoDB PARTITION BY HASH (`id`) PARTITIONS 2"
	const other = "CREATE TABLE `other` (`id` int NOT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB"
	// keeps: running the statement leaves SHOW CREATE TABLE as it was.
	cases := []struct {
		table, ddl string
		keeps      bool
	}{
		{"orders", "ALTER TABLE `orders` ADD COLUMN `c` int", false},
		{"orders", "ALTER TABLE `orders` ADD COLUMN `c` int FIRST", false},
		{"orders", "ALTER TABLE `orders` DROP COLUMN `note`", false},
		{"orders", "ALTER TABLE `orders` ADD KEY `amount` (`amount`)", false},
		{"orders", "ALTER TABLE `orders` ADD UNIQUE KEY `u` (`customer`, `amount`)", false},
		{"orders", "ALTER TABLE `orders` DROP KEY `customer`", false},
		{"orders", "ALTER TABLE `orders` RENAME INDEX `customer` TO `cust`", false},
		{"orders", "ALTER TABLE `orders` MODIFY COLUMN `amount` bigint NOT NULL DEFAULT 0", false},
		{"orders", "ALTER TABLE `orders` MODIFY COLUMN `customer` varchar(60) DEFAULT NULL", false},
		{"orders", "ALTER TABLE `orders` MODIFY COLUMN `note` varchar(50) DEFAULT NULL", false},
		{"orders", "ALTER TABLE `orders` MODIFY COLUMN `state` enum('new','paid','sent') NOT NULL DEFAULT 'new'", false},
		{"orders", "ALTER TABLE `orders` MODIFY COLUMN `state` enum('paid','new') NOT NULL DEFAULT 'new'", false},
		{"orders", "ALTER TABLE `orders` ALTER COLUMN `amount` SET DEFAULT 5", false},
		{"orders", "ALTER TABLE `orders` MODIFY COLUMN `customer` varchar(40) NOT NULL", false},
		{"orders", "ALTER TABLE `orders` ADD FULLTEXT KEY `ftn` (`note`)", false},
		{"orders", "ALTER TABLE `orders` ADD CONSTRAINT `fk` FOREIGN KEY (`amount`) REFERENCES `other` (`id`)", false},
		{"orders", "ALTER TABLE `orders` DROP PRIMARY KEY, ADD PRIMARY KEY (`id`, `amount`)", false},
		{"orders", "ALTER TABLE `orders` ADD COLUMN `g` int GENERATED ALWAYS AS (`amount` * 2) STORED", false},
		{"orders", "ALTER TABLE `orders` ADD COLUMN `v` int GENERATED ALWAYS AS (`amount` * 2) VIRTUAL", false},
		{"orders", "ALTER TABLE `orders` COMMENT 'x'", false},
		{"orders", "ALTER TABLE `orders` ENGINE InnoDB", true},
		{"orders", "ALTER TABLE `orders` ROW_FORMAT=COMPACT", false},
		{"orders", "ALTER TABLE `orders` CONVERT TO CHARACTER SET latin1", false},
		{"orders", "ALTER TABLE `orders` AUTO_INCREMENT = 100", true},
		{"orders", "ALTER TABLE `orders` \nPARTITION BY HASH (`id`) PARTITIONS 4", false},
		{"orders", "ALTER TABLE `orders` ADD COLUMN `x` int\nPARTITION BY HASH (`id`) PARTITIONS 2", false},
		{"docs", "ALTER TABLE `docs` ADD COLUMN `c` int", false},
		{"docs", "ALTER TABLE `docs` DROP KEY `ft`", false},
		{"parts", "ALTER TABLE `parts` REMOVE PARTITIONING", false},
		{"parts", "ALTER TABLE `parts` ADD COLUMN `c` int", false},
		{"parts", "ALTER TABLE `parts` ADD KEY `v` (`v`)", false},
	}
	for i, tc := range cases {
		t.Run(tc.ddl, func(t *testing.T) {
			live, name := testdb.Open(t, fmt.Sprintf("plan_probe_%d", i))
			execAll(t, live, []string{costLive, fulltext, parts, other})
			a := &asker{p: &Planner{}, shadow: srv, schema: name, mariadb: true}
			conn, _, closeConn, err := a.session(ctx, "SET SESSION foreign_key_checks = 1")
			if err != nil {
				t.Fatal(err)
			}
			defer closeConn()
			holder, _, closeHolder, err := a.session(ctx, "START TRANSACTION")
			if err != nil {
				t.Fatal(err)
			}
			defer closeHolder()
			before := showCreate(t, live, tc.table)
			s := Statement{Table: tc.table, Kind: KindAlter, DDL: tc.ddl}
			unrun, err := a.probeUnrun(ctx, conn, holder, s)
			if err != nil {
				t.Fatal(err)
			}
			if every := everyClause(ctx, t, conn, holder, s); unrun == nil || *unrun != every {
				t.Fatalf("unrun %+v, trying every clause in turn %+v", unrun, every)
			}
			if after := showCreate(t, live, tc.table); after != before {
				t.Fatalf("the unrun probe changed the table:\n%s\nwas\n%s", after, before)
			}
			run, err := a.probe(ctx, conn, s, false)
			if err != nil {
				t.Fatal(err)
			}
			if unrun == nil || run == nil || *unrun != *run {
				t.Fatalf("unrun %+v, run %+v", unrun, run)
			}
			if showCreate(t, live, tc.table) == before && !tc.keeps {
				t.Fatalf("the run probe did not change the table")
			}
			t.Logf("%s/%s (%s)", run.Algorithm, run.Lock, run.Reason)
		})
	}
}

// everyClause is probeUnrun without skipping: each clause of probes in
// turn, until the server accepts one.
func everyClause(ctx context.Context, t *testing.T, conn, holder *sql.Conn, s Statement) Cost {
	t.Helper()
	var reason string
	for _, pr := range probes {
		clause := ddlclause.Clause(pr.algorithm, pr.lock)
		if pr.algorithm == AlgorithmInstant {
			clause += ", LOCK=NONE"
		}
		if _, err := holder.ExecContext(ctx, "SELECT 1 FROM "+quoteIdent(s.Table)+" LIMIT 0"); err != nil {
			t.Fatal(err)
		}
		_, err := conn.ExecContext(ctx, "SET STATEMENT lock_wait_timeout = 0 FOR "+ddlclause.Insert(s.DDL, clause))
		if _, rerr := holder.ExecContext(ctx, "ROLLBACK AND CHAIN"); rerr != nil {
			t.Fatal(rerr)
		}
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == errLockWaitTimeout {
			c := Cost{Algorithm: pr.algorithm, Lock: pr.lock, Source: SourceServer, Reason: reason}
			if pr.algorithm == AlgorithmInstant {
				c.Lock = LockNone
			}
			return c
		}
		why, ok := ddlclause.Refused(err)
		if !ok {
			t.Fatalf("%s: %v", clause, err)
		}
		if reason == "" {
			reason = why
		}
	}
	t.Fatal("no clause accepted")
	return Cost{}
}

func serverVersion(t *testing.T, db *sql.DB) string {
	t.Helper()
	var v string
	if err := db.QueryRow("SELECT VERSION()").Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func showCreate(t *testing.T, db *sql.DB, table string) string {
	t.Helper()
	var name, def string
	if err := db.QueryRow("SHOW CREATE TABLE "+quoteIdent(table)).Scan(&name, &def); err != nil {
		t.Fatal(err)
	}
	return def
}

func TestReferencedNames(t *testing.T) {
	cases := []struct {
		ddl  string
		want []string
	}{
		{"CREATE TABLE `a` (`id` int)", nil},
		{"CONSTRAINT `f` FOREIGN KEY (`p`) REFERENCES `parent` (`id`)", []string{"parent"}},
		{"FOREIGN KEY (`p`) references\n  `Parent` (`id`), FOREIGN KEY (`q`) ReFeReNcEs `other`.`t` (`id`)", []string{"Parent", "other"}},
		{"FOREIGN KEY (`p`) REFERENCES `we``ird` (`id`)", []string{"we`ird"}},
		{"`references_count` int, `x` int COMMENT 'no references here'", nil},
		{"FOREIGN KEY (`p`) REFERENCES`tight` (`id`)", nil},
		{"FOREIGN KEY (`p`) REFERENCES `unclosed", nil},
		{"REFERENCES", nil},
	}
	for _, tc := range cases {
		if got := referencedNames(tc.ddl); !slices.Equal(got, tc.want) {
			t.Errorf("referencedNames(%q) = %q, want %q", tc.ddl, got, tc.want)
		}
	}
}
