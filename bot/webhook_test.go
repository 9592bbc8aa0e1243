package bot

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/store"
)

// A Bot built without github.webhook_secret (as `tern recover` builds one
// to report) is valid, but its handler refuses every delivery rather than
// accept one it cannot verify, and stores nothing.
func TestNoWebhookSecretRefusesDeliveries(t *testing.T) {
	ctx := context.Background()
	dsn, _ := testdb.New(t, "bot_nosecret")
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	gh, err := fakegithub.New()
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	cfg, err := config.Parse([]byte(fmt.Sprintf("store: {dsn: %q}\ngithub:\n  api_url: %q\n  app_id: %d\n  private_key: ${KEY}\n",
		dsn, gh.URL, gh.AppID)), func(string) (string, bool) { return string(gh.PrivateKeyPEM), true })
	if err != nil {
		t.Fatal(err)
	}
	if err := RequireWebhookSecret(cfg); err == nil {
		t.Error("RequireWebhookSecret accepted a config without the secret")
	}
	b, err := New(Options{Config: cfg, Store: st, Runner: noRunner{}, Targets: noTargets{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("New without a webhook secret: %v", err)
	}
	srv := httptest.NewServer(b.Handler())
	defer srv.Close()
	body, err := fakegithub.PRPayload("opened", repoName, 2, sha1, inst)
	if err != nil {
		t.Fatal(err)
	}
	for _, signedWith := range []string{"", "anything"} {
		resp, err := fakegithub.Deliver(ctx, srv.URL+"/webhook", "pull_request", "d-"+signedWith, signedWith, body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("delivery signed with %q: status %d, want 503", signedWith, resp.StatusCode)
		}
	}
	var n int
	if err := st.DB().QueryRow("SELECT COUNT(*) FROM tern_deliveries").Scan(&n); err != nil || n != 0 {
		t.Errorf("%d deliveries stored (%v), want 0", n, err)
	}
}
