package config

import (
	"strings"
	"testing"
)

// TestMySQLOnline: mysql.online is empty (direct DDL only) or pt-osc; any
// other value is refused with its path and the values allowed.
func TestMySQLOnline(t *testing.T) {
	base := "store:\n  dsn: root@tcp(h:1)/x\ntargets:\n  - repository: a/b\n    database: d\n    environment: e\n    mysql: {dsn: 'root@tcp(h:1)/d'%s}\n"
	for _, tt := range []struct {
		extra, want, err string
	}{
		{"", "", ""},
		{", online: pt-osc", OnlinePTOSC, ""},
		{", online: gh-ost", "", `targets[0].mysql.online: unknown online engine "gh-ost"; the only one is pt-osc (pt-online-schema-change), or leave it out for direct DDL`},
		{", online: PT-OSC", "", `targets[0].mysql.online: unknown online engine "PT-OSC"`},
	} {
		t.Run(tt.extra, func(t *testing.T) {
			c, err := Parse([]byte(strings.Replace(base, "%s", tt.extra, 1)), env(nil))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Targets[0].MySQL.Online; got != tt.want {
				t.Fatalf("online = %q, want %q", got, tt.want)
			}
		})
	}
}
