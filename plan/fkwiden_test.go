package plan

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/testdb"
)

// TestWidenForeignKeyBothEnds: a parent's key and its children's columns
// widened together plan as drop the constraint, alter both, add it back,
// flagged in the lint; applying it gives the desired schema.
func TestWidenForeignKeyBothEnds(t *testing.T) {
	const live = `CREATE TABLE p (id int NOT NULL PRIMARY KEY, name varchar(10));
CREATE TABLE c (id int NOT NULL PRIMARY KEY, p_id int NOT NULL, KEY k_p (p_id), CONSTRAINT fk_p FOREIGN KEY (p_id) REFERENCES p (id) ON DELETE CASCADE);
CREATE TABLE g (id int NOT NULL PRIMARY KEY, p_id int, CONSTRAINT fk_g FOREIGN KEY (p_id) REFERENCES p (id));`
	desired := strings.NewReplacer("id int NOT NULL PRIMARY KEY, name", "id bigint NOT NULL PRIMARY KEY, name",
		"p_id int NOT NULL", "p_id bigint NOT NULL", "p_id int,", "p_id bigint,").Replace(live)
	ctx := context.Background()
	srv := testdb.Server(t)
	db, _ := testdb.Open(t, "plan_fkw")
	execAll(t, db, tableSQL(mustParse(t, live)))
	execAll(t, db, []string{"INSERT INTO p VALUES (1, 'a')", "INSERT INTO c VALUES (1, 1)"})
	d := mustParse(t, desired)
	for _, full := range []bool{false, true} {
		pl, err := (&Planner{FullShadow: full}).Plan(ctx, d, db, srv)
		if err != nil {
			t.Fatalf("full=%v: plan: %v", full, err)
		}
		got := ddl(pl.Statements)
		want := []string{
			"ALTER TABLE `c` DROP FOREIGN KEY `fk_p`",
			"ALTER TABLE `g` DROP FOREIGN KEY `fk_g`",
			"ALTER TABLE `c` MODIFY COLUMN `p_id` bigint NOT NULL",
			"ALTER TABLE `g` MODIFY COLUMN `p_id` bigint",
			"ALTER TABLE `p` MODIFY COLUMN `id` bigint NOT NULL",
			"ALTER TABLE `c` ADD CONSTRAINT `fk_p` FOREIGN KEY (`p_id`) REFERENCES `p` (`id`) ON DELETE CASCADE",
			"ALTER TABLE `g` ADD CONSTRAINT `fk_g` FOREIGN KEY (`p_id`) REFERENCES `p` (`id`)",
		}
		if !slices.Equal(got, want) {
			t.Errorf("full=%v: DDL:\n got %q\nwant %q", full, got, want)
		}
		var flagged []string
		for _, f := range pl.Findings {
			if strings.Contains(f.Message, "re-added") {
				flagged = append(flagged, f.Table)
			}
		}
		if !slices.Equal(flagged, []string{"c", "g"}) {
			t.Errorf("full=%v: lint flags %v, want c and g: %+v", full, flagged, pl.Findings)
		}
	}
	pl, err := (&Planner{}).Plan(ctx, d, db, srv)
	if err != nil {
		t.Fatal(err)
	}
	execAll(t, db, ddl(pl.Statements))
	want, _ := testdb.Open(t, "plan_fkww")
	execAll(t, want, tableSQL(d))
	if got, w := showCreateAll(t, db), showCreateAll(t, want); !mapsEqual(got, w) {
		t.Errorf("after the plan the schema is not the desired one:\n got %q\nwant %q", got, w)
	}
	again, err := (&Planner{}).Diff(ctx, d, db, srv)
	if err != nil || len(again) > 0 {
		t.Errorf("re-plan: %q, %v", ddl(again), err)
	}
}
