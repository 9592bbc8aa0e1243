package config

import (
	"strings"
	"testing"
	"time"
)

// retention: defaults to 14 d / 30 d / 180 d, and refuses keeping
// deliveries for less than GitHub's three days of delivery log.
func TestRetention(t *testing.T) {
	base := "store: {dsn: \"u:p@tcp(h:3306)/t\"}\n"
	c, err := Parse([]byte(base), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Retention; r.Deliveries.D() != 14*24*time.Hour || r.SupersededPlans.D() != 30*24*time.Hour || r.Events.D() != 180*24*time.Hour {
		t.Errorf("defaults %+v", r)
	}
	_, err = Parse([]byte(base+"retention:\n  deliveries: 24h\n"), func(string) (string, bool) { return "", false })
	if err == nil || !strings.Contains(err.Error(), "retention.deliveries: at least 72h") {
		t.Errorf("deliveries: 24h: %v, want refused naming retention.deliveries", err)
	}
}
