package config

import (
	"testing"
	"time"
)

// TestRecoveryIntervalDefault: `tern serve` retries by itself unless the
// config turns the loop off (CONTRACT §2: interval defaults to 30s; 0 =
// only `tern recover` runs passes).
func TestRecoveryIntervalDefault(t *testing.T) {
	const store = "store:\n  dsn: root@tcp(h:1)/x\n"
	tests := []struct {
		name, yaml string
		want       time.Duration
	}{
		{"no recovery section", store, 30 * time.Second},
		{"recovery section without interval", store + "recovery:\n  max_attempts: 3\n", 30 * time.Second},
		{"turned off", store + "recovery:\n  interval: 0s\n", 0},
		{"turned off with a bare 0", store + "recovery:\n  interval: 0\n", 0},
		{"set", store + "recovery:\n  interval: 1m\n", time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Recovery.Interval.D(); got != tt.want {
				t.Errorf("recovery.interval = %s, want %s", got, tt.want)
			}
		})
	}
}
