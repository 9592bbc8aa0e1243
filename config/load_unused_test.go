package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An unset ${VAR} in a key the command says it does not use leaves the
// value empty; anywhere else, and without the exemption, it is an error
// naming the key.
func TestLoadUnusedKeys(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tern.yaml")
	body := "store:\n  dsn: ${TERN_TEST_LOAD_DSN}\ngithub:\n  webhook_secret: ${TERN_TEST_LOAD_UNSET_SECRET}\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TERN_TEST_LOAD_DSN", "u:p@tcp(127.0.0.1:3306)/tern")

	c, err := Load(p, "github.webhook_secret")
	if err != nil {
		t.Fatalf("Load with github.webhook_secret unused: %v", err)
	}
	if c.GitHub.WebhookSecret != "" || c.Store.DSN != "u:p@tcp(127.0.0.1:3306)/tern" {
		t.Errorf("loaded %+v %+v", c.GitHub, c.Store)
	}

	for _, unused := range [][]string{nil, {"store.dsn"}} {
		_, err := Load(p, unused...)
		if err == nil || !strings.Contains(err.Error(), "github.webhook_secret: environment variable TERN_TEST_LOAD_UNSET_SECRET is not set") {
			t.Errorf("Load(%v): %v, want the unset variable named with its key", unused, err)
		}
	}
}

// Load names the file and the line of a misspelt key, as a compiler does.
func TestLoadNamesFileAndLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tern-server.yaml")
	if err := os.WriteFile(p, []byte("listen: \":8080\"\nstore:\n  dsn: root@tcp(h:1)/x\ngithub:\n  app_idd: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if want := p + `:5: unknown key "app_idd" (did you mean "app_id"?)`; err == nil || err.Error() != want {
		t.Errorf("Load: %v, want %s", err, want)
	}
}
