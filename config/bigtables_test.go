package config

import (
	"strings"
	"testing"
	"time"
)

// TestMaxBlockingRowsAndProgressInterval: unset is 1,000,000 rows and the
// engine's default interval; 0 is kept (every blocking statement needs
// --allow-blocking); negatives are refused with their path.
func TestMaxBlockingRowsAndProgressInterval(t *testing.T) {
	base := "store:\n  dsn: root@tcp(h:1)/x\ntargets:\n  - repository: a/b\n    database: d\n    environment: e\n    mysql: {dsn: 'root@tcp(h:1)/d'%s}\n"
	for _, tt := range []struct {
		extra    string
		rows     int64
		interval time.Duration
		err      string
	}{
		{"", 1_000_000, 0, ""},
		{", max_blocking_rows: 0", 0, 0, ""},
		{", max_blocking_rows: 5000, progress_interval: 500ms", 5000, 500 * time.Millisecond, ""},
		{", max_blocking_rows: -1", 0, 0, "targets[0].mysql.max_blocking_rows: must be 0 or more"},
		{", progress_interval: -1s", 0, 0, "targets[0].mysql.progress_interval: must be 0 or more"},
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
			m := c.Targets[0].MySQL
			if m.BlockingRows() != tt.rows || m.ProgressInterval.D() != tt.interval {
				t.Fatalf("rows %d interval %s, want %d %s", m.BlockingRows(), m.ProgressInterval.D(), tt.rows, tt.interval)
			}
		})
	}
}
