package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// The server config's limits: and a target's allowed_engines reach
// `tern plan` (issue 12.3, 12.4).
func TestRunPlanLimitsAndEngines(t *testing.T) {
	ctx := context.Background()
	const two = "CREATE TABLE a (id int PRIMARY KEY);\nCREATE TABLE b (id int PRIMARY KEY) ENGINE=MyISAM;\n"
	withConfig := func(t *testing.T, extra string) []string {
		args := planFixture(t, two)
		f, err := os.OpenFile(args[1], os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(extra); err != nil {
			t.Fatal(err)
		}
		return args
	}
	tests := []struct {
		name, extra string
		code        int
		want        string
	}{
		{"max_tables", "limits:\n  max_tables: 1\n", 1, "schema files in db/shop: 2 tables, over the limit of 1 (limits.max_tables) by 1; nothing was sent to a server"},
		{"max_file_bytes", "limits:\n  max_file_bytes: 10\n", 1, "db/shop/schema.sql: 88 bytes, over the limit of 10 (limits.max_file_bytes) by 78"},
		{"default engines", "", 1, "table b: the shadow server created it with ENGINE=MyISAM (allowed_engines: InnoDB)"},
		{"allowed_engines", "    allowed_engines: [InnoDB, MyISAM]\n", 2, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := withConfig(t, tc.extra)
			var out, errOut bytes.Buffer
			if code := runPlan(ctx, args, &out, &errOut); code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tc.code, errOut.String())
			}
			if !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("stderr %q, want %q", errOut.String(), tc.want)
			}
		})
	}
}
