package plan

import (
	"context"
	"testing"

	"github.com/ternhq/tern/internal/testdb"
)

// TestLiveTernTablesIgnored: tables named _tern_... in the live schema are
// tern's own (an online copy's shadow or old table, left by a worker that
// died); schema files cannot declare them, and a plan never drops them.
func TestLiveTernTablesIgnored(t *testing.T) {
	ctx := context.Background()
	srv := testdb.Server(t)
	live, _ := testdb.Open(t, "plan_reserved")
	execAll(t, live, []string{"CREATE TABLE t (id INT PRIMARY KEY)", "CREATE TABLE _tern_7_1_new_t (id BIGINT PRIMARY KEY)"})
	d, err := Parse([]File{{Path: "t.sql", Data: []byte("CREATE TABLE t (id INT PRIMARY KEY);")}})
	if err != nil {
		t.Fatal(err)
	}
	pl, err := (&Planner{}).Plan(ctx, d, live, srv)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range pl.Statements {
		t.Errorf("planned %s", s.DDL)
	}
}
