package bot

import (
	"fmt"
	"strings"
	"testing"
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
