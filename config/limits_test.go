package config

import (
	"strings"
	"testing"
	"time"
)

const limitsConfig = `
store:
  dsn: tern@tcp(db:3306)/tern
targets:
  - repository: acme/shop
    database: shop
    environment: staging
    allowed_engines: [InnoDB, MyISAM]
    mysql:
      dsn: app@tcp(staging:3306)/shop
limits:
  max_file_bytes: 2048
  max_total_bytes: 4096
  max_tables: 10
  plan_timeout: 30s
`

func TestLimitsAndAllowedEngines(t *testing.T) {
	c, err := Parse([]byte(limitsConfig), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := Limits{MaxFileBytes: 2048, MaxTotalBytes: 4096, MaxTables: 10, PlanTimeout: Duration(30 * time.Second)}
	if c.Limits != want {
		t.Errorf("limits = %+v, want %+v", c.Limits, want)
	}
	if got := c.Targets[0].AllowedEngines; len(got) != 2 || got[0] != "InnoDB" || got[1] != "MyISAM" {
		t.Errorf("allowed_engines = %v", got)
	}
}

func TestLimitsAndAllowedEnginesRefused(t *testing.T) {
	tests := []struct{ from, to, want string }{
		{"max_tables: 10", "max_tables: -1", "limits.max_tables: must not be negative"},
		{"max_file_bytes: 2048", "max_file_bytes: -5", "limits.max_file_bytes: must not be negative"},
		{"plan_timeout: 30s", "plan_timeout: -1s", "limits.plan_timeout: must not be negative"},
		{"plan_timeout: 30s", "plan_timout: 30s", `unknown key "plan_timout" (did you mean "plan_timeout"?)`},
		{"[InnoDB, MyISAM]", "[InnoDB, CONNECT]", `targets[0].allowed_engines[1]: "CONNECT" is not an engine tern plans`},
	}
	for _, tc := range tests {
		_, err := Parse([]byte(strings.Replace(limitsConfig, tc.from, tc.to, 1)), env(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.to, err, tc.want)
		}
	}
}
