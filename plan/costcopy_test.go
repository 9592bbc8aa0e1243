package plan

import (
	"context"
	"database/sql"
	"slices"
	"testing"

	"github.com/ternhq/tern/internal/testdb"
)

// costCopyLive is a live schema of a parent and its child, a table on its
// own, and a table only a new table will reference.
var costCopyLive = []string{
	"CREATE TABLE `parent` (`id` int NOT NULL, `n` int NOT NULL DEFAULT 0, PRIMARY KEY (`id`)) ENGINE=InnoDB",
	"CREATE TABLE `child` (`id` int NOT NULL, `parent_id` int NOT NULL, `note` varchar(20) NOT NULL DEFAULT '', PRIMARY KEY (`id`), KEY `parent_id` (`parent_id`), CONSTRAINT `child_parent` FOREIGN KEY (`parent_id`) REFERENCES `parent` (`id`)) ENGINE=InnoDB",
	"CREATE TABLE `alone` (`id` int NOT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB",
	"CREATE TABLE `target` (`id` int NOT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB",
}

// costCopyDesired alters parent, child and alone, and adds a table whose
// foreign key references target.
var costCopyDesired = []File{
	{Path: "parent.sql", Data: []byte("CREATE TABLE `parent` (`id` int NOT NULL, `n` bigint NOT NULL DEFAULT 0, PRIMARY KEY (`id`)) ENGINE=InnoDB;")},
	{Path: "child.sql", Data: []byte("CREATE TABLE `child` (`id` int NOT NULL, `parent_id` int NOT NULL, `note` varchar(20) NOT NULL DEFAULT '', PRIMARY KEY (`id`), KEY `parent_id` (`parent_id`), KEY `note` (`note`), CONSTRAINT `child_parent` FOREIGN KEY (`parent_id`) REFERENCES `parent` (`id`)) ENGINE=InnoDB;")},
	{Path: "alone.sql", Data: []byte("CREATE TABLE `alone` (`id` int NOT NULL, `c` int DEFAULT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB;")},
	{Path: "target.sql", Data: []byte("CREATE TABLE `target` (`id` int NOT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB;")},
	{Path: "fresh.sql", Data: []byte("CREATE TABLE `fresh` (`id` int NOT NULL, `target_id` int NOT NULL, PRIMARY KEY (`id`), KEY `target_id` (`target_id`), CONSTRAINT `fresh_target` FOREIGN KEY (`target_id`) REFERENCES `target` (`id`)) ENGINE=InnoDB;")},
}

// planCostCopy loads costCopyLive into a fresh database named db and
// plans costCopyDesired against it.
func planCostCopy(t *testing.T, db string) (p *Planner, pl *Plan, live, srv *sql.DB) {
	t.Helper()
	srv = testdb.Server(t)
	live, _ = testdb.Open(t, db)
	execAll(t, live, costCopyLive)
	d, err := Parse(costCopyDesired)
	if err != nil {
		t.Fatal(err)
	}
	p = &Planner{}
	if pl, err = p.Plan(context.Background(), d, live, srv); err != nil {
		t.Fatal(err)
	}
	return p, pl, live, srv
}

// wantServerCosts fails t unless every ALTER of pl has the server's cost.
func wantServerCosts(t *testing.T, pl *Plan) {
	t.Helper()
	for _, s := range pl.Statements {
		if s.Kind == KindAlter && (s.Cost == nil || s.Cost.Source != SourceServer) {
			t.Errorf("%s: cost %+v, want the server's", s.DDL, s.Cost)
		}
	}
}

// TestCostCopyCopiesOnlyWhatIsAskedAndDropsAsItGoes: the cost copy holds
// the tables the ALTERs alter or reference, not the parents of new tables
// (a CREATE is not asked about); each table is dropped once it and every
// table joined to it by a foreign key has been asked about, so that
// nothing is left for the schema's own drop; and the costs are the
// server's.
func TestCostCopyCopiesOnlyWhatIsAskedAndDropsAsItGoes(t *testing.T) {
	ctx := context.Background()
	p, pl, live, srv := planCostCopy(t, "plan_cost_copy")
	var alters []string
	for _, s := range pl.Statements {
		if s.Kind == KindAlter {
			alters = append(alters, s.Table)
		}
	}
	slices.Sort(alters)
	if want := []string{"alone", "child", "parent"}; !slices.Equal(alters, want) {
		t.Fatalf("ALTERs of %v, want %v:\n%v", alters, want, pl.Statements)
	}
	cc, err := p.newCostCopy(ctx, srv)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := cc.drop(); err != nil {
			t.Error(err)
		}
		if left := shadowsLeft(t, srv); len(left) > 0 {
			t.Errorf("shadow schemas left behind: %v", left)
		}
	}()
	if err := p.cost(ctx, pl, live, srv, CostOptions{}, cc); err != nil {
		t.Fatal(err)
	}
	wantServerCosts(t, pl)
	for _, name := range []string{"parent", "child", "alone"} {
		if !cc.has(name) {
			t.Errorf("the copy never held %s", name)
		}
	}
	if cc.has("target") {
		t.Error("the copy loaded target, which only a new table references")
	}
	cc.settle()
	if left := queryStrings(t, srv, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", cc.name); len(left) > 0 {
		t.Errorf("tables left in the copy once every question was asked: %v", left)
	}
}

// TestCostCopyFailedLoadAsksAfresh: when the copy PlanAndCost preloaded
// failed (here a table the server refuses under a planned table's name),
// the questions are asked again in a fresh copy, which gets the server's
// answers, and both copies are dropped.
func TestCostCopyFailedLoadAsksAfresh(t *testing.T) {
	ctx := context.Background()
	p, pl, live, srv := planCostCopy(t, "plan_cost_copy_fail")
	cc, err := p.newCostCopy(ctx, srv)
	if err != nil {
		t.Fatal(err)
	}
	cc.load([]Table{{Name: "alone", File: "live", SQL: "CREATE TABLE `alone` (`id` int NOT NULL, KEY (`nope`)) ENGINE=InnoDB"}})
	if err := p.cost(ctx, pl, live, srv, CostOptions{}, cc); err != nil {
		t.Fatal(err)
	}
	wantServerCosts(t, pl)
	if err := cc.drop(); err != nil {
		t.Fatal(err)
	}
	if left := shadowsLeft(t, srv); len(left) > 0 {
		t.Fatalf("shadow schemas left behind: %v", left)
	}
}
