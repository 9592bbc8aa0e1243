package plan

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/ternhq/tern/internal/testdb"
)

// costLive is the live table the cost tests change.
const costLive = "CREATE TABLE `orders` (\n" +
	"  `id` int(11) NOT NULL AUTO_INCREMENT,\n" +
	"  `customer` varchar(40) DEFAULT NULL,\n" +
	"  `note` varchar(100) DEFAULT NULL,\n" +
	"  `amount` int(11) NOT NULL DEFAULT 0,\n" +
	"  `state` enum('new','paid') NOT NULL DEFAULT 'new',\n" +
	"  PRIMARY KEY (`id`),\n" +
	"  KEY `customer` (`customer`)\n" +
	") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"

// TestCostRules checks the documented rules, table by table, for MySQL 8.0
// (before and after 8.0.29's instant ADD/DROP COLUMN anywhere) and
// MariaDB 10.11.
func TestCostRules(t *testing.T) {
	const (
		my8028 = "8.0.28"
		my8036 = "8.0.36"
		maria  = "10.11.6-MariaDB"
	)
	tests := []struct {
		version, ddl    string
		algorithm, lock string
	}{
		{my8036, "alter table orders add column c int", AlgorithmInstant, LockNone},
		{my8028, "alter table orders add column c int", AlgorithmInstant, LockNone},
		{my8028, "alter table orders add column c int after id", AlgorithmInplace, LockNone},
		{my8036, "alter table orders add column c int after id", AlgorithmInstant, LockNone},
		{my8028, "alter table orders drop column note", AlgorithmInplace, LockNone},
		{my8036, "alter table orders drop column note", AlgorithmInstant, LockNone},
		{maria, "alter table orders drop column note", AlgorithmInstant, LockNone},
		{my8036, "alter table orders add column c int generated always as (amount * 2) stored", AlgorithmCopy, LockShared},
		{my8036, "alter table orders modify column amount bigint not null default 0", AlgorithmCopy, LockShared},
		{maria, "alter table orders modify column amount bigint not null default 0", AlgorithmCopy, LockShared},
		{my8036, "alter table orders modify column amount int not null default 5", AlgorithmInstant, LockNone},
		{my8036, "alter table orders modify column amount int", AlgorithmInplace, LockNone},
		{my8036, "alter table orders modify column note varchar(200)", AlgorithmInplace, LockNone},
		{my8036, "alter table orders modify column customer varchar(60)", AlgorithmInplace, LockNone},
		{my8036, "alter table orders modify column customer varchar(100)", AlgorithmCopy, LockShared},
		{my8036, "alter table orders modify column note varchar(50)", AlgorithmCopy, LockShared},
		{my8036, "alter table orders modify column state enum('new','paid','sent') not null default 'new'", AlgorithmInstant, LockNone},
		{my8036, "alter table orders modify column state enum('paid','new') not null default 'new'", AlgorithmCopy, LockShared},
		{my8036, "alter table orders add index amount (amount)", AlgorithmInplace, LockNone},
		{my8036, "alter table orders add fulltext index ft (note)", AlgorithmInplace, LockShared},
		{my8036, "alter table orders drop key customer", AlgorithmInplace, LockNone},
		{my8036, "alter table orders rename index customer to cust", AlgorithmInstant, LockNone},
		{maria, "alter table orders rename index customer to cust", AlgorithmInplace, LockNone},
		{my8036, "alter table orders add constraint fk foreign key (amount) references other (id)", AlgorithmCopy, LockShared},
		{my8036, "alter table orders drop primary key", AlgorithmCopy, LockShared},
		{my8036, "alter table orders comment 'x'", AlgorithmInstant, LockNone},
		{my8036, "alter table orders engine InnoDB", AlgorithmInplace, LockNone},
		{my8036, "alter table orders convert to character set latin1", AlgorithmCopy, LockShared},
		// A statement costs what its dearest change costs.
		{my8036, "alter table orders add column c int, add index amount (amount), modify column amount bigint not null default 0", AlgorithmCopy, LockShared},
	}
	for _, tt := range tests {
		t.Run(tt.version+"/"+tt.ddl, func(t *testing.T) {
			c := ruleCost(parseServer(tt.version), Statement{Table: "orders", Kind: KindAlter, DDL: tt.ddl}, costLive)
			if c.Algorithm != tt.algorithm || c.Lock != tt.lock {
				t.Fatalf("cost = %s/%s (%s), want %s/%s", c.Algorithm, c.Lock, c.Reason, tt.algorithm, tt.lock)
			}
			if c.Source != SourceRules {
				t.Fatalf("source = %q, want rules", c.Source)
			}
		})
	}
}

