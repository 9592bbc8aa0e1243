package plan

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/testdb"
)

// synthDir is the planner benchmark: a 500-table live schema, the desired
// one, and the changes between them.
const synthDir = "../testdata/bench/synth500"

// loadFile parses a schema file and loads its tables into db over n
// connections (FOREIGN_KEY_CHECKS=0), returning the parsed schema.
func loadFile(tb testing.TB, db *sql.DB, schema, path string, n int) *Desired {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	d, err := Parse([]File{{Path: path, Data: b}})
	if err != nil {
		tb.Fatal(err)
	}
	if err := loadShadow(context.Background(), db, schema, d.Tables, n); err != nil {
		tb.Fatal(err)
	}
	return d
}

// expectedChanges reads changes.txt as table -> kind and the names of the
// columns and indexes each change touches.
func expectedChanges(tb testing.TB) map[string][]string {
	tb.Helper()
	b, err := os.ReadFile(synthDir + "/changes.txt")
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		kind := strings.ToLower(f[0])
		table := strings.TrimSuffix(f[1], ":")
		out[table] = []string{kind}
		rest := strings.Join(f[2:], " ")
		for _, part := range strings.Split(rest, ";") {
			w := strings.Fields(part)
			if len(w) >= 3 {
				name, _, _ := strings.Cut(w[2], "(")
				out[table] = append(out[table], name)
			}
		}
	}
	return out
}

// checkAgainstChanges reports where stmts differ from changes.txt.
func checkAgainstChanges(tb testing.TB, stmts []Statement) {
	tb.Helper()
	want := expectedChanges(tb)
	got := map[string]Statement{}
	for _, s := range stmts {
		if _, dup := got[s.Table]; dup {
			tb.Errorf("two statements for %s", s.Table)
		}
		got[s.Table] = s
	}
	for table, w := range want {
		s, ok := got[table]
		if !ok {
			tb.Errorf("changes.txt lists %s %s, the plan has nothing for it", w[0], table)
			continue
		}
		if s.Kind != w[0] {
			tb.Errorf("%s: kind %s, changes.txt says %s", table, s.Kind, w[0])
		}
		for _, name := range w[1:] {
			if !strings.Contains(s.DDL, "`"+name+"`") {
				tb.Errorf("%s: DDL does not touch %s: %s", table, name, s.DDL)
			}
		}
	}
	for table, s := range got {
		if _, ok := want[table]; !ok {
			tb.Errorf("the plan changes %s, which changes.txt does not list: %s", table, s.DDL)
		}
	}
}

// TestSynth500 checks the plan against changes.txt, and that planning
// through the partial shadow gives exactly what the full shadow gives.
func TestSynth500(t *testing.T) {
	ctx := context.Background()
	srv := testdb.Server(t)
	live, name := testdb.Open(t, "plan_synth")
	loadFile(t, srv, name, synthDir+"/live.sql", defaultConnections)
	b, err := os.ReadFile(synthDir + "/desired.sql")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Parse([]File{{Path: "desired.sql", Data: b}})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := (&Planner{}).Plan(ctx, d, live, srv)
	if err != nil {
		t.Fatal(err)
	}
	checkAgainstChanges(t, fast.Statements)
	full, err := (&Planner{FullShadow: true}).Plan(ctx, d, live, srv)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ddl(fast.Statements), ddl(full.Statements)) {
		t.Errorf("partial shadow and full shadow plans differ:\npartial %q\nfull    %q", ddl(fast.Statements), ddl(full.Statements))
	}
	if fmt.Sprint(fast.Findings) != fmt.Sprint(full.Findings) {
		t.Errorf("findings differ:\npartial %+v\nfull    %+v", fast.Findings, full.Findings)
	}
	// Deterministic text: a second plan renders the same DDL.
	again, err := (&Planner{}).Diff(ctx, d, live, srv)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ddl(again), ddl(fast.Statements)) {
		t.Error("a second plan rendered different DDL")
	}
	// Applied, the plan leaves nothing to do.
	execAll(t, live, ddl(fast.Statements))
	rest, err := (&Planner{}).Diff(ctx, d, live, srv)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) > 0 {
		t.Errorf("after applying: %q", ddl(rest))
	}
}

// BenchmarkSynth500 measures Plan on synth500 beside the floor measured in
// the same run: loading every desired table into an empty schema over 6
// connections plus one SHOW CREATE TABLE pass on one connection.
//
//	go test -run '^$' -bench Synth500 -benchtime 15x ./plan/
func BenchmarkSynth500(b *testing.B) {
	ctx := context.Background()
	srv := testdb.Server(b)
	live, name := testdb.Open(b, "plan_bench")
	loadFile(b, srv, name, synthDir+"/live.sql", defaultConnections)
	src, err := os.ReadFile(synthDir + "/desired.sql")
	if err != nil {
		b.Fatal(err)
	}
	d, err := Parse([]File{{Path: "desired.sql", Data: src}})
	if err != nil {
		b.Fatal(err)
	}
	var floors, plans, fulls []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Floor.
		floorDB := fmt.Sprintf("tern_bench_floor_%d_%d", time.Now().UnixNano(), i)
		if _, err := srv.Exec("CREATE DATABASE " + quoteIdent(floorDB)); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := loadShadow(ctx, srv, floorDB, d.Tables, 6); err != nil {
			b.Fatal(err)
		}
		names := make([]string, len(d.Tables))
		for j, t := range d.Tables {
			names[j] = t.Name
		}
		if _, err := showCreateTables(ctx, srv, floorDB, names, 1); err != nil {
			b.Fatal(err)
		}
		floors = append(floors, time.Since(t0))
		if _, err := srv.Exec("DROP DATABASE " + quoteIdent(floorDB)); err != nil {
			b.Fatal(err)
		}
		// tern, as shipped.
		t0 = time.Now()
		p, err := (&Planner{}).Plan(ctx, d, live, srv)
		if err != nil {
			b.Fatal(err)
		}
		plans = append(plans, time.Since(t0))
		if i == 0 {
			checkAgainstChanges(b, p.Statements)
		}
		// tern with every table through the shadow (its drop included).
		t0 = time.Now()
		if _, err := (&Planner{FullShadow: true}).Plan(ctx, d, live, srv); err != nil {
			b.Fatal(err)
		}
		fulls = append(fulls, time.Since(t0))
	}
	b.StopTimer()
	med := func(ds []time.Duration) time.Duration {
		s := slices.Clone(ds)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)/2]
	}
	f, p, full := med(floors), med(plans), med(fulls)
	b.ReportMetric(f.Seconds(), "floor-s")
	b.ReportMetric(p.Seconds(), "plan-s")
	b.ReportMetric(full.Seconds(), "fullshadow-s")
	b.ReportMetric(p.Seconds()/f.Seconds(), "plan/floor")
	b.Logf("n=%d medians: floor %v, plan %v (%.2fx floor), full-shadow plan %v (%.2fx floor)", len(floors), f, p, p.Seconds()/f.Seconds(), full, full.Seconds()/f.Seconds())
}
