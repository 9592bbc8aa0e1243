package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/internal/testdb"
)

// writeAppConfig writes a server config for the fake GitHub's App, with
// the given extra github keys, and returns its path.
func writeAppConfig(t *testing.T, gh *fakegithub.Server, storeDSN, extraGitHub string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tern.yaml")
	cfg := fmt.Sprintf("store:\n  dsn: %q\ngithub:\n  api_url: %q\n  app_id: %d\n  private_key: ${SECRET_TEST_KEY}\n%s",
		storeDSN, gh.URL, gh.AppID, extraGitHub)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SECRET_TEST_KEY", string(gh.PrivateKeyPEM))
	return path
}

// tern serve verifies every delivery, so it does not start without the
// webhook secret, and says which key is missing.
func TestServeRefusesWithoutWebhookSecret(t *testing.T) {
	gh, err := fakegithub.New()
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	dsn, _ := testdb.New(t, "cmdserve")
	path := writeAppConfig(t, gh, dsn, "")
	var stdout, stderr bytes.Buffer
	code := runServe(context.Background(), []string{"--config", path, "--listen", "127.0.0.1:0"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "github.webhook_secret: required") {
		t.Errorf("exit %d stderr %q, want 1 naming github.webhook_secret", code, stderr.String())
	}
	if strings.Contains(stderr.String(), string(gh.PrivateKeyPEM)) {
		t.Error("the private key reached the output")
	}
}

// tern recover reports to GitHub as the App but receives no deliveries: it
// runs without a webhook secret in the config.
func TestRecoverWithoutWebhookSecret(t *testing.T) {
	gh, err := fakegithub.New()
	if err != nil {
		t.Fatal(err)
	}
	defer gh.Close()
	dsn, _ := testdb.New(t, "cmdrecover")
	path := writeAppConfig(t, gh, dsn, "")
	var stdout, stderr bytes.Buffer
	code := recoverMain(context.Background(), []string{"--config", path}, &stdout, &stderr, func(string) string { return "" }, productionPass)
	if code != 0 || !strings.Contains(stdout.String(), "recovered=0 retrying=0 failed=0 rescued=0") {
		t.Errorf("exit %d stdout %q stderr %q, want 0 and an empty pass", code, stdout.String(), stderr.String())
	}
}
