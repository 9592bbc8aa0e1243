package plan

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/testdb"
)

// BenchmarkShowCreateTables reads synth500's live tables' SHOW CREATE
// TABLE over six connections, as showCreateTables does (on quiet
// connections), and as it did before: on the pool with the plan's
// cancellable context, which database/sql and the driver watch with a
// goroutine and two handoffs per query. It reports the process's CPU per
// read of the 500 tables beside the wall time.
//
//	go test -run '^$' -bench ShowCreateTables -benchtime 20x ./plan/
func BenchmarkShowCreateTables(b *testing.B) {
	srv := testdb.Server(b)
	live, name := testdb.Open(b, "plan_quiet_bench")
	loadFile(b, srv, name, synthDir+"/live.sql", defaultConnections)
	var tables []string
	rows, err := live.Query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			b.Fatal(err)
		}
		tables = append(tables, t)
	}
	rows.Close()
	watched := func(ctx context.Context) {
		var mu sync.Mutex
		next := 0
		var wg sync.WaitGroup
		for range defaultConnections {
			wg.Go(func() {
				for {
					mu.Lock()
					if next >= len(tables) {
						mu.Unlock()
						return
					}
					t := tables[next]
					next++
					mu.Unlock()
					var n, def string
					if err := live.QueryRowContext(ctx, "SHOW CREATE TABLE "+quoteIdent(t)).Scan(&n, &def); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	quiet := func(ctx context.Context) {
		if _, err := showCreateTables(ctx, live, "", tables, defaultConnections); err != nil {
			b.Error(err)
		}
	}
	for _, bc := range []struct {
		name string
		read func(context.Context)
	}{{"watched", watched}, {"quiet", quiet}} {
		b.Run(bc.name, func(b *testing.B) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			bc.read(ctx) // warm the pool
			cpu := processCPU()
			b.ResetTimer()
			for range b.N {
				bc.read(ctx)
			}
			b.StopTimer()
			b.ReportMetric(float64((processCPU()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
		})
	}
}
