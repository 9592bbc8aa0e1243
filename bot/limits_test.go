package bot

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/fakegithub"
)

// A PR whose schema files are over a plan limit (issue 12.4) gets a
// failed plan naming the limit and by how much, and nothing is created on
// the target.
func TestPlanOverTheTableLimit(t *testing.T) {
	h := newHarness(t)
	var b strings.Builder
	for i := range 5001 {
		fmt.Fprintf(&b, "CREATE TABLE flood_%d (id int PRIMARY KEY);\n", i)
	}
	f := files(usersV1)
	f["db/shop/flood.sql"] = b.String()
	h.openPR(7, sha1, f)
	run := h.waitCheck(sha1, "tern/shop/staging", "Plan failed")
	want := "schema files in db/shop: 5002 tables, over the limit of 5000 (limits.max_tables) by 2; nothing was sent to a server"
	out := run.GetOutput()
	if s := out.GetTitle() + out.GetSummary() + out.GetText(); !strings.Contains(s, want) {
		t.Errorf("check does not say %q:\n%s", want, s)
	}
	var n int
	if err := h.staging.QueryRow("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("staging has %d tables, want users alone", n)
	}
}

// A schema file over limits.max_file_bytes, or files over
// limits.max_total_bytes together, are refused from the sizes the Git tree
// lists: no blob is downloaded (a PR author could push gigabytes).
func TestPlanOverTheByteLimitsDownloadsNothing(t *testing.T) {
	for _, tt := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"one file", map[string]string{"db/shop/big.sql": strings.Repeat("-- padding\n", 100_000)},
			"db/shop/big.sql: 1100000 bytes, over the limit of 1048576 (limits.max_file_bytes) by 51424; nothing was sent to a server"},
		{"all files", func() map[string]string {
			m := map[string]string{}
			for i := range 17 {
				m[fmt.Sprintf("db/shop/pad_%02d.sql", i)] = strings.Repeat("-- padding\n", 95_000)
			}
			return m
		}(), "schema files in db/shop: 17765110 bytes, over the limit of 16777216 (limits.max_total_bytes) by 987894; nothing was sent to a server"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			f := files(usersV1)
			for k, v := range tt.files {
				f[k] = v
			}
			h.openPR(7, sha1, f)
			run := h.waitCheck(sha1, "tern/shop/staging", "Plan failed")
			out := run.GetOutput()
			if s := out.GetTitle() + out.GetSummary() + out.GetText(); !strings.Contains(s, tt.want) {
				t.Errorf("check does not say %q:\n%s", tt.want, s)
			}
			for _, r := range h.gh.Requests() {
				for p, data := range tt.files {
					if strings.HasSuffix(r.Path, "/git/blobs/"+fakegithub.BlobSHA(data)) {
						t.Errorf("downloaded %s, over the limits: %s %s", p, r.Method, r.Path)
					}
				}
			}
		})
	}
}
