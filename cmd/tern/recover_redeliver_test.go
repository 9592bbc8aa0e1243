package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/app"
	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/store"
)

// A recovery pass asks GitHub to redeliver the webhooks that failed while
// no server answered: GitHub sends them to the server (here a recorder
// standing in for `tern serve`) under their original X-GitHub-Delivery.
// It also prunes what the retention policy no longer keeps.
func TestRecoverAsksForMissedDeliveries(t *testing.T) {
	storeDSN, _ := testdb.New(t, "redeliver_store")
	st, err := app.OpenStore(context.Background(), storeDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.RecordDelivery(context.Background(), store.Delivery{ID: "ancient", Event: "ping", Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().Exec("UPDATE tern_deliveries SET state = 'done', received_at = ?", time.Now().UTC().Add(-30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	gh, err := fakegithub.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)
	var mu sync.Mutex
	var got []string
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("X-GitHub-Delivery"))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(server.Close)
	gh.SetHook("http://127.0.0.1:1/webhook", "s") // the server is down
	guid, _ := gh.SendWebhook(context.Background(), "ping", []byte(`{"zen":"x","hook_id":1}`))
	gh.SetHook(server.URL, "s")

	cfgPath := filepath.Join(t.TempDir(), "tern.yaml")
	cfg := fmt.Sprintf("store:\n  dsn: %q\ngithub:\n  api_url: %q\n  app_id: %d\n  private_key: ${E2E_KEY}\n", storeDSN, gh.URL, gh.AppID)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("E2E_KEY", string(gh.PrivateKeyPEM))
	var stdout, stderr bytes.Buffer
	if code := recoverMain(context.Background(), []string{"--config", cfgPath}, &stdout, &stderr, func(string) string { return "" }, productionPass); code != 0 {
		t.Fatalf("tern recover exit %d\n%s", code, stderr.String())
	}
	if known, err := st.KnownDeliveries(context.Background(), []string{"ancient"}); err != nil || known["ancient"] {
		t.Errorf("the 30-day-old delivery was not pruned by the pass (%v)", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0] != guid {
		t.Errorf("the server received %q, want the missed delivery %s once\n%s", got, guid, stderr.String())
	}
}