// TestCostAsksTheServer plans changes against a live MariaDB table and
// checks that each statement's algorithm and lock are what the server
// itself accepts, with the table's estimated rows and size, and that a
// copy on a table over max_blocking_rows is a blocking finding.
func TestCostAsksTheServer(t *testing.T) {
	ctx := context.Background()
	srv := testdb.Server(t)
	live, _ := testdb.Open(t, "plan_cost")
	execAll(t, live, []string{costLive,
		"CREATE TABLE `other` (`id` int NOT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB",
		"INSERT INTO orders (customer, note) VALUES ('a', 'x'), ('b', 'y'), ('c', 'z')",
		"INSERT INTO orders (customer, note) SELECT customer, note FROM orders",
		"INSERT INTO orders (customer, note) SELECT customer, note FROM orders",
		"ANALYZE TABLE orders"})
	cases := []struct {
		name, desired   string
		algorithm, lock string
	}{
		{"add column", strings.Replace(costLive, "  PRIMARY KEY", "  `c` int DEFAULT NULL,\n  PRIMARY KEY", 1), AlgorithmInstant, LockNone},
		{"add index", strings.Replace(costLive, "  KEY `customer`", "  KEY `amount` (`amount`),\n  KEY `customer`", 1), AlgorithmInplace, LockNone},
		{"change type", strings.Replace(costLive, "`amount` int(11)", "`amount` bigint", 1), AlgorithmCopy, LockShared},
		{"add fulltext", strings.Replace(costLive, "  KEY `customer` (`customer`)", "  KEY `customer` (`customer`),\n  FULLTEXT KEY `ft` (`note`)", 1), AlgorithmInplace, LockShared},
		{"add foreign key", strings.Replace(costLive, "  KEY `customer` (`customer`)", "  KEY `customer` (`customer`),\n  CONSTRAINT `fk` FOREIGN KEY (`amount`) REFERENCES `other` (`id`)", 1), AlgorithmCopy, LockShared},
		// The clause goes before the partition options, where the grammar
		// wants it: after them the server refuses the statement outright.
		{"repartition", costLive + "\n PARTITION BY HASH (`id`)\nPARTITIONS 2", AlgorithmCopy, LockShared},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse([]File{{Path: "orders.sql", Data: []byte(tc.desired + ";")}, {Path: "other.sql", Data: []byte("CREATE TABLE `other` (`id` int NOT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB;")}})
			if err != nil {
				t.Fatal(err)
			}
			p := &Planner{}
			pl, err := p.Plan(ctx, d, live, srv)
			if err != nil {
				t.Fatal(err)
			}
			if len(pl.Statements) == 0 {
				t.Fatal("no statements")
			}
			for _, max := range []int64{5, 100} {
				pl, err := p.Plan(ctx, d, live, srv)
				if err != nil {
					t.Fatal(err)
				}
				if err := p.Cost(ctx, pl, live, srv, CostOptions{MaxBlockingRows: max}); err != nil {
					t.Fatal(err)
				}
				c := pl.Statements[len(pl.Statements)-1].Cost
				if c == nil {
					t.Fatal("no cost")
				}
				if c.Algorithm != tc.algorithm || c.Lock != tc.lock || c.Source != SourceServer {
					t.Fatalf("%s: cost = %+v, want %s/%s from the server", pl.Statements[0].DDL, c, tc.algorithm, tc.lock)
				}
				if c.RowsEstimate < 6 || c.RowsEstimate > 24 || c.BytesEstimate <= 0 {
					t.Fatalf("rows %d bytes %d, want about 12 rows and some bytes", c.RowsEstimate, c.BytesEstimate)
				}
				wantBlocking := c.Locks() && max == 5
				if c.Blocking != wantBlocking || (len(pl.Blocking()) > 0) != wantBlocking {
					t.Fatalf("max %d: blocking = %v, findings %v; want %v", max, c.Blocking, pl.Blocking(), wantBlocking)
				}
				if c.Algorithm != AlgorithmInstant && c.Duration == "" {
					t.Fatalf("no duration band for %s", c.Algorithm)
				}
			}
		})
	}
	if left := shadowsLeft(t, srv); len(left) > 0 {
		t.Fatalf("shadow schemas left behind: %v", left)
	}
}

