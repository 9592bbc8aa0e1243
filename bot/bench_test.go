package bot

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternhq/tern/apply"
	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/store"
)

type noRunner struct{}

func (noRunner) Run(ctx context.Context, a *store.Apply) (*store.Apply, error) { return a, nil }

type noTargets struct{}

func (noTargets) Target(ctx context.Context, repo, db, env string) (*apply.Target, error) {
	return nil, fmt.Errorf("no targets in this benchmark")
}

const benchConcurrency = 50

// countingStore counts the batches the intake writes.
type countingStore struct {
	deliveryStore
	batches, rows atomic.Int64
}

func (c *countingStore) RecordDeliveries(ctx context.Context, ds []store.Delivery) ([]bool, error) {
	c.batches.Add(1)
	c.rows.Add(int64(len(ds)))
	return c.deliveryStore.RecordDeliveries(ctx, ds)
}

// BenchmarkWebhookAck measures the latency of acknowledging signed
// deliveries (verify, store durably, answer 202) with 50 sent at once,
// beside the floor measured in the same run: one durable INSERT of an 8 KB
// row from each of 50 connections at once. Rounds of the two alternate so
// both see the same disk. One b.N iteration is one round of each.
//
//	go test -run '^$' -bench WebhookAck -benchtime 40x ./bot
func BenchmarkWebhookAck(b *testing.B) {
	storeDSN, _ := testdb.New(b, "bot_bench")
	ctx := context.Background()
	st, err := store.Open(ctx, storeDSN)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	st.DB().SetMaxOpenConns(2 * benchConcurrency)
	st.DB().SetMaxIdleConns(2 * benchConcurrency)
	gh, err := fakegithub.New()
	if err != nil {
		b.Fatal(err)
	}
	defer gh.Close()
	cfg, err := config.Parse([]byte(fmt.Sprintf("store: {dsn: %q}\ngithub:\n  api_url: %q\n  app_id: %d\n  private_key: ${KEY}\n  webhook_secret: %q\n",
		storeDSN, gh.URL, gh.AppID, secret)), func(string) (string, bool) { return string(gh.PrivateKeyPEM), true })
	if err != nil {
		b.Fatal(err)
	}
	bot, err := New(Options{Config: cfg, Store: st, Runner: noRunner{}, Targets: noTargets{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	counter := &countingStore{deliveryStore: bot.intake.st}
	bot.intake.st = counter
	srv := httptest.NewServer(bot.Handler())
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchConcurrency, MaxConnsPerHost: benchConcurrency}}

	// An 8 KB issue_comment delivery, as the floor's row.
	payload, err := fakegithub.CommentPayload(repoName, 2, 1, "alice", "User", "/tern plan", inst)
	if err != nil {
		b.Fatal(err)
	}
	pad := 8192 - len(payload)
	if pad > 0 {
		payload, err = fakegithub.CommentPayload(repoName, 2, 1, "alice", "User", "/tern plan\n"+strings.Repeat("x", pad-1), inst)
		if err != nil {
			b.Fatal(err)
		}
	}
	sig := fakegithub.Sign(secret, payload)

	// The floor: its own table shaped like the deliveries table, and 50
	// dedicated connections.
	floorDB, _ := testdb.Open(b, "bot_floor")
	floorDB.SetMaxOpenConns(benchConcurrency)
	if _, err := floorDB.Exec(`CREATE TABLE floor (id VARCHAR(64) NOT NULL PRIMARY KEY, payload MEDIUMBLOB NOT NULL, received_at DATETIME(6) NOT NULL) ENGINE=InnoDB`); err != nil {
		b.Fatal(err)
	}
	conns := make([]*sql.Conn, benchConcurrency)
	for i := range conns {
		if conns[i], err = floorDB.Conn(ctx); err != nil {
			b.Fatal(err)
		}
		defer conns[i].Close()
	}
	row := make([]byte, 8192)
	for i := range row {
		row[i] = 'x'
	}
	// Warm both paths (connections, TLS-free keep-alive, buffer pool).
	var ack, floor []time.Duration
	seq := 0
	round := func(record bool) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		seq++
		for i := 0; i < benchConcurrency; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(http.MethodPost, srv.URL+"/webhook", strings.NewReader(string(payload)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-GitHub-Event", "issue_comment")
				req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%d-%d", seq, i))
				req.Header.Set("X-Hub-Signature-256", sig)
				<-start
				t0 := time.Now()
				resp, err := client.Do(req)
				d := time.Since(t0)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					b.Errorf("status %d", resp.StatusCode)
				}
				if record {
					mu.Lock()
					ack = append(ack, d)
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
		start = make(chan struct{})
		for i := 0; i < benchConcurrency; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				t0 := time.Now()
				_, err := conns[i].ExecContext(ctx, "INSERT INTO floor (id, payload, received_at) VALUES (?, ?, UTC_TIMESTAMP(6))", fmt.Sprintf("f-%d-%d", seq, i), row)
				d := time.Since(t0)
				if err != nil {
					b.Error(err)
					return
				}
				if record {
					mu.Lock()
					floor = append(floor, d)
					mu.Unlock()
				}
			}()
		}
		close(start)
		wg.Wait()
	}
	for i := 0; i < 3; i++ {
		round(false)
	}
	counter.batches.Store(0)
	counter.rows.Store(0)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		round(true)
	}
	b.StopTimer()
	ap50, ap99 := percentile(ack, 50), percentile(ack, 99)
	fp50, fp99 := percentile(floor, 50), percentile(floor, 99)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(ap50), "ack-p50-ms")
	b.ReportMetric(ms(ap99), "ack-p99-ms")
	b.ReportMetric(ms(fp50), "floor-p50-ms")
	b.ReportMetric(ms(fp99), "floor-p99-ms")
	if fp50 > 0 && fp99 > 0 {
		b.ReportMetric(float64(ap50)/float64(fp50), "p50-ratio")
		b.ReportMetric(float64(ap99)/float64(fp99), "p99-ratio")
	}
	b.ReportMetric(float64(counter.batches.Load())/float64(b.N), "batches/round")
	b.ReportMetric(0, "ns/op")
	b.Logf("%d deliveries: ack p50 %.2f ms p99 %.2f ms; floor p50 %.2f ms p99 %.2f ms", len(ack), ms(ap50), ms(ap99), ms(fp50), ms(fp99))
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return s[i-1]
}
