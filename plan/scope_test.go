package plan

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/testdb"
)

// TestDiffScope: the schemas a plan diffs hold the changed and dropped
// tables, their foreign-key children and every table those reference,
// transitively, and nothing else; the plan is the one every table
// through the shadow gives.
func TestDiffScope(t *testing.T) {
	ctx := context.Background()
	srv := testdb.Server(t)
	db, _ := testdb.Open(t, "plan_scope")
	live := []string{
		"CREATE TABLE grand (id int NOT NULL, PRIMARY KEY (id))",
		"CREATE TABLE par (id int NOT NULL, g int, FOREIGN KEY (g) REFERENCES grand (id), PRIMARY KEY (id))",
		"CREATE TABLE chg (id int NOT NULL, p int, FOREIGN KEY (p) REFERENCES par (id), PRIMARY KEY (id))",
		"CREATE TABLE kidpar (id int NOT NULL, PRIMARY KEY (id))",
		"CREATE TABLE kid (id int NOT NULL, c int, k int, FOREIGN KEY (c) REFERENCES chg (id), FOREIGN KEY (k) REFERENCES kidpar (id), PRIMARY KEY (id))",
		"CREATE TABLE gone (id int NOT NULL, PRIMARY KEY (id))",
	}
	var desired []string
	for i := range 20 {
		live = append(live, fmt.Sprintf("CREATE TABLE u%02d (id int NOT NULL, v varchar(10), PRIMARY KEY (id))", i))
	}
	const opts = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"
	for i := range live {
		live[i] += opts
	}
	for _, q := range live {
		switch {
		case strings.HasPrefix(q, "CREATE TABLE gone"):
		case strings.HasPrefix(q, "CREATE TABLE chg"):
			desired = append(desired, "CREATE TABLE chg (id int NOT NULL, p int, extra int, FOREIGN KEY (p) REFERENCES par (id), PRIMARY KEY (id))"+opts)
		default:
			desired = append(desired, q)
		}
	}
	execAll(t, db, live)
	d, err := Parse([]File{{Path: "s.sql", Data: []byte(strings.Join(desired, ";\n") + ";\n")}})
	if err != nil {
		t.Fatal(err)
	}
	rec := &countRecorder{}
	got, err := (&Planner{Logger: slog.New(rec)}).Diff(ctx, d, db, srv)
	if err != nil {
		t.Fatal(err)
	}
	// Live: grand, par, chg, kid, kidpar, gone; desired: the same but gone.
	if n := rec.n["diffed_tables"]; n != 11 {
		t.Errorf("diffed %d tables, want 11 (the 20 unrelated ones left out)", n)
	}
	want, err := (&Planner{FullShadow: true}).Diff(ctx, d, db, srv)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ddl(got), ddl(want)) {
		t.Errorf("scoped plan\n%s\nwant (every table through the shadow)\n%s", strings.Join(ddl(got), ";\n"), strings.Join(ddl(want), ";\n"))
	}
}

// TestDiffScopeReusedConstraintName: a foreign key name that a changed
// table takes from an unchanged one outside its scope is refused, as the
// whole schema refuses it, before any DDL.
func TestDiffScopeReusedConstraintName(t *testing.T) {
	ctx := context.Background()
	srv := testdb.Server(t)
	db, _ := testdb.Open(t, "plan_scope_fk")
	const opts = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"
	tables := []string{
		"CREATE TABLE p1 (id int NOT NULL, PRIMARY KEY (id))" + opts,
		"CREATE TABLE c1 (id int NOT NULL, p int, PRIMARY KEY (id), CONSTRAINT fk_same FOREIGN KEY (p) REFERENCES p1 (id))" + opts,
		"CREATE TABLE p2 (id int NOT NULL, PRIMARY KEY (id))" + opts,
		"CREATE TABLE c2 (id int NOT NULL, p int, PRIMARY KEY (id))" + opts,
		"CREATE TABLE u (id int NOT NULL, PRIMARY KEY (id))" + opts,
	}
	execAll(t, db, tables)
	tables[3] = "CREATE TABLE c2 (id int NOT NULL, p int, PRIMARY KEY (id), CONSTRAINT fk_same FOREIGN KEY (p) REFERENCES p2 (id))" + opts
	d, err := Parse([]File{{Path: "s.sql", Data: []byte(strings.Join(tables, ";\n") + ";\n")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, full := range []bool{false, true} {
		_, err := (&Planner{FullShadow: full}).Diff(ctx, d, db, srv)
		if err == nil || !strings.Contains(err.Error(), "fk_same") && !strings.Contains(err.Error(), "errno: 121") {
			t.Errorf("plan (every table through the shadow: %v): %v; want fk_same refused", full, err)
		}
	}
}
