package plan

import (
	"context"
	"os"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/testdb"
)

// BenchmarkSynth500Cost measures Cost on synth500's plan (50 altered
// tables, 5 new) beside Plan itself, in the same run, and checks that
// every statement gets a cost, the alters from the server.
//
//	go test -run '^$' -bench Synth500Cost -benchtime 5x ./plan/
func BenchmarkSynth500Cost(b *testing.B) {
	ctx := context.Background()
	srv := testdb.Server(b)
	live, name := testdb.Open(b, "plan_cost_bench")
	loadFile(b, srv, name, synthDir+"/live.sql", defaultConnections)
	src, err := os.ReadFile(synthDir + "/desired.sql")
	if err != nil {
		b.Fatal(err)
	}
	d, err := Parse([]File{{Path: "desired.sql", Data: src}})
	if err != nil {
		b.Fatal(err)
	}
	var plans, costs []time.Duration
	p := &Planner{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		pl, err := p.Plan(ctx, d, live, srv)
		if err != nil {
			b.Fatal(err)
		}
		plans = append(plans, time.Since(t0))
		t0 = time.Now()
		if err := p.Cost(ctx, pl, live, srv, CostOptions{MaxBlockingRows: DefaultMaxBlockingRows}); err != nil {
			b.Fatal(err)
		}
		costs = append(costs, time.Since(t0))
		if i == 0 {
			rules := 0
			for _, s := range pl.Statements {
				if s.Cost == nil {
					b.Fatalf("no cost for %s", s.DDL)
				}
				if s.Cost.Source == SourceRules {
					rules++
				}
			}
			b.Logf("%d statements, %d costed by the rules (the shadow copy refused them)", len(pl.Statements), rules)
		}
	}
	b.StopTimer()
	med := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)/2]
	}
	b.ReportMetric(med(plans).Seconds(), "plan-s")
	b.ReportMetric(med(costs).Seconds(), "cost-s")
	b.Logf("n=%d medians: plan %v, cost %v", len(plans), med(plans), med(costs))
}
