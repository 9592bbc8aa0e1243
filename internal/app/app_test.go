package app_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/internal/app"
	"github.com/ternhq/tern/internal/testdb"
)

func testConfig(t *testing.T, dsn string) *config.Config {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	return &config.Config{
		Store:  config.Store{DSN: dsn},
		GitHub: config.GitHub{APIURL: "http://127.0.0.1:1/", AppID: 42, PrivateKey: string(pemKey)},
		Recovery: config.Recovery{
			MaxAttempts: 4, BackoffBase: config.Duration(time.Second), BackoffMax: config.Duration(time.Minute),
			Lease: config.Duration(7 * time.Minute), MaxRescues: 6,
		},
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// New opens and migrates the ledger itself, wires the runner to report
// through the bot, and Close closes the ledger it opened.
func TestNewOwnsTheStoreItOpens(t *testing.T) {
	ctx := context.Background()
	dsn, _ := testdb.New(t, "app")
	a, err := app.New(ctx, testConfig(t, dsn), app.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := a.Store.SchemaVersion(ctx); err != nil || v < 1 {
		t.Fatalf("ledger not migrated: version %d, %v", v, err)
	}
	if a.Runner.Listener != a.Bot {
		t.Errorf("runner's listener is %T, want the bot", a.Runner.Listener)
	}
	if a.Runner.Store != a.Store || a.Runner.Targets != a.Targets || a.Runner.Planner != a.Planner {
		t.Error("runner does not run on the App's store, targets and planner")
	}
	if got := a.Runner.Policy.MaxAttempts; got != 4 {
		t.Errorf("runner's max attempts = %d, want recovery.max_attempts 4", got)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Store.Ping(ctx); err == nil {
		t.Error("ledger still open after Close")
	}
}

// With Options.Store, New builds on that ledger and Close leaves it open.
func TestNewLeavesAGivenStoreOpen(t *testing.T) {
	ctx := context.Background()
	dsn, _ := testdb.New(t, "app")
	st, err := app.OpenStore(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, err := app.New(ctx, testConfig(t, dsn), app.Options{Store: st, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if a.Store != st {
		t.Fatal("App does not use the given store")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := st.Ping(ctx); err != nil {
		t.Errorf("given ledger closed by Close: %v", err)
	}
}

// The recovery pass runs on the App's pieces with the config's recovery
// section.
func TestRecoveryPass(t *testing.T) {
	ctx := context.Background()
	dsn, _ := testdb.New(t, "app")
	a, err := app.New(ctx, testConfig(t, dsn), app.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	p := a.RecoveryPass()
	switch {
	case p.Store != a.Store:
		t.Error("pass store is not the App's")
	case p.Runner != a.Runner:
		t.Error("pass runner is not the App's")
	case p.PRs != a.Bot:
		t.Error("pass does not check closed PRs through the bot")
	case p.Reporter == nil:
		t.Error("pass has no reporter")
	case p.Metrics != a.Metrics:
		t.Error("pass does not record into the App's metrics")
	case p.MaxRescues != 6 || p.Lease != 7*time.Minute:
		t.Errorf("pass max rescues %d, lease %s; want 6 and 7m from the config", p.MaxRescues, p.Lease)
	}
	// An empty ledger: the pass runs and touches nothing.
	res, err := p.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Lines) != 0 {
		t.Errorf("pass on an empty ledger touched %d applies", len(res.Lines))
	}
}

// Errors name the step that failed: the ledger, or the GitHub App.
func TestNewErrors(t *testing.T) {
	ctx := context.Background()
	dsn, _ := testdb.New(t, "app")
	tests := []struct {
		name string
		cfg  func(c *config.Config)
		want string
	}{
		{"unreachable ledger", func(c *config.Config) { c.Store.DSN = "root@tcp(127.0.0.1:1)/x?timeout=1s" }, "open store: "},
		{"no app id", func(c *config.Config) { c.GitHub.AppID = 0 }, "github.app_id"},
		{"bad key", func(c *config.Config) { c.GitHub.PrivateKey = "not a key" }, "github.private_key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, dsn)
			tc.cfg(cfg)
			a, err := app.New(ctx, cfg, app.Options{Logger: quiet()})
			if err == nil {
				a.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %q", err, tc.want)
			}
		})
	}
}

// The pieces record into the App's metrics: the runner's outcomes, and
// every call to the PlanetScale API (here: a branch password for the live
// schema, refused by a stand-in that knows no such database).
func TestMetricsWired(t *testing.T) {
	ctx := context.Background()
	dsn, _ := testdb.New(t, "app")
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"code":"not_found","message":"Not Found"}`)
	}))
	defer ps.Close()
	cfg := testConfig(t, dsn)
	tls := false
	cfg.Targets = []config.Target{{Repository: "acme/shop", Database: "shop", Environment: "production",
		PlanetScale: &config.PlanetScale{Organization: "acme", Database: "shop", Branch: "main",
			ServiceTokenID: "id", ServiceToken: "tok", APIURL: ps.URL + "/", TLS: &tls}}}
	a, err := app.New(ctx, cfg, app.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Runner.Metrics != a.Metrics {
		t.Error("the runner does not record into the App's metrics")
	}
	tg, err := a.Targets.Target(ctx, "acme/shop", "shop", "production")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.Engine.Live(ctx); err == nil {
		t.Fatal("Live against a stand-in that answers 404: want an error")
	}
	rec := httptest.NewRecorder()
	a.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if want := `tern_api_calls_total{api="planetscale",outcome="http_4xx"}`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("metrics lack %s", want)
	}
}
