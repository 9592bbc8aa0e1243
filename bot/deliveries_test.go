package bot

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/fakegithub"
)

// deliveryRow is a stored delivery's processing state.
type deliveryRow struct {
	state    string
	attempts int
	lastErr  string
}

// waitFinished waits until delivery id left the pending state and returns
// its row.
func (h *harness) waitFinished(id string) deliveryRow {
	h.t.Helper()
	var r deliveryRow
	h.waitFor("delivery "+id+" finished", func() bool {
		err := h.st.DB().QueryRow("SELECT state, attempts, last_error FROM tern_deliveries WHERE id = ?", id).Scan(&r.state, &r.attempts, &r.lastErr)
		return err == nil && r.state != "pending"
	})
	return r
}

// commentAsync posts a comment and delivers its webhook without waiting
// for it to be processed; it returns the comment and delivery ids.
func (h *harness) commentAsync(n int, user, body string) (int64, string) {
	h.t.Helper()
	c := h.gh.AddComment(repoName, n, user, "User", body)
	payload, err := fakegithub.CommentPayload(repoName, n, c.GetID(), user, "User", body, inst)
	if err != nil {
		h.t.Fatal(err)
	}
	id := fmt.Sprintf("delivery-%d-%d", time.Now().UnixNano(), h.seq.Add(1))
	h.deliverID("issue_comment", id, payload, http.StatusAccepted)
	return c.GetID(), id
}

func countContaining(cs []string, sub string) int {
	n := 0
	for _, c := range cs {
		if strings.Contains(c, sub) {
			n++
		}
	}
	return n
}

// GitHub answering 502 once: the delivery is processed again after a
// backoff and the command answered once.
func TestDeliveryRetriedAfterGitHubError(t *testing.T) {
	h := newHarness(t)
	h.openPR(2, sha1, files(usersV2))
	h.gh.FailNext(http.MethodPost, "/repos/acme/shop/issues/2/comments", http.StatusBadGateway, 1)
	cid, id := h.commentAsync(2, "alice", "/tern help")
	r := h.waitFinished(id)
	if r.state != "done" || r.attempts != 2 || r.lastErr != "" {
		t.Fatalf("delivery %+v, want done after 2 attempts with no error", r)
	}
	if n := countContaining(h.botComments(2), "### tern commands"); n != 1 {
		t.Errorf("%d help replies, want 1", n)
	}
	assertReactions(t, h.gh, cid, "eyes", "rocket")
}

// An apply whose GitHub reads fail on every attempt: processed
// DeliveryAttempts times, then failed for good, with one error reply and
// nothing queued.
func TestDeliveryFailsForGoodAfterMaxAttempts(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.GitHubRetry.Attempts = 1 }) // one try per request: count attempts
	h.openPR(2, sha1, files(usersV2))
	before := len(h.botComments(2))
	h.gh.FailNext(http.MethodGet, "/repos/acme/shop/collaborators/*/permission", http.StatusBadGateway, 1000)
	cid, id := h.commentAsync(2, "alice", "/tern apply -e staging")
	r := h.waitFinished(id)
	if r.state != "failed" || r.attempts != 3 || !strings.Contains(r.lastErr, "502") {
		t.Fatalf("delivery %+v, want failed after 3 attempts with the 502", r)
	}
	replies := h.botComments(2)[before:]
	if len(replies) != 1 || !strings.Contains(replies[0], "tern hit an error") {
		t.Errorf("replies %q, want one error reply", replies)
	}
	assertReactions(t, h.gh, cid, "eyes", "confused")
	perm := 0
	for _, req := range h.gh.Requests() {
		if strings.HasSuffix(req.Path, "/permission") {
			perm++
		}
	}
	if perm != 3 {
		t.Errorf("%d permission requests, want one per attempt (3)", perm)
	}
	if applies, _ := h.st.AppliesForPR(t.Context(), repoName, 2); len(applies) != 0 {
		t.Errorf("%d applies queued", len(applies))
	}
}

// A payload that does not parse fails at once: no attempt can fix it.
func TestDeliveryUnparseableFailsAtOnce(t *testing.T) {
	h := newHarness(t)
	h.deliverID("issue_comment", "garbage", []byte(`{"action": 7}`), http.StatusAccepted)
	r := h.waitFinished("garbage")
	if r.state != "failed" || r.attempts != 1 || !strings.Contains(r.lastErr, "parse issue_comment payload") {
		t.Fatalf("delivery %+v, want failed after 1 attempt", r)
	}
}
