package plan

import (
	"context"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/testdb"
)

// TestCostOnlineCopy: with an online engine for blocking copies, a
// statement that would make writes wait on a table over max_blocking_rows
// is ONLINE with no lock (and no longer blocking) when the engine takes
// it, and keeps the server's cost, blocking, with the engine's reason when
// it cannot. Statements that do not block are not offered to it.
func TestCostOnlineCopy(t *testing.T) {
	ctx := context.Background()
	srv := testdb.Server(t)
	live, _ := testdb.Open(t, "plan_cost_online")
	execAll(t, live, []string{costLive, "INSERT INTO orders (customer) VALUES ('a'), ('b')"})
	d, err := Parse([]File{{Path: "a.sql", Data: []byte(strings.Replace(costLive, "`amount` int(11)", "`amount` bigint", 1) +
		";\nCREATE TABLE fresh (id int PRIMARY KEY);")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		reason string
		want   string
	}{
		{"", AlgorithmOnline},
		{"the table has triggers", AlgorithmCopy},
	} {
		p := &Planner{}
		pl, err := p.Plan(ctx, d, live, srv)
		if err != nil {
			t.Fatal(err)
		}
		var asked []string
		opts := CostOptions{OnlineCopy: func(_ context.Context, st Statement) (string, error) {
			asked = append(asked, st.Table)
			return tt.reason, nil
		}}
		if err := p.Cost(ctx, pl, live, srv, opts); err != nil {
			t.Fatal(err)
		}
		if strings.Join(asked, ",") != "orders" {
			t.Errorf("the online engine was asked about %v, want only the blocking ALTER of orders", asked)
		}
		for _, s := range pl.Statements {
			if s.Kind != KindAlter {
				continue
			}
			c := s.Cost
			switch tt.want {
			case AlgorithmOnline:
				if c.Algorithm != AlgorithmOnline || c.Lock != LockNone || c.Blocking || c.Source != SourceEngine || c.Duration == "" || len(pl.Blocking()) != 0 {
					t.Errorf("taken: cost %+v, findings %v; want ONLINE/NONE from the engine, with a duration, not blocking", c, pl.Blocking())
				}
			default:
				if c.Algorithm != AlgorithmCopy || !c.Blocking || !strings.Contains(c.Reason, "the table has triggers") || len(pl.Blocking()) != 1 {
					t.Fatalf("refused: cost %+v; want the blocking COPY with the engine's reason", c)
				}
				if m := pl.Blocking()[0].Message; !strings.Contains(m, "online engine cannot run it: the table has triggers") {
					t.Errorf("the blocking finding %q does not say why the online engine cannot take it", m)
				}
			}
		}
	}
}
