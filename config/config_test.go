package config

import (
	"strings"
	"testing"
	"time"
)

const full = `
listen: ":9090"
store:
  dsn: ${TERN_STORE_DSN}
github:
  app_id: ${TERN_GITHUB_APP_ID}
  private_key: ${TERN_GITHUB_PRIVATE_KEY}
  webhook_secret: ${TERN_WEBHOOK_SECRET}
targets:
  - repository: acme/shop
    database: shop
    environment: staging
    mysql:
      dsn: ${SHOP_STAGING_DSN}
  - repository: acme/shop
    database: shop
    environment: production
    planetscale:
      organization: acme
      database: shop
      service_token_id: ${PS_TOKEN_ID}
      service_token: ${PS_TOKEN}
      tls: false
recovery:
  interval: 30s
  max_attempts: 3
`

const pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\nline2: with colon\n-----END RSA PRIVATE KEY-----\n"

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

var fullEnv = map[string]string{
	"TERN_STORE_DSN":          "tern:s3cret@tcp(db:3306)/tern",
	"TERN_GITHUB_APP_ID":      "1234",
	"TERN_GITHUB_PRIVATE_KEY": pem,
	"TERN_WEBHOOK_SECRET":     "hook",
	"SHOP_STAGING_DSN":        "app:pw@tcp(staging:3306)/shop?timeout=5s",
	"PS_TOKEN_ID":             "tokid",
	"PS_TOKEN":                "pscale_tkn_x",
}

