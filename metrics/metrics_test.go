package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/testdb"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics = %d", rec.Code)
	}
	return rec.Body.String()
}

func TestMetrics(t *testing.T) {
	db, _ := testdb.Open(t, "metrics")
	if _, err := db.Exec("CREATE TABLE tern_applies (id INT PRIMARY KEY, state VARCHAR(20))"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("INSERT INTO tern_applies VALUES (1,'completed'),(2,'completed'),(3,'failed_retryable')"); err != nil {
		t.Fatal(err)
	}
	m := New(db)
	m.Transition("completed")
	m.Retry("lock_wait_timeout")
	m.Claim(2 * time.Millisecond)
	m.Pass(time.Second)
	m.Delivery("issue_comment", "accepted")

	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/boom" {
			w.WriteHeader(503)
		}
	}))
	defer api.Close()
	c := &http.Client{Transport: m.Transport("github", nil)}
	for _, p := range []string{"/ok", "/boom"} {
		resp, err := c.Get(api.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	out := scrape(t, m)
	for _, want := range []string{
		`tern_apply_transitions_total{to="completed"} 1`,
		`tern_apply_retries_total{class="lock_wait_timeout"} 1`,
		`tern_claim_duration_seconds_count 1`,
		`tern_recovery_pass_duration_seconds_count 1`,
		`tern_webhook_deliveries_total{event="issue_comment",outcome="accepted"} 1`,
		`tern_api_calls_total{api="github",outcome="ok"} 1`,
		`tern_api_calls_total{api="github",outcome="http_5xx"} 1`,
		`tern_applies{state="completed"} 2`,
		`tern_applies{state="failed_retryable"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestNilMetricsIsSafe(t *testing.T) {
	var m *Metrics
	m.Transition("x")
	m.Retry("x")
	m.Claim(time.Second)
	m.Pass(time.Second)
	m.Delivery("a", "b")
	if m.Transport("github", http.DefaultTransport) != http.DefaultTransport {
		t.Error("nil Metrics must not wrap the transport")
	}
}