func TestCostCreateAndDropAndOnline(t *testing.T) {
	ctx := context.Background()
	srv := testdb.Server(t)
	live, _ := testdb.Open(t, "plan_cost_cd")
	execAll(t, live, []string{costLive, "CREATE TABLE gone (id int PRIMARY KEY)"})
	d, err := Parse([]File{{Path: "a.sql", Data: []byte(strings.Replace(costLive, "`amount` int(11)", "`amount` bigint", 1) + ";\nCREATE TABLE fresh (id int PRIMARY KEY);")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, online := range []bool{false, true} {
		p := &Planner{}
		pl, err := p.Plan(ctx, d, live, srv)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Cost(ctx, pl, live, srv, CostOptions{Online: online}); err != nil {
			t.Fatal(err)
		}
		for _, s := range pl.Statements {
			c := s.Cost
			switch {
			case s.Kind != KindAlter && (c.Algorithm != AlgorithmInstant || c.Lock != LockNone):
				t.Fatalf("online=%v %s: cost %+v", online, s.DDL, c)
			case s.Kind == KindAlter && online && (c.Algorithm != AlgorithmOnline || c.Lock != LockNone || c.Blocking):
				t.Fatalf("online: %s: cost %+v", s.DDL, c)
			case s.Kind == KindAlter && !online && (c.Algorithm != AlgorithmCopy || !c.Blocking):
				// max_blocking_rows 0: any blocking statement needs --allow-blocking.
				t.Fatalf("%s: cost %+v, want a blocking copy", s.DDL, c)
			}
		}
	}
}

func TestRefusedAlgorithm(t *testing.T) {
	err := fmt.Errorf("wrapped: %w", &mysql.MySQLError{Number: 1846, Message: "ALGORITHM=INPLACE is not supported. Reason: Cannot change column type. Try ALGORITHM=COPY"})
	why, ok := RefusedAlgorithm(err)
	if !ok || why != "Cannot change column type" {
		t.Fatalf("RefusedAlgorithm = %q, %v", why, ok)
	}
	if _, ok := RefusedAlgorithm(&mysql.MySQLError{Number: 1205}); ok {
		t.Fatal("1205 is not a refused algorithm")
	}
	if _, ok := RefusedAlgorithm(errors.New("x")); ok {
		t.Fatal("a plain error is not a refused algorithm")
	}
}

func TestCostFormatting(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{Count(1234567), "1,234,567"}, {Count(999), "999"}, {Bytes(512), "512 B"}, {Bytes(1536), "1.5 KiB"},
		{Bytes(300 << 20), "300 MiB"}, {durationBand(0, 0), "~instant (empty table)"},
		{durationBand(600_000, 60_000_000), "~2 s to 20 s"}, {durationBand(10_000_000, 4_000_000_000), "~1 min to 8 min"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// TestPlanAndCostIsPlanThenCost: PlanAndCost, which loads the cost copy
// while the plan is diffed, gives what Plan followed by Cost gives, down to
// each statement's cost and the findings, and leaves no shadow schema.
func TestPlanAndCostIsPlanThenCost(t *testing.T) {
	ctx := context.Background()
	srv := testdb.Server(t)
	live, _ := testdb.Open(t, "plan_and_cost")
	const other = "CREATE TABLE `other` (`id` int NOT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB"
	execAll(t, live, []string{costLive, other, "CREATE TABLE `gone` (`id` int NOT NULL PRIMARY KEY)",
		"INSERT INTO orders (customer, note) VALUES ('a', 'x'), ('b', 'y')", "ANALYZE TABLE orders"})
	desired := strings.Replace(costLive, "`amount` int(11)", "`amount` bigint", 1)
	desired = strings.Replace(desired, "  KEY `customer` (`customer`)", "  KEY `customer` (`customer`),\n  KEY `fresh_id` (`state`),\n  CONSTRAINT `to_fresh` FOREIGN KEY (`id`) REFERENCES `fresh` (`id`)", 1)
	d, err := Parse([]File{{Path: "s.sql", Data: []byte(desired + ";\n" + other + " COMMENT 'c';\nCREATE TABLE `fresh` (`id` int NOT NULL PRIMARY KEY);\n")}})
	if err != nil {
		t.Fatal(err)
	}
	p := &Planner{}
	opts := CostOptions{MaxBlockingRows: 1}
	want, err := p.Plan(ctx, d, live, srv)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Cost(ctx, want, live, srv, opts); err != nil {
		t.Fatal(err)
	}
	got, err := p.PlanAndCost(ctx, d, live, srv, opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Statements) != len(want.Statements) || len(want.Statements) < 4 {
		t.Fatalf("%d statements, Plan+Cost %d (want at least 4)", len(got.Statements), len(want.Statements))
	}
	for i, s := range got.Statements {
		w := want.Statements[i]
		if s.DDL != w.DDL || s.Cost == nil || *s.Cost != *w.Cost {
			t.Errorf("statement %d: %s %+v\nPlan+Cost: %s %+v", i, s.DDL, s.Cost, w.DDL, w.Cost)
		}
		if s.Kind == KindAlter && s.Cost.Source != SourceServer {
			t.Errorf("%s: source %s, want the server", s.DDL, s.Cost.Source)
		}
	}
	if fmt.Sprint(got.Findings) != fmt.Sprint(want.Findings) {
		t.Errorf("findings %v\nPlan+Cost: %v", got.Findings, want.Findings)
	}
	if left := shadowsLeft(t, srv); len(left) > 0 {
		t.Fatalf("shadow schemas left behind: %v", left)
	}
}
