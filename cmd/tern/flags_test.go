package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ternhq/tern/config"
)

// TestLoggerMasksSecrets: whatever reaches a command's log, a secret of the
// config does not, in either format.
func TestLoggerMasksSecrets(t *testing.T) {
	cfg := &config.Config{
		Store:  config.Store{DSN: "tern:ledger-pass-1@tcp(db:3306)/tern"},
		GitHub: config.GitHub{PrivateKey: "-----BEGIN KEY-----\nAAAABBBBCCCCDDDD\n-----END KEY-----\n", WebhookSecret: "hook-secret-2"},
		Targets: []config.Target{{MySQL: &config.MySQL{DSN: "app:target-pass-3@tcp(h:3306)/shop"}},
			{PlanetScale: &config.PlanetScale{ServiceToken: "pscale_tkn_4"}}},
	}
	for _, json := range []bool{true, false} {
		var buf bytes.Buffer
		log := newLogger(&buf, cfg, json)
		log.Error("apply failed", "dsn", "app:target-pass-3@tcp(h:3306)/shop",
			"err", errors.New("auth ledger-pass-1 hook-secret-2 pscale_tkn_4 key AAAABBBBCCCCDDDD"), "apply", 12)
		out := buf.String()
		for _, s := range []string{"ledger-pass-1", "target-pass-3", "hook-secret-2", "pscale_tkn_4", "AAAABBBBCCCCDDDD"} {
			if strings.Contains(out, s) {
				t.Errorf("json=%v: log line leaks %q: %s", json, s, out)
			}
		}
		if !strings.Contains(out, "apply failed") || !strings.Contains(out, "12") {
			t.Errorf("json=%v: log line lost its content: %s", json, out)
		}
	}
}

func TestActionArgs(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"INPUT_ARGS": "--limit 5"}, ""},
		{map[string]string{"GITHUB_ACTIONS": "true"}, ""},
		{map[string]string{"GITHUB_ACTIONS": "true", "INPUT_ARGS": "  --dir .  -d shop\n-e staging "}, "--dir|.|-d|shop|-e|staging"},
		{map[string]string{"GITHUB_ACTIONS": "true", "INPUT_ARGS": `--dir "db checkout" --dsn 'u:p w@tcp(h:3306)/shop' -e it\'s`}, "--dir|db checkout|--dsn|u:p w@tcp(h:3306)/shop|-e|it's"},
		{map[string]string{"GITHUB_ACTIONS": "true", "INPUT_ARGS": `--dir "$HOME" $(rm -rf /)`}, "--dir|$HOME|$(rm|-rf|/)"},
	}
	for _, tt := range tests {
		args, err := actionArgs(func(k string) string { return tt.env[k] })
		if err != nil {
			t.Fatalf("actionArgs(%v): %v", tt.env, err)
		}
		got := strings.Join(args, "|")
		if got != tt.want {
			t.Errorf("actionArgs(%v) = %q, want %q", tt.env, got, tt.want)
		}
	}
}

func TestActionArgsUnterminatedQuote(t *testing.T) {
	env := map[string]string{"GITHUB_ACTIONS": "true", "INPUT_ARGS": `--dir "db`}
	if _, err := actionArgs(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), `unterminated " quote`) {
		t.Errorf("err = %v", err)
	}
}
