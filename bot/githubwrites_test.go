package bot

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// twentyTables is the users table of the live schema plus 20 new tables:
// a plan of 20 statements.
func twentyTables() map[string]string {
	f := files(usersV1)
	for i := 1; i <= 20; i++ {
		f[fmt.Sprintf("db/shop/t%02d.sql", i)] = fmt.Sprintf("CREATE TABLE t%02d (\n  id bigint NOT NULL,\n  PRIMARY KEY (id)\n);\n", i)
	}
	return f
}

// applyWrites applies a 20-statement plan to staging and returns the
// GitHub writes (requests other than GET) from the /tern apply comment to
// the apply's last report.
func applyWrites(t *testing.T, h *harness) int {
	t.Helper()
	h.openPR(5, sha1, twentyTables())
	from := len(h.gh.Requests())
	h.comment(5, "alice", "User", "/tern apply -e staging")
	h.waitCheck(sha1, "tern/shop/staging", "Applied")
	h.waitReported(5, "staging")
	n := writes(h.gh.Requests()[from:])
	var applyComment string
	for _, c := range h.botComments(5) {
		if strings.Contains(c, "<!-- tern:apply:") {
			applyComment = c
		}
	}
	for i := 1; i <= 20; i++ {
		if !strings.Contains(applyComment, fmt.Sprintf("t%02d", i)) {
			t.Errorf("the apply comment does not show t%02d:\n%s", i, applyComment)
			break
		}
	}
	if !strings.Contains(applyComment, "Applied") {
		t.Errorf("the apply comment does not show the final state:\n%s", applyComment)
	}
	return n
}

// An apply of 20 statements reports its steps at most once per 10 s, so it
// costs far fewer than the 2 writes per statement that reporting every
// step does; the final state is always shown. The coalescer's clock stands
// still here and its timer never fires: every step falls inside the
// window that the claim's report opened.
func TestApplyProgressCoalesced(t *testing.T) {
	every := newHarness(t, func(o *Options) { o.CoalesceWindow = -1 })
	before := applyWrites(t, every)

	var armed atomic.Int32
	h := newHarness(t, func(o *Options) {
		o.coalesceClock = func() time.Time { return time.Unix(1_800_000_000, 0) }
		o.coalesceAfter = func(d time.Duration, f func()) func() bool {
			armed.Add(1)
			return func() bool { return true }
		}
	})
	after := applyWrites(t, h)
	t.Logf("GitHub writes for an apply of 20 statements: %d reporting every step, %d coalesced", before, after)
	if before < 40 {
		t.Errorf("reporting every step cost %d writes, want at least 2 per statement (40): is the measure right?", before)
	}
	if after > 14 || after*4 > before {
		t.Errorf("coalesced apply cost %d writes (every step: %d), want at most 14 and a quarter of every step's", after, before)
	}
	if n := armed.Load(); n != 1 {
		t.Errorf("%d reports armed for the window, want 1", n)
	}
}

// A create whose answer is lost (GitHub performed it, the client saw a
// 502) is found by its token instead of created again: one check run per
// name, one reply per command.
func TestLostAnswerCreatesOnce(t *testing.T) {
	h := newHarness(t)
	h.gh.LoseAnswerNext("POST", "/repos/acme/shop/check-runs", 2)
	h.openPR(2, sha1, files(usersV2))
	names := map[string]int{}
	for _, r := range h.gh.CheckRuns(repoName, sha1) {
		names[r.GetName()]++
	}
	for _, n := range []string{"tern", "tern/shop/staging", "tern/shop/production"} {
		if names[n] != 1 {
			t.Errorf("%d check runs named %s, want 1 (all: %v)", names[n], n, names)
		}
	}

	h.gh.LoseAnswerNext("POST", "/repos/acme/shop/issues/2/comments", 1)
	h.comment(2, "mallory", "User", "/tern help")
	helps := 0
	for _, c := range h.botComments(2) {
		if strings.Contains(c, "/tern apply") && strings.Contains(c, "<!-- tern:reply:") {
			helps++
		}
	}
	if helps != 1 {
		t.Errorf("%d help replies, want 1:\n%s", helps, strings.Join(h.botComments(2), "\n---\n"))
	}
}
