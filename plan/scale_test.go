package plan

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/testdb"
)

// BenchmarkScale plans and costs (PlanAndCost, as tern plan does) a
// workload made by testdata/bench/gen.go, named by TERN_BENCH_DIR (skipped
// without it), and reports the median time, the medians of the planner's
// phases and the CPU:
//
//	(cd testdata/bench && go run gen.go -out /tmp/s5000 -tables 5000 -changes 500 -new 20)
//	TERN_BENCH_DIR=/tmp/s5000 go test -run '^$' -bench Scale -benchtime 3x ./plan/
func BenchmarkScale(b *testing.B) {
	dir := os.Getenv("TERN_BENCH_DIR")
	if dir == "" {
		b.Skip("TERN_BENCH_DIR names a gen.go output folder")
	}
	ctx := context.Background()
	srv := testdb.Server(b)
	live, name := testdb.Open(b, "plan_scale")
	// The workloads are bigger than the default limits allow.
	lim := Limits{MaxFileBytes: 1 << 30, MaxTotalBytes: 1 << 30, MaxTables: 1 << 20, PlanTimeout: time.Hour}
	parse := func(file string) *Desired {
		src, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			b.Fatal(err)
		}
		d, err := lim.Parse([]File{{Path: file, Data: src}})
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	if err := loadShadow(ctx, srv, name, parse("live.sql").Tables, defaultConnections); err != nil {
		b.Fatal(err)
	}
	d := parse("desired.sql")
	rec := &phaseRecorder{}
	p := &Planner{Logger: slog.New(rec), Limits: lim, AllowedEngines: []string{"InnoDB", "MyISAM", "Aria", "MEMORY"}}
	var plans []time.Duration
	var cpu time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c0 := processCPU()
		t0 := time.Now()
		if _, err := p.PlanAndCost(ctx, d, live, srv, CostOptions{MaxBlockingRows: DefaultMaxBlockingRows}); err != nil {
			b.Fatal(err)
		}
		plans = append(plans, time.Since(t0))
		cpu += processCPU() - c0
	}
	b.StopTimer()
	b.ReportMetric((cpu / time.Duration(b.N)).Seconds(), "cpu-s")
	med := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)/2]
	}
	b.ReportMetric(med(plans).Seconds(), "plan-s")
	b.ReportMetric(med(rec.get("order")).Seconds(), "order-s")
	b.ReportMetric(med(rec.get("diff")).Seconds(), "diff-s")
	b.Logf("%s: plan and cost %v (read+load %v, diff %v, order %v; %d tables through the shadow), tern CPU %v", filepath.Base(dir), med(plans),
		med(rec.get("read_and_load")), med(rec.get("diff")), med(rec.get("order")), rec.n["shadow_tables"], cpu/time.Duration(b.N))
}

// phaseRecorder is a slog handler keeping the durations of the planner's
// "planned" log lines.
type phaseRecorder struct {
	mu sync.Mutex
	d  map[string][]time.Duration
	n  map[string]int64 // the last line's counts
}

func (r *phaseRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *phaseRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *phaseRecorder) WithGroup(string) slog.Handler            { return r }
func (r *phaseRecorder) Handle(_ context.Context, rec slog.Record) error {
	if !strings.HasPrefix(rec.Message, "planned") {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.d == nil {
		r.d, r.n = map[string][]time.Duration{}, map[string]int64{}
	}
	rec.Attrs(func(a slog.Attr) bool {
		switch a.Value.Kind() {
		case slog.KindDuration:
			r.d[a.Key] = append(r.d[a.Key], a.Value.Duration())
		case slog.KindInt64:
			r.n[a.Key] = a.Value.Int64()
		}
		return true
	})
	return nil
}

func (r *phaseRecorder) get(k string) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.d[k]) == 0 {
		return []time.Duration{0}
	}
	return r.d[k]
}

// processCPU is the user+system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
