package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"
)

// BenchmarkClaim measures one Claim of 10 due applies with 1,000 terminal
// applies in the table and, when TERN_BENCH_BIG=1, with 1,000,000. It
// reports the median and p99 latency of the claims (p50-ms, p99-ms).
//
//	go test -run '^$' -bench BenchmarkClaim -benchtime 2000x ./store
//	TERN_BENCH_BIG=1 go test -run '^$' -bench BenchmarkClaim -benchtime 2000x -timeout 30m ./store
func BenchmarkClaim(b *testing.B) {
	sizes := []int{1000}
	if os.Getenv("TERN_BENCH_BIG") == "1" {
		sizes = append(sizes, 1000000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("terminal=%d", n), func(b *testing.B) { benchClaim(b, n, false) })
		b.Run(fmt.Sprintf("floor/terminal=%d", n), func(b *testing.B) { benchClaim(b, n, true) })
	}
}

// floorClaim is the least a claim can do (NOTES.md, "Latency floors"): on
// one connection at READ COMMITTED, the SELECT ... FOR UPDATE SKIP LOCKED,
// the UPDATE, the commit. No lease token, no audit, no rows read back.
func floorClaim(ctx context.Context, conn *sql.Conn, limit int) (int, error) {
	if _, err := conn.ExecContext(ctx, `BEGIN`); err != nil {
		return 0, err
	}
	rows, err := conn.QueryContext(ctx, `SELECT id FROM tern_applies WHERE state = 'pending'
 AND next_attempt_at <= UTC_TIMESTAMP(6) ORDER BY next_attempt_at, id LIMIT ? FOR UPDATE SKIP LOCKED`, limit)
	if err != nil {
		return 0, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	in, args := placeholders(ids)
	if _, err := conn.ExecContext(ctx, `UPDATE tern_applies SET state = 'running', attempt = attempt + 1,
 lease_expires_at = UTC_TIMESTAMP(6) + INTERVAL 60 SECOND WHERE id IN (`+in+`)`, args...); err != nil {
		return 0, err
	}
	_, err = conn.ExecContext(ctx, `COMMIT`)
	return len(ids), err
}

func benchClaim(b *testing.B, terminal int, floor bool) {
	ctx := context.Background()
	s, _ := newStore(b)
	p := savePlan(b, s, "acme/shop", 1, "shop", "staging", 0)
	fillTerminal(b, s, p, terminal)
	const due = 10
	insertApplies(b, s, p, due, Pending, "due")
	if _, err := s.DB().Exec(`ANALYZE TABLE tern_applies`); err != nil {
		b.Fatal(err)
	}
	var ids []any
	rows, err := s.DB().Query(`SELECT id FROM tern_applies WHERE environment LIKE 'due-%'`)
	if err != nil {
		b.Fatal(err)
	}
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	in, _ := placeholders(make([]int64, len(ids)))
	reset := `UPDATE tern_applies SET state = 'pending', next_attempt_at = UTC_TIMESTAMP(6) - INTERVAL 1 SECOND,
 lease_owner = '', lease_token = '', lease_expires_at = NULL WHERE id IN (` + in + `)`

	conn, err := s.DB().Conn(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED`); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := s.DB().Exec(reset, ids...); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		var n int
		if floor {
			n, err = floorClaim(ctx, conn, due)
		} else {
			var got []*Apply
			got, err = s.Claim(ctx, ClaimOptions{Owner: "bench", Limit: due, Lease: time.Minute})
			n = len(got)
		}
		lat = append(lat, time.Since(t0))
		if err != nil || n != due {
			b.Fatalf("claim: %d applies, %v", n, err)
		}
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(q float64) float64 {
		return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
}

// fillTerminal puts n terminal applies (completed, failed, cancelled) in
// the table: 1,000 rows, copied aside, then multi-row INSERT ... SELECT of
// that copy crossed with a numbers table, 100,000 rows a statement. (A
// table copied into itself needs a server-side temporary file; a cross
// join of two other tables does not.)
func fillTerminal(b *testing.B, s *Store, p *Plan, n int) {
	b.Helper()
	seed := n
	if seed > 1000 {
		seed = 1000
	}
	insertApplies(b, s, p, seed-2*(seed/3), Completed, "done")
	insertApplies(b, s, p, seed/3, Failed, "failed")
	insertApplies(b, s, p, seed/3, Cancelled, "cancelled")
	const cols = `plan_id, repository, pr, head_sha, installation_id, database_name, environment, desired_hash,
 state, attempt, max_attempts, rescues, next_attempt_at, lease_owner, lease_token, lease_expires_at, last_error,
 error_class, requested_by, allow_unsafe, engine_state, version, reported_version, created_at, updated_at`
	if n > seed {
		var nums strings.Builder
		for i := 0; i < 100; i++ {
			if i > 0 {
				nums.WriteString(", ")
			}
			fmt.Fprintf(&nums, "(%d)", i)
		}
		for _, q := range []string{
			`CREATE TABLE bench_n (n INT NOT NULL PRIMARY KEY)`,
			`INSERT INTO bench_n VALUES ` + nums.String(),
			`CREATE TABLE bench_seed AS SELECT ` + cols + ` FROM tern_applies`,
		} {
			if _, err := s.DB().Exec(q); err != nil {
				b.Fatalf("fill terminal applies: %v", err)
			}
		}
	}
	for have := seed; have < n; {
		add := min(n-have, 100*seed)
		_, err := s.DB().Exec(`INSERT INTO tern_applies (`+cols+`) SELECT `+cols+` FROM bench_seed CROSS JOIN bench_n LIMIT ?`, add)
		if err != nil {
			b.Fatalf("fill terminal applies: %v", err)
		}
		have += add
	}
	var got int
	s.DB().QueryRow(`SELECT COUNT(*) FROM tern_applies`).Scan(&got)
	if got != n {
		b.Fatalf("%d terminal applies, want %d", got, n)
	}
}