func TestParseFull(t *testing.T) {
	c, err := Parse([]byte(full), env(fullEnv))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != ":9090" || c.GitHub.AppID != 1234 || c.GitHub.PrivateKey != pem {
		t.Errorf("got listen=%q app_id=%d key=%q", c.Listen, c.GitHub.AppID, c.GitHub.PrivateKey)
	}
	if c.GitHub.APIURL != "https://api.github.com/" {
		t.Errorf("api_url default = %q", c.GitHub.APIURL)
	}
	st := c.Targets[0].MySQL
	if st.LockWaitTimeout.D() != 10*time.Second || st.DSN != fullEnv["SHOP_STAGING_DSN"] {
		t.Errorf("mysql target = %+v", st)
	}
	ps := c.Targets[1].PlanetScale
	if ps.UseTLS() || ps.Branch != "main" || ps.APIURL != "https://api.planetscale.com/" {
		t.Errorf("planetscale target = %+v", ps)
	}
	r := c.Recovery
	if r.Interval.D() != 30*time.Second || r.MaxAttempts != 3 || r.BackoffBase.D() != time.Minute ||
		r.BackoffMax.D() != 30*time.Minute || r.Lease.D() != 5*time.Minute {
		t.Errorf("recovery = %+v", r)
	}
	if tg, ok := c.Target("ACME/shop", "shop", "production"); !ok || tg.PlanetScale == nil {
		t.Error("Target lookup failed")
	}
	secrets := strings.Join(c.Secrets(), "|")
	for _, s := range []string{"s3cret", "pw", pem, "hook", "pscale_tkn_x"} {
		if !strings.Contains(secrets, s) {
			t.Errorf("Secrets() misses %q", s)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"unset var", "store:\n  dsn: ${NOPE}\n", nil, "store.dsn: environment variable NOPE is not set"},
		{"unknown key", "store:\n  dsn: root@tcp(h:1)/x\n  dns: y\n", nil, `line 3: unknown key "dns" (did you mean "dsn"?)`},
		{"unknown top-level key before its variables", "storr:\n  dsn: ${NOPE}\n", nil, `line 1: unknown key "storr" (did you mean "store"?)`},
		{"unknown far key", "stuff: 1\n", nil, `line 1: unknown key "stuff" (known: listen, store, github, targets, recovery, limits, retention)`},
		{"duration without unit", "targets:\n  - repository: a/b\n    database: d\n    environment: e\n    mysql:\n      dsn: root@tcp(h:1)/d\n      lock_wait_timeout: 10\n", nil,
			`line 7: targets[0].mysql.lock_wait_timeout: invalid duration "10" (a number needs a unit: 10s)`},
		{"target dsn", "store:\n  dsn: root@tcp(h:1)/x\ntargets:\n  - repository: a/b\n    database: d\n    environment: e\n    mysql:\n      lock_wait_timeout: 5s\n", nil, "targets[0].mysql.dsn: required"},
		{"second target", "store:\n  dsn: root@tcp(h:1)/x\ntargets:\n  - repository: a/b\n    database: d\n    environment: e\n    mysql: {dsn: 'root@tcp(h:1)/d'}\n  - repository: a/b\n    database: d\n    environment: f\n", nil, "targets[1]: one of mysql or planetscale is required"},
		{"bad repo", "store:\n  dsn: root@tcp(h:1)/x\ntargets:\n  - repository: shop\n    database: d\n    environment: e\n    mysql: {dsn: 'root@tcp(h:1)/d'}\n", nil, `targets[0].repository: "shop" is not owner/name`},
		{"ps token", "store:\n  dsn: root@tcp(h:1)/x\ntargets:\n  - repository: a/b\n    database: d\n    environment: e\n    planetscale: {organization: o, database: d, service_token_id: i}\n", nil, "targets[0].planetscale.service_token: required"},
		{"bad duration", "store:\n  dsn: root@tcp(h:1)/x\nrecovery:\n  lease: soon\n", nil, `invalid duration "soon"`},
		{"var in list", "store:\n  dsn: root@tcp(h:1)/x\ntargets:\n  - repository: a/b\n    database: d\n    environment: e\n    mysql: {dsn: '${X}'}\n", nil, "targets[0].mysql.dsn: environment variable X is not set"},
		{"max attempts", "store:\n  dsn: root@tcp(h:1)/x\nrecovery:\n  max_attempts: -1\n", nil, "recovery.max_attempts: must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// store.dsn is required by the commands that use the ledger
// (RequireStore), not by every reader of the config: tern plan has none.
func TestStoreRequiredOnlyByItsUsers(t *testing.T) {
	c, err := Parse([]byte("listen: x\n"), env(nil))
	if err != nil {
		t.Fatalf("a config without store: %v", err)
	}
	if err := c.RequireStore(); err == nil || !strings.Contains(err.Error(), "store.dsn: required") {
		t.Errorf("RequireStore = %v, want store.dsn: required", err)
	}
}

func TestDSNErrorHidesPassword(t *testing.T) {
	_, err := Parse([]byte("store:\n  dsn: 'user:hunter2@tcp(h:1/x'\n"), env(nil))
	if err == nil {
		t.Fatal("want error")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

func TestParseRepo(t *testing.T) {
	r, err := ParseRepo([]byte("databases:\n  - name: shop\n    schema_dir: db/shop/\n    environments: [staging, production]\napply_requirements: [approved]\nlint:\n  checks: {no-primary-key: error}\n  max_index_bytes: 1000\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Lint.Checks["no-primary-key"] != LintError || r.Lint.MaxIndexBytes != 1000 {
		t.Errorf("lint: %+v", r.Lint)
	}
	db, ok := r.Database("shop")
	if !ok || db.SchemaDirClean() != "db/shop" || db.Previous("production") != "staging" || db.Previous("staging") != "" {
		t.Fatalf("got %+v", r)
	}
	bad := []struct{ yaml, want string }{
		{"", "tern.yaml: file is empty"},
		{"databases: []\n", "tern.yaml: databases: at least one database is required"},
		{"databases:\n  - name: shop\n    environments: [a]\n", "tern.yaml: databases[0].schema_dir: required"},
		{"databases:\n  - name: shop\n    schema_dir: db\n", "tern.yaml: databases[0].environments: at least one environment"},
		{"databases:\n  - name: shop\n    schema_dir: ../etc\n    environments: [a]\n", "must be a path inside the repository"},
		{"databases:\n  - name: shop\n    schema_dir: db\n    environments: [a, a]\n", `environments[1]: environment "a" is listed twice`},
		{"databases:\n  - name: shop\n    schema_dir: db\n    environments: [a]\napply_requirements: [green]\n", `apply_requirements[0]: unknown requirement "green"`},
		{"databases:\n  - name: shop\n    schema_dir: db\n    envs: [a]\n", `tern.yaml:4: unknown key "envs" (known: name, schema_dir, environments)`},
		{"databases:\n  - name: shop\n    schema_dir: db\n    enviroments: [a]\n", `tern.yaml:4: unknown key "enviroments" (did you mean "environments"?)`},
		{"database:\n  - name: shop\n", `tern.yaml:1: unknown key "database" (did you mean "databases"?)`},
		{"databases:\n  - name: shop\n    schema_dir: db\n    environments: [a]\nlint:\n  checks:\n    drop-index: loud\n", `tern.yaml: lint.checks.drop-index: unknown level "loud" (known: error, warning, off)`},
		{"databases:\n  - name: shop\n    schema_dir: db\n    environments: [a]\nlint:\n  charsett: latin1\n", `tern.yaml:6: unknown key "charsett" (did you mean "charset"?)`},
	}
	for _, tt := range bad {
		_, err := ParseRepo([]byte(tt.yaml))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseRepo(%q) = %v, want %q", tt.yaml, err, tt.want)
		}
	}
}
