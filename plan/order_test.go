package plan

import (
	"context"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/testdb"
	"vitess.io/vitess/go/vt/schemadiff"
)

// unrelated are tables no change touches, one of them tied by a foreign
// key to a parent of the changes.
const unrelated = `
CREATE TABLE u1 (id int NOT NULL PRIMARY KEY, a_id int, CONSTRAINT fk_u1_a FOREIGN KEY (a_id) REFERENCES a (id));
CREATE TABLE u2 (id int NOT NULL PRIMARY KEY, u1_id int, CONSTRAINT fk_u2_u1 FOREIGN KEY (u1_id) REFERENCES u1 (id));
CREATE TABLE u3 (id int NOT NULL PRIMARY KEY, s varchar(10));
`

// chain is a -> b -> c: c references b, b references a.
const chain = `
CREATE TABLE a (id int NOT NULL PRIMARY KEY, code int NOT NULL, UNIQUE KEY uk_code (code));
CREATE TABLE b (id int NOT NULL PRIMARY KEY, a_id int, CONSTRAINT fk_b_a FOREIGN KEY (a_id) REFERENCES a (id));
CREATE TABLE c (id int NOT NULL PRIMARY KEY, b_id int, n int, CONSTRAINT fk_c_b FOREIGN KEY (b_id) REFERENCES b (id));
`

// TestNarrowedOrder checks that ordering only the changed tables and
// their foreign-key scope gives the plan that ordering the whole schema
// gives, and that the scope leaves out what it should.
func TestNarrowedOrder(t *testing.T) {
	tests := []struct {
		name          string
		live, desired string
		scope         []string
	}{
		{
			name:    "change at the end of a chain",
			live:    chain + unrelated,
			desired: replace(chain, "n int,", "n bigint,") + unrelated,
			scope:   []string{"a", "b", "c"},
		},
		{
			name:    "change in the middle of a chain",
			live:    chain + unrelated,
			desired: replace(chain, "a_id int, CONSTRAINT fk_b_a", "a_id int, x int, CONSTRAINT fk_b_a") + unrelated,
			scope:   []string{"a", "b", "c"},
		},
		{
			name: "new parent, new key to it, parent index added for an existing child",
			live: chain + unrelated,
			desired: replace(chain, "n int,", "n int, d_id int, CONSTRAINT fk_c_d FOREIGN KEY (d_id) REFERENCES d (id),") +
				"CREATE TABLE d (id int NOT NULL PRIMARY KEY);\n" +
				replace(unrelated, "s varchar(10));", "s varchar(10), c_n int, KEY ix_c_n (c_n));"),
			scope: []string{"a", "b", "c", "d", "u3"},
		},
		{
			name:    "drop a child's key and its parent",
			live:    chain + unrelated + "CREATE TABLE e (id int NOT NULL PRIMARY KEY, c_id int, CONSTRAINT fk_e_c FOREIGN KEY (c_id) REFERENCES c (id));\n",
			desired: replace(chain, ", CONSTRAINT fk_c_b FOREIGN KEY (b_id) REFERENCES b (id)", "") + unrelated + "CREATE TABLE e (id int NOT NULL PRIMARY KEY, c_id int, CONSTRAINT fk_e_c FOREIGN KEY (c_id) REFERENCES c (id));\n",
			scope:   []string{"a", "b", "c", "e"},
		},
		{
			name:    "drop tables in a chain",
			live:    chain + unrelated,
			desired: "CREATE TABLE a (id int NOT NULL PRIMARY KEY, code int NOT NULL, UNIQUE KEY uk_code (code));\n" + unrelated,
			scope:   []string{"a", "b", "c"},
		},
		{
			name:    "new tables referencing each other in a cycle",
			live:    chain + unrelated,
			desired: chain + unrelated + "CREATE TABLE x (id int NOT NULL PRIMARY KEY, y_id int, CONSTRAINT fk_x_y FOREIGN KEY (y_id) REFERENCES y (id));\nCREATE TABLE y (id int NOT NULL PRIMARY KEY, x_id int, c_id int, CONSTRAINT fk_y_x FOREIGN KEY (x_id) REFERENCES x (id), CONSTRAINT fk_y_c FOREIGN KEY (c_id) REFERENCES c (id));\n",
			scope:   []string{"a", "b", "c", "x", "y"},
		},
	}
	ctx := context.Background()
	srv := testdb.Server(t)
	env, err := newEnv()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live, _ := testdb.Open(t, "plan_order")
			execAll(t, live, tableSQL(mustParse(t, tt.live)))
			d := mustParse(t, tt.desired)
			narrowed, err := (&Planner{}).Diff(ctx, d, live, srv)
			if err != nil {
				t.Fatalf("narrowed: %v", err)
			}
			whole, err := (&Planner{FullShadow: true}).Diff(ctx, d, live, srv)
			if err != nil {
				t.Fatalf("whole: %v", err)
			}
			if len(whole) == 0 {
				t.Fatal("the case has no changes")
			}
			if !slices.Equal(ddl(narrowed), ddl(whole)) {
				t.Errorf("narrowed and whole-schema orders differ:\nnarrowed %q\nwhole    %q", ddl(narrowed), ddl(whole))
			}

			// The scope itself.
			from, err := schemadiff.NewSchemaFromQueries(env, tableSQL(mustParse(t, tt.live)))
			if err != nil {
				t.Fatal(err)
			}
			to, err := schemadiff.NewSchemaFromQueries(env, tableSQL(d))
			if err != nil {
				t.Fatal(err)
			}
			sd, err := schemadiff.DiffSchemas(env, from, to, diffHints())
			if err != nil {
				t.Fatal(err)
			}
			var changed []string
			for _, x := range sd.UnorderedDiffs() {
				changed = append(changed, x.EntityName())
			}
			scope, _ := orderScope(from, to, changed)
			var got []string
			for n := range scope {
				got = append(got, n)
			}
			sort.Strings(got)
			if !slices.Equal(got, tt.scope) {
				t.Errorf("scope %v, want %v", got, tt.scope)
			}

			// The narrowed order runs, and leaves nothing to do.
			execAll(t, live, ddl(narrowed))
			rest, err := (&Planner{}).Diff(ctx, d, live, srv)
			if err != nil {
				t.Fatal(err)
			}
			if len(rest) > 0 {
				t.Errorf("after applying: %q", ddl(rest))
			}
		})
	}
}

func replace(s, old, new string) string {
	if !strings.Contains(s, old) {
		panic("replace: " + old + " not in " + s)
	}
	return strings.Replace(s, old, new, 1)
}
