package ptosc

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/engine"
	"github.com/ternhq/tern/internal/testdb"
)

// BenchmarkOnlineVsDirect times one copying change of a table of 2^20 rows
// through pt-online-schema-change (default chunking) and the same change
// as direct DDL (ALGORITHM=COPY, which blocks writes throughout), on two
// identical tables:
//
//	go test -run '^$' -bench OnlineVsDirect -benchtime 1x ./engine/ptosc
func BenchmarkOnlineVsDirect(b *testing.B) {
	if _, err := exec.LookPath(Tool); err != nil {
		b.Fatalf("%s is not installed: run ./scripts/ensure-percona-toolkit.sh", Tool)
	}
	const rows = 1 << 20
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		db, name := testdb.Open(b, "ptosc_bench")
		testdb.BigTable(b, db, "t", rows)
		testdb.BigTable(b, db, "u", rows)
		e, err := New(config.MySQL{DSN: testdb.ServerDSN()}, name, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if err := e.Apply(context.Background(), engine.Job{ApplyID: 1, Attempt: 1, Tasks: []engine.Task{task(widen)}}, &recorder{}); err != nil {
			b.Fatal(err)
		}
		online := time.Since(start)
		start = time.Now()
		if _, err := db.Exec("ALTER TABLE `u` MODIFY COLUMN `v` bigint NOT NULL, ALGORITHM=COPY"); err != nil {
			b.Fatal(err)
		}
		direct := time.Since(start)
		b.StopTimer()
		e.Close()
		b.ReportMetric(online.Seconds(), "s/pt-osc")
		b.ReportMetric(direct.Seconds(), "s/direct-copy")
		b.Logf("%d rows: pt-osc %s, direct COPY %s", rows, online.Round(time.Millisecond), direct.Round(time.Millisecond))
	}
}
