package bot

import (
	"context"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/store"
)

// `/tern retry` racing a recovery pass: the bot reads the apply as
// failed_retryable, and a pass claims it before the bot's retry lands. The
// answer is a refusal that says so, in the delivery's first attempt, not
// an error (which would fail the delivery and retry it).
func TestRetryRacingAPassIsRefused(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.openPR(2, sha1, files(usersV2))
	release := holdTable(t, h.staging)
	defer release()
	h.comment(2, "alice", "User", "/tern apply -e staging")
	h.waitCheck(sha1, "tern/shop/staging", "Failed (retrying...)")
	var a *store.Apply
	h.waitFor("the apply to be retrying, and reported", func() bool {
		var err error
		a, err = h.st.LatestApply(ctx, repoName, 2, "shop", "staging")
		return err == nil && a.State == store.FailedRetryable && a.ReportedVersion == a.Version
	})

	// The pass: it holds the apply's row while the bot's retry comes in.
	pass, err := h.st.DB().BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pass.Rollback()
	if _, err := pass.Exec("SELECT id FROM tern_applies WHERE id = ? FOR UPDATE", a.ID); err != nil {
		t.Fatal(err)
	}
	var ledger string
	if err := h.st.DB().QueryRow("SELECT DATABASE()").Scan(&ledger); err != nil {
		t.Fatal(err)
	}
	c := h.gh.AddComment(repoName, 2, "alice", "User", "/tern retry -e staging")
	payload, err := fakegithub.CommentPayload(repoName, 2, c.GetID(), "alice", "User", "/tern retry -e staging", inst)
	if err != nil {
		t.Fatal(err)
	}
	const id = "delivery-retry-race"
	h.deliverID("issue_comment", id, payload, 202)
	h.waitFor("the bot's retry to wait for the apply's row", func() bool {
		var n int
		// The pass holds the row: a session that sent this waits for it.
		err := h.st.DB().QueryRow(`SELECT COUNT(*) FROM information_schema.PROCESSLIST
 WHERE DB = ? AND ID <> CONNECTION_ID() AND INFO LIKE 'SELECT state FROM tern_applies WHERE id = % FOR UPDATE'`, ledger).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n > 0
	})
	if _, err := pass.Exec(`UPDATE tern_applies SET state = 'running', attempt = attempt + 1, lease_owner = 'a pass',
 lease_token = 'pass', lease_expires_at = UTC_TIMESTAMP(6) + INTERVAL 1 HOUR, version = version + 1 WHERE id = ?`, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := pass.Commit(); err != nil {
		t.Fatal(err)
	}
	h.waitProcessed(id)
	var attempts int
	if err := h.st.DB().QueryRow("SELECT attempts FROM tern_deliveries WHERE id = ?", id).Scan(&attempts); err != nil {
		t.Fatal(err)
	}
	if attempts != 1 {
		t.Errorf("the retry command took %d delivery attempts: its first one failed with an error instead of refusing", attempts)
	}
	if reply := h.lastBotComment(2); !strings.Contains(reply, "recovery pass") {
		t.Errorf("reply %q, want a refusal saying a recovery pass took the apply", reply)
	}
	assertReactions(t, h.gh, c.GetID(), "eyes", "confused")
}
