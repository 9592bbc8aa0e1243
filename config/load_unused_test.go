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

// LoadTarget reads only the targets a command uses: the others' unset
// variables are no error, and a kept target's error names its index in
// the file.
func TestLoadTarget(t *testing.T) {
	p := filepath.Join(t.TempDir(), "tern-server.yaml")
	body := "targets:\n" +
		"  - {repository: a/b, database: shop, environment: production, planetscale: {organization: o, database: d, service_token_id: \"${TERN_TEST_UNSET_1}\", service_token: \"${TERN_TEST_UNSET_2}\"}}\n" +
		"  - {repository: a/b, database: shop, environment: staging, mysql: {dsn: \"${TERN_TEST_LOAD_TARGET_DSN}\"}}\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	staging := func(_, db, env string) bool { return db == "shop" && env == "staging" }
	t.Setenv("TERN_TEST_LOAD_TARGET_DSN", "u:p@tcp(127.0.0.1:3306)/shop")
	c, err := LoadTarget(p, staging)
	if err != nil {
		t.Fatalf("LoadTarget: %v", err)
	}
	if len(c.Targets) != 1 || c.Targets[0].Environment != "staging" {
		t.Errorf("targets: %+v", c.Targets)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "TERN_TEST_UNSET_1 is not set") {
		t.Errorf("Load reads every target: %v", err)
	}
	t.Setenv("TERN_TEST_LOAD_TARGET_DSN", "")
	if _, err := LoadTarget(p, staging); err == nil || !strings.Contains(err.Error(), "targets[1].mysql.dsn: required") {
		t.Errorf("LoadTarget with the kept target's DSN empty: %v, want targets[1].mysql.dsn: required", err)
	}
}
