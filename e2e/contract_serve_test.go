package e2e

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/internal/testdb"
)

// With recovery.interval > 0, `tern serve` runs the recovery loop itself
// (CONTRACT §1-§2): a transient failure is retried without any `tern
// recover`, ends Applied, and one comment says `applied after 2 attempts`.
func TestContractServeRecoveryLoop(t *testing.T) {
	c := newContract(t, "  interval: 1s\n  lease: 1m\n  max_attempts: 4\n  backoff_base: 1s\n  backoff_max: 1s", "1s")
	head := sha(500)
	c.openPR(50, head, shopFiles(usersV2))
	c.waitCheck(head, "tern/shop/staging", "Awaiting apply")
	release := holdTable(t, c.staging, "users")
	c.comment(50, "alice", "/tern apply -e staging")
	run := c.waitCheck(head, "tern/shop/staging", "Failed (retrying...)")
	if !retryingTitle(1, 4).MatchString(run.GetOutput().GetTitle()) {
		t.Errorf("retrying title %q", run.GetOutput().GetTitle())
	}
	release()
	c.waitCheck(head, "tern/shop/staging", "Applied")
	c.wantCheck(head, "tern/shop/staging", "completed", "success", "Applied")
	a := c.latestApply(50, "staging")
	waitFor(t, "the outcome comment", func() bool {
		return len(c.botCommentsWith(50, fmt.Sprintf("applied after %d attempts", a.Attempt))) == 1
	})
	if a.Attempt < 2 {
		t.Errorf("apply completed on attempt %d, want a retry", a.Attempt)
	}
}

// `tern serve` reads its config from TERN_CONFIG when --config is absent,
// listens on the config's `listen` when --listen is absent, and takes the
// App's key from private_key_file: it answers /healthz and autoplans a PR
// (check runs written as the App).
func TestContractServeConfigFromEnvironment(t *testing.T) {
	w := newWorld(t)
	_, liveName := testdb.Open(t, "e2e_envcfg_live")
	keyFile := writeFile(t, "app.pem", string(w.gh.PrivateKeyPEM))
	delete(w.env, "TERN_GITHUB_PRIVATE_KEY")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	w.env["SHOP_STAGING_DSN"] = liveDSN(t, liveName)
	cfg := writeFile(t, "tern-server.yaml", fmt.Sprintf(`listen: %q
store:
  dsn: ${TERN_STORE_DSN}
github:
  api_url: %s
  app_id: ${TERN_GITHUB_APP_ID}
  private_key_file: %s
  webhook_secret: ${TERN_WEBHOOK_SECRET}
targets:
  - repository: acme/shop
    database: shop
    environment: staging
    mysql:
      dsn: ${SHOP_STAGING_DSN}
`, addr, w.gh.URL, keyFile))
	p := w.startEnv([]string{"TERN_CONFIG=" + cfg}, "serve")
	srv := &server{proc: p, url: "http://" + addr}
	waitFor(t, "tern serve on the config's listen address", func() bool {
		select {
		case <-p.done:
			t.Fatalf("tern serve exited: %v\n%s", p.err, p.stderr.String())
		default:
		}
		resp, err := http.Get(srv.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	w.gh.SetBase(repoName, map[string]string{"tern.yaml": ternYAML})
	w.gh.OpenPR(repoName, 51, sha(510), map[string]string{"tern.yaml": ternYAML, "db/shop/users.sql": usersV2})
	body, err := fakegithub.PRPayload("opened", repoName, 51, sha(510), installation)
	if err != nil {
		t.Fatal(err)
	}
	w.waitDelivered(w.deliver(srv, "pull_request", body))
	run := w.gh.LatestCheckRun(repoName, sha(510), "tern/shop/staging")
	if run == nil || !strings.HasPrefix(run.GetOutput().GetTitle(), "Awaiting apply") {
		t.Errorf("staging check after autoplan: %+v, want Awaiting apply", run)
	}
	w.noSecrets("tern serve", p.stdout.String()+p.stderr.String())
}
