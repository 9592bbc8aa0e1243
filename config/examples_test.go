package config

import (
	"os"
	"testing"
)

// TestExamples keeps the example configs that README points to valid.
func TestExamples(t *testing.T) {
	b, err := os.ReadFile("../examples/tern-server.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"TERN_STORE_DSN":          "tern:pw@tcp(db:3306)/tern",
		"TERN_GITHUB_APP_ID":      "123456",
		"TERN_GITHUB_PRIVATE_KEY": "-----BEGIN RSA PRIVATE KEY-----\nx\n-----END RSA PRIVATE KEY-----\n",
		"TERN_WEBHOOK_SECRET":     "s",
		"SHOP_STAGING_DSN":        "app:pw@tcp(staging:3306)/shop",
		"PS_TOKEN_ID":             "id",
		"PS_TOKEN":                "tok",
	}
	c, err := Parse(b, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("examples/tern-server.yaml: %v", err)
	}
	if len(c.Targets) != 2 || c.Targets[1].PlanetScale == nil {
		t.Errorf("targets = %+v", c.Targets)
	}
	b, err = os.ReadFile("../examples/tern.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseRepo(b); err != nil {
		t.Fatalf("examples/tern.yaml: %v", err)
	}
}
