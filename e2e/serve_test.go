package e2e

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/internal/testdb"
)

// `tern serve` over HTTP: /healthz answers 200, /metrics serves tern_
// metrics, a delivery with a bad or missing signature gets 401 and is not
// recorded, a good one is accepted (a redelivery answered 2xx once more),
// and SIGTERM stops the server cleanly.
func TestServeHTTP(t *testing.T) {
	w := newWorld(t)
	_, liveName := testdb.Open(t, "e2e_serve_live")
	srv := w.serve(w.config(mysqlTarget("shop", "staging", liveDSN(t, liveName), "10s"), "  lease: 1m"))

	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz: %d %q, want 200", code, body)
	}

	w.gh.OpenPR(repoName, 4, headSHA, map[string]string{"README.md": "no schema here"})
	payload, err := fakegithub.PRPayload("opened", repoName, 4, headSHA, installation)
	if err != nil {
		t.Fatal(err)
	}
	post := func(id string, header map[string]string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.url+"/webhook", bytes.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "pull_request")
		req.Header.Set("X-GitHub-Delivery", id)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		name   string
		header map[string]string
	}{
		{"wrong secret", map[string]string{"X-Hub-Signature-256": fakegithub.Sign("not-the-secret", payload)}},
		{"garbage signature", map[string]string{"X-Hub-Signature-256": "sha256=00"}},
		{"no signature", nil},
	} {
		id := "e2e-bad-" + strings.ReplaceAll(c.name, " ", "-")
		if code := post(id, c.header); code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", c.name, code)
		}
		var n int
		if err := w.st.DB().QueryRow("SELECT COUNT(*) FROM tern_deliveries WHERE id = ?", id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s: the refused delivery was recorded", c.name)
		}
	}
	good := map[string]string{"X-Hub-Signature-256": fakegithub.Sign(webhookSecret, payload)}
	if code := post("e2e-good", good); code/100 != 2 {
		t.Errorf("signed delivery: %d, want 2xx", code)
	}
	if code := post("e2e-good", good); code/100 != 2 {
		t.Errorf("redelivery: %d, want 2xx", code)
	}
	w.waitDelivered("e2e-good")

	code, metrics := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		"# TYPE tern_webhook_deliveries_total counter",
		`tern_webhook_deliveries_total{event="pull_request",outcome="bad_signature"} 3`,
		`tern_webhook_deliveries_total{event="pull_request",outcome="accepted"} 1`,
		`tern_webhook_deliveries_total{event="pull_request",outcome="duplicate"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := srv.wait(t); code != 0 {
		t.Errorf("tern serve exited %d after SIGTERM, want 0", code)
	}
	w.noSecrets("tern serve", srv.stdout.String()+srv.stderr.String())
}

// `tern serve` refuses to start without the GitHub App's keys, naming the
// missing key.
func TestServeNeedsGitHubApp(t *testing.T) {
	w := newWorld(t)
	cfg := writeFile(t, "tern-server.yaml", "store:\n  dsn: ${TERN_STORE_DSN}\ngithub:\n  webhook_secret: x\n")
	stdout, stderr, code := w.run("serve", "--config", cfg, "--listen", "127.0.0.1:0")
	if code == 0 || !strings.Contains(stderr, "github.app_id: required") || !strings.Contains(stderr, "github.private_key: required") {
		t.Errorf("exit %d, stderr:\n%s\nstdout:\n%s\nwant non-zero naming github.app_id and github.private_key", code, stderr, stdout)
	}
}
