package bot

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/store"
)

// bigV2 is the desired `big` table of testdb.BigTable with v widened to
// bigint: a change MariaDB can only make by copying the table.
const bigV2 = "CREATE TABLE `big` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `v` bigint(20) NOT NULL,\n" +
	"  `s` varchar(100) NOT NULL,\n  PRIMARY KEY (`id`)\n);\n"

func columnType(t *testing.T, h *harness, table, col string) string {
	t.Helper()
	var typ string
	if err := h.staging.QueryRow("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?", table, col).Scan(&typ); err != nil {
		t.Fatal(err)
	}
	return typ
}

// checkTitles lists the titles of every check run tern created or updated
// on GitHub, in order.
func (h *harness) checkTitles() []string {
	var out []string
	for _, r := range h.gh.Requests() {
		if !strings.Contains(r.Path, "/check-runs") || (r.Method != "POST" && r.Method != "PATCH") {
			continue
		}
		var body struct {
			Output struct {
				Title string `json:"title"`
			} `json:"output"`
		}
		if json.Unmarshal(r.Body, &body) == nil && body.Output.Title != "" {
			out = append(out, body.Output.Title)
		}
	}
	return out
}

// TestBlockingCopyNeedsAllowBlockingAndShowsProgress: on a table of
// 1,048,576 rows, over the target's max_blocking_rows, a change the server
// can only make by copying is planned as a blocking COPY (with the table's
// rows and size), refused without --allow-blocking, and run with it; while
// the copy runs (several seconds), its progress reaches the check run and
// the apply comment, and /tern status shows it.
func TestBlockingCopyNeedsAllowBlockingAndShowsProgress(t *testing.T) {
	// Progress goes through the bot's coalescer like every step of a
	// running apply; its window is shortened with the engine's interval so
	// that a copy of seconds shows some.
	// On an idle machine the copy of 1<<19 rows took under a second, and
	// the final report superseded the only progress report within one
	// window: the table is 1<<20 rows (about 2 s of copy) and the
	// windows 200ms.
	h := newHarnessWith(t, "2s", ", max_blocking_rows: 100000, progress_interval: 200ms",
		func(o *Options) { o.CoalesceWindow = 200 * time.Millisecond })
	testdb.BigTable(t, h.staging, "big", 1<<20)
	if _, err := h.staging.Exec("ANALYZE TABLE big"); err != nil {
		t.Fatal(err)
	}
	f := files(usersV1)
	f["db/shop/big.sql"] = bigV2
	h.openPR(2, sha1, f)

	plan := h.botComments(2)[0]
	for _, want := range []string{"| 1 | `big` | ⛔ COPY | SHARED (writes wait) |", "⛔ blocking", "`/tern apply -e staging --allow-blocking`"} {
		if !strings.Contains(plan, want) {
			t.Fatalf("plan comment lacks %q:\n%s", want, plan)
		}
	}
	h.waitCheck(sha1, "tern/shop/staging", "Awaiting apply")

	h.comment(2, "alice", "User", "/tern apply -e staging")
	if c := h.lastBotComment(2); !strings.Contains(c, "block writes to a large table") || !strings.Contains(c, "--allow-blocking") {
		t.Fatalf("apply without --allow-blocking: reply %q", c)
	}
	h.waitCheck(sha1, "tern/shop/staging", "Unsafe changes")
	if got := columnType(t, h, "big", "v"); got != "int(11)" {
		t.Fatalf("refused apply changed the table: v is %s", got)
	}

	h.comment(2, "alice", "User", "/tern apply -e staging --allow-blocking")
	var progress string
	defer func() {
		if t.Failed() {
			t.Logf("check titles: %q", h.checkTitles())
		}
	}()
	h.waitFor("a check run showing the copy's progress", func() bool {
		for _, title := range h.checkTitles() {
			if strings.HasPrefix(title, "Applying: copying `big` ") && strings.Contains(title, "%") {
				progress = title
				return true
			}
		}
		return false
	})
	t.Logf("progress title: %s", progress)
	h.comment(2, "bob", "User", "/tern status")
	if status := h.lastBotComment(2); strings.Contains(status, "| Applying") && !strings.Contains(status, "`big` ") {
		t.Errorf("status during the copy does not show its progress:\n%s", status)
	}
	h.waitCheck(sha1, "tern/shop/staging", "Applied")
	if got := columnType(t, h, "big", "v"); got != "bigint(20)" {
		t.Fatalf("after the apply v is %s, want bigint(20)", got)
	}
	sawComment := false
	for _, r := range h.gh.Requests() {
		if r.Method == "PATCH" && strings.Contains(r.Path, "/issues/comments/") && strings.Contains(string(r.Body), "**Now:** copying `big`") {
			sawComment = true
		}
	}
	if !sawComment {
		t.Error("the apply comment never showed the copy's progress")
	}
}

// TestStatusShowsProgressOfARunningApply: /tern status shows how far the
// running task of a running apply has got, from the ledger.
func TestStatusShowsProgressOfARunningApply(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	h.openPR(2, sha1, files(usersV2))
	sp, err := h.st.LatestPlan(ctx, repoName, 2, "shop", "staging")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.st.CreateApply(ctx, sp, "alice", false, 3); err != nil {
		t.Fatal(err)
	}
	// Claimed here, so the bot's workers leave it running as it is.
	as, err := h.st.Claim(ctx, store.ClaimOptions{Owner: "test", Limit: 1, Lease: time.Hour})
	if err != nil || len(as) != 1 {
		t.Fatalf("claim: %v %v", as, err)
	}
	if err := h.st.StartTask(ctx, as[0], 1); err != nil {
		t.Fatal(err)
	}
	if err := h.st.SetTaskProgress(ctx, as[0], 1, store.Progress{Stage: "copy to tmp table", Percent: 43, Remaining: 3 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	h.comment(2, "bob", "User", "/tern status")
	if got := h.lastBotComment(2); !strings.Contains(got, "| Applying: copying `users` 43%, ~3 min left |") {
		t.Fatalf("status reply:\n%s", got)
	}
}
