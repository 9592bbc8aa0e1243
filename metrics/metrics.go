// Package metrics holds tern's Prometheus metrics, served at GET /metrics.
//
// Every method is safe on a nil *Metrics, so packages can take one as an
// optional dependency.
package metrics

import (
	"context"
	"database/sql"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is one registry of tern's metrics.
type Metrics struct {
	reg         *prometheus.Registry
	transitions *prometheus.CounterVec
	retries     *prometheus.CounterVec
	claim       prometheus.Histogram
	pass        prometheus.Histogram
	deliveries  *prometheus.CounterVec
	apiCalls    *prometheus.CounterVec
}

// New returns a registry with tern's metrics and the Go runtime's. db, when
// not nil, is the ledger: applies by state are read from it at scrape time.
func New(db *sql.DB) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tern_apply_transitions_total",
			Help: "Apply state changes made by this process, by the state entered.",
		}, []string{"to"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tern_apply_retries_total",
			Help: "Attempts that ended failed_retryable, by error class.",
		}, []string{"class"}),
		claim: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tern_claim_duration_seconds",
			Help:    "Latency of one SKIP LOCKED claim of due applies.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		pass: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tern_recovery_pass_duration_seconds",
			Help:    "Duration of one recovery pass.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tern_webhook_deliveries_total",
			Help: "Webhook deliveries by event and outcome (accepted, duplicate, bad_signature, processed, failed).",
		}, []string{"event", "outcome"}),
		apiCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tern_api_calls_total",
			Help: "Calls to GitHub and PlanetScale by API and outcome (ok, http_4xx, http_5xx, error).",
		}, []string{"api", "outcome"}),
	}
	m.reg.MustRegister(m.transitions, m.retries, m.claim, m.pass, m.deliveries, m.apiCalls,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if db != nil {
		m.reg.MustRegister(&stateCollector{db: db, desc: prometheus.NewDesc("tern_applies",
			"Applies in the ledger by state.", []string{"state"}, nil)})
	}
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Transition counts an apply entering state to.
func (m *Metrics) Transition(to string) {
	if m != nil {
		m.transitions.WithLabelValues(to).Inc()
	}
}

// Retry counts an attempt that ended failed_retryable with class.
func (m *Metrics) Retry(class string) {
	if m != nil {
		m.retries.WithLabelValues(class).Inc()
	}
}

// Claim records the latency of one claim.
func (m *Metrics) Claim(d time.Duration) {
	if m != nil {
		m.claim.Observe(d.Seconds())
	}
}

// Pass records the duration of one recovery pass.
func (m *Metrics) Pass(d time.Duration) {
	if m != nil {
		m.pass.Observe(d.Seconds())
	}
}

// Delivery counts a webhook delivery's outcome.
func (m *Metrics) Delivery(event, outcome string) {
	if m != nil {
		m.deliveries.WithLabelValues(event, outcome).Inc()
	}
}

// Transport wraps rt so that every request counts as a call to api
// ("github", "planetscale") with its outcome.
func (m *Metrics) Transport(api string, rt http.RoundTripper) http.RoundTripper {
	if rt == nil {
		rt = http.DefaultTransport
	}
	if m == nil {
		return rt
	}
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(r)
		outcome := "ok"
		switch {
		case err != nil:
			outcome = "error"
		case resp.StatusCode >= 500:
			outcome = "http_5xx"
		case resp.StatusCode >= 400:
			outcome = "http_" + strconv.Itoa(resp.StatusCode/100) + "xx"
		}
		m.apiCalls.WithLabelValues(api, outcome).Inc()
		return resp, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// stateCollector reads applies by state from the ledger at scrape time.
type stateCollector struct {
	db   *sql.DB
	desc *prometheus.Desc
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := c.db.QueryContext(ctx, "SELECT state, COUNT(*) FROM tern_applies GROUP BY state")
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	defer rows.Close()
	for rows.Next() {
		var state string
		var n float64
		if err := rows.Scan(&state, &n); err != nil {
			ch <- prometheus.NewInvalidMetric(c.desc, err)
			return
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, n, state)
	}
}
