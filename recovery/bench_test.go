package recovery_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ternhq/tern/recovery"
	"github.com/ternhq/tern/recovery/recoverytest"
	"github.com/ternhq/tern/store"
)

// seedParallel creates n due one-task applies with 8 connections.
func (e *env) seedParallel(b *testing.B, n int) []*store.Apply {
	b.Helper()
	out := make([]*store.Apply, n)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				p := &store.Plan{
					Repository: "acme/shop", PR: i + 1, HeadSHA: fmt.Sprintf("%040x", i+1), InstallationID: 7,
					Database: fmt.Sprintf("db%d", i), Environment: "staging", DesiredHash: "h",
					Desired: []byte("[]"), Lint: []byte("[]"),
					Statements: []store.Statement{{Table: "t", Kind: "create", DDL: "CREATE TABLE t (id int PRIMARY KEY)"}},
				}
				if err := e.st.SavePlan(context.Background(), p); err != nil {
					errs <- err
					return
				}
				a, err := e.st.CreateApply(context.Background(), p, "octocat", false, 5)
				if err != nil {
					errs <- err
					return
				}
				out[i] = a
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("seed: %v", err)
	}
	return out
}

// benchPasses runs `passes` concurrent passes, each with its own Store and
// Parallel workers, over n due applies, and reports applies per second and
// double dispatches (task executions beyond one).
func benchPasses(b *testing.B, n, passes, parallel int) {
	for range b.N {
		b.StopTimer()
		e := newEnv(b)
		applies := e.seedParallel(b, n)
		ps := make([]*recovery.Pass, passes)
		for i := range ps {
			st := openStore(b, e.dsn)
			ps[i] = &recovery.Pass{
				Store:  st,
				Runner: &recoverytest.LedgerRunner{Store: st, Engine: recoverytest.NewEngine(st.DB()), RetryIn: time.Hour},
				Owner:  fmt.Sprintf("bench-%d", i), Limit: n, Parallel: parallel, Lease: time.Minute,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			}
		}
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		errs := make([]error, passes)
		for i, p := range ps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = p.Run(context.Background())
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		b.StopTimer()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		runs, err := recoverytest.Runs(context.Background(), e.st.DB())
		if err != nil {
			b.Fatal(err)
		}
		double, missing := 0, 0
		for _, a := range applies {
			switch c := runs[a.ID][1]; {
			case c == 0:
				missing++
			case c > 1:
				double += c - 1
			}
		}
		if missing > 0 || double > 0 {
			b.Errorf("%d applies never ran, %d double dispatches", missing, double)
		}
		b.ReportMetric(float64(n)/elapsed.Seconds(), "applies/s")
		b.ReportMetric(float64(double), "double_dispatches")
		b.ReportMetric(elapsed.Seconds(), "pass_s")
		b.StartTimer()
	}
}

// BenchmarkPass: go test -run '^$' -bench Pass -benchtime 1x -count 3 ./recovery/
func BenchmarkPass(b *testing.B) {
	for _, tc := range []struct{ passes, parallel int }{{1, 4}, {4, 4}} {
		b.Run(fmt.Sprintf("passes=%d/parallel=%d/applies=2000", tc.passes, tc.parallel), func(b *testing.B) {
			benchPasses(b, 2000, tc.passes, tc.parallel)
		})
	}
}

// BenchmarkCommitFloor measures the server's durable-commit rate with 4
// connections (one single-row UPDATE per commit): the floor under the
// pass, whose every apply costs several such commits (claim, task start,
// the engine's DDL record, task done, apply finish).
func BenchmarkCommitFloor(b *testing.B) {
	e := newEnv(b)
	db := e.st.DB()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE floor_t (id INT PRIMARY KEY, n INT NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	for i := range 4 {
		if _, err := db.ExecContext(ctx, `INSERT INTO floor_t VALUES (?, 0)`, i); err != nil {
			b.Fatal(err)
		}
	}
	const commits = 2000
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range commits / 4 {
					if _, err := db.ExecContext(ctx, `UPDATE floor_t SET n = n + 1 WHERE id = ?`, w); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		b.ReportMetric(commits/time.Since(start).Seconds(), "commits/s")
	}
}
