package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"testing"
	"time"
)

// questions returns the server's count of statements received on conn's
// session, not counting the SHOW that reads it.
func questions(ctx context.Context, tb testing.TB, db *sql.DB) int64 {
	tb.Helper()
	var name string
	var n int64
	if err := db.QueryRowContext(ctx, `SHOW SESSION STATUS LIKE 'Questions'`).Scan(&name, &n); err != nil {
		tb.Fatalf("read Questions: %v", err)
	}
	return n
}

// ledgerOp is one ledger write of an attempt's life, run on apply a (with
// one task) as it stands after the previous op.
type ledgerOp struct {
	name string
	run  func(ctx context.Context, s *Store, a *Apply) (*Apply, error)
}

// attemptOps are the ledger writes of one successful one-task attempt, in
// order: what a recovery pass does per apply.
var attemptOps = []ledgerOp{
	{"Claim", func(ctx context.Context, s *Store, a *Apply) (*Apply, error) {
		got, err := s.Claim(ctx, ClaimOptions{Owner: "bench", Limit: 1, ApplyID: a.ID, Lease: time.Minute})
		if err == nil && len(got) != 1 {
			err = fmt.Errorf("claimed %d applies, want 1", len(got))
		}
		if err != nil {
			return nil, err
		}
		return got[0], nil
	}},
	{"StartTask", func(ctx context.Context, s *Store, a *Apply) (*Apply, error) { return a, s.StartTask(ctx, a, 1) }},
	{"FinishTask", func(ctx context.Context, s *Store, a *Apply) (*Apply, error) {
		return a, s.FinishTask(ctx, a, 1, false)
	}},
	{"FinishApply", func(ctx context.Context, s *Store, a *Apply) (*Apply, error) {
		return s.FinishApply(ctx, a, Completed, "", "", 0)
	}},
}

// BenchmarkWrites measures the fenced ledger writes of one attempt (Claim
// of one apply, StartTask, FinishTask, FinishApply) one by one on one
// connection, beside a bare single-row autocommit UPDATE (the commit
// floor). Per write it reports the median latency (p50-ms) and the
// statements the server ran (stmts; a batch of several statements is one
// round trip).
//
//	go test -run '^$' -bench BenchmarkWrites -benchtime 300x ./store
func BenchmarkWrites(b *testing.B) {
	ctx := context.Background()
	s, _ := newStore(b)
	// One connection per pool, so that session counters see every
	// statement.
	s.DB().SetMaxOpenConns(1)
	s.wdb.SetMaxOpenConns(1)
	p := savePlan(b, s, "acme/shop", 1, "shop", "staging", 1)
	if _, err := s.DB().ExecContext(ctx, `CREATE TABLE bench_floor (id INT PRIMARY KEY, n INT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, `INSERT INTO bench_floor VALUES (1, 0)`); err != nil {
		b.Fatal(err)
	}
	floor := ledgerOp{"floor", func(ctx context.Context, s *Store, a *Apply) (*Apply, error) {
		_, err := s.DB().ExecContext(ctx, `UPDATE bench_floor SET n = n + 1 WHERE id = 1`)
		return a, err
	}}
	ops := append([]ledgerOp{floor}, attemptOps...)
	lat := make([][]time.Duration, len(ops))
	stmts := make([]int64, len(ops))
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		a, err := s.CreateApply(ctx, p, "alice", false, 5)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for i, op := range ops {
			b.StopTimer()
			q0 := questions(ctx, b, s.DB()) + questions(ctx, b, s.wdb)
			b.StartTimer()
			t0 := time.Now()
			a, err = op.run(ctx, s, a)
			lat[i] = append(lat[i], time.Since(t0))
			b.StopTimer()
			if err != nil {
				b.Fatalf("%s: %v", op.name, err)
			}
			stmts[i] += questions(ctx, b, s.DB()) + questions(ctx, b, s.wdb) - q0 - 2
			b.StartTimer()
		}
	}
	b.StopTimer()
	for i, op := range ops {
		l := lat[i]
		sort.Slice(l, func(x, y int) bool { return l[x] < l[y] })
		b.ReportMetric(float64(l[len(l)/2])/float64(time.Millisecond), op.name+"-p50-ms")
		b.ReportMetric(float64(stmts[i])/float64(b.N), op.name+"-stmts")
	}
}
