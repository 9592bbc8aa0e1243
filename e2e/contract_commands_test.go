package e2e

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/fakegithub"
)

// Refusals (CONTRACT §4): each is a reply that names the thing, with a
// confused reaction, and changes nothing. Read and triage users may not
// run write commands; unknown commands and flags get usage showing
// `/tern ...`. Anyone may ask for help; a command is found on the first
// non-blank line only.
func TestContractRefusalsAndHelp(t *testing.T) {
	c := newContract(t, "  lease: 1m", "5s")
	head := sha(40)
	c.openPR(5, head, shopFiles(usersV2))
	c.waitCheck(head, "tern/shop/staging", "Awaiting apply")

	cases := []struct {
		name, user, body string
		want             []string // each must appear in the reply
	}{
		{"read user applies", "mallory", "/tern apply -e staging", []string{"write"}},
		{"triage user applies", "trish", "/tern apply -e staging", []string{"write"}},
		{"user without access applies", "nobody", "/tern apply -e staging", []string{"write"}},
		{"read user unlocks", "mallory", "/tern unlock", []string{"write"}},
		{"read user retries", "mallory", "/tern retry -e staging", []string{"write"}},
		{"read user cancels", "mallory", "/tern cancel -e staging", []string{"write"}},
		{"unknown command", "alice", "/tern aply -e staging", []string{"aply", "/tern apply"}},
		{"unknown flag", "alice", "/tern apply -e staging --force", []string{"--force", "/tern apply"}},
		{"apply without -e", "alice", "/tern apply", []string{"-e", "/tern apply"}},
		{"environment not in tern.yaml", "alice", "/tern apply -e qa", []string{"qa"}},
		{"database not in tern.yaml", "alice", "/tern apply -e staging -d billing", []string{"billing"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := c.comment(5, tc.user, tc.body)
			c.waitReactions(id, "confused")
			reply := c.replyAfter(5, id)
			for _, w := range tc.want {
				if !strings.Contains(reply, w) {
					t.Errorf("reply to %q lacks %q:\n%s", tc.body, w, reply)
				}
			}
			if got := c.gh.Reactions(repoName, id); contains(got, "rocket") {
				t.Errorf("refused command got reactions %v", got)
			}
		})
	}
	if applies, err := c.st.AppliesForPR(context.Background(), repoName, 5); err != nil || len(applies) != 0 {
		t.Errorf("refused commands left applies %v (%v)", applies, err)
	}
	if columnCount(t, c.staging, "users", "email") != 0 {
		t.Error("a refused command changed staging")
	}

	t.Run("help", func(t *testing.T) {
		id := c.comment(5, "mallory", "\n\n  /tern help\nthanks!")
		reply := c.replyAfter(5, id)
		for _, w := range []string{"/tern plan", "/tern apply -e", "/tern unlock", "/tern retry", "/tern cancel", "/tern status", "/tern help"} {
			if !strings.Contains(reply, w) {
				t.Errorf("help lacks %q:\n%s", w, reply)
			}
		}
		if got := c.gh.Reactions(repoName, id); contains(got, "confused") {
			t.Errorf("help got reactions %v", got)
		}
	})
	t.Run("not on the first line", func(t *testing.T) {
		before := len(c.botComments(5))
		id := c.comment(5, "alice", "looks good\n/tern apply -e staging")
		if n := len(c.botComments(5)); n != before {
			t.Errorf("a comment whose first line is not a command got %d replies", n-before)
		}
		if got := c.gh.Reactions(repoName, id); len(got) != 0 {
			t.Errorf("reactions %v on a comment that is not a command", got)
		}
	})
	t.Run("plan by anyone", func(t *testing.T) {
		id := c.comment(5, "mallory", "/tern plan -e staging")
		c.waitReactions(id, "eyes", "rocket")
		c.wantCheck(head, "tern/shop/staging", "completed", "action_required", "Awaiting apply")
	})
}

// Comments by Bot users, edited comments and comments on plain issues are
// ignored; a redelivered webhook is answered 2xx and does nothing.
func TestContractIgnoredCommentsAndRedelivery(t *testing.T) {
	c := newContract(t, "  lease: 1m", "5s")
	head := sha(50)
	c.openPR(6, head, shopFiles(usersV2))
	c.waitCheck(head, "tern/shop/staging", "Awaiting apply")
	c.gh.SetPermission(repoName, "deploy-bot[bot]", "admin")
	baseline := len(c.botComments(6))

	ids := []int64{
		c.commentAs(6, "deploy-bot[bot]", "Bot", "/tern apply -e staging", nil),
		c.commentAs(6, "alice", "User", "/tern apply -e staging", map[string]any{
			"action":                     "edited",
			"changes.body.from":          "lgtm",
			"comment.updated_at":         "2030-01-01T00:00:00Z",
			"issue.comments":             3,
			"comment.author_association": "MEMBER",
		}),
	}
	// A plain issue (no pull_request key) with a /tern command on it.
	cm := c.gh.AddComment(repoName, 60, "alice", "User", "/tern apply -e staging")
	payload, err := fakegithub.CommentPayload(repoName, 60, cm.GetID(), "alice", "User", "/tern apply -e staging", installation)
	if err != nil {
		t.Fatal(err)
	}
	if payload, err = fakegithub.Edit(payload, map[string]any{"issue.pull_request": fakegithub.Deletion{}}); err != nil {
		t.Fatal(err)
	}
	c.waitDelivered(c.deliver(c.srv, "issue_comment", payload))
	ids = append(ids, cm.GetID())

	for _, id := range ids {
		if got := c.gh.Reactions(repoName, id); len(got) != 0 {
			t.Errorf("ignored comment %d got reactions %v", id, got)
		}
	}
	if n := len(c.botComments(6)) - baseline; n != 0 {
		t.Errorf("ignored comments got %d replies on the PR", n)
	}
	if n := len(c.gh.Comments(repoName, 60)); n != 1 {
		t.Errorf("the plain issue has %d comments, want only the user's", n)
	}
	if applies, err := c.st.AppliesForPR(context.Background(), repoName, 6); err != nil || len(applies) != 0 {
		t.Errorf("ignored comments started applies %v (%v)", applies, err)
	}

	// Redelivery: the same X-GitHub-Delivery twice, one answer.
	help := c.gh.AddComment(repoName, 6, "alice", "User", "/tern help")
	payload, err = fakegithub.CommentPayload(repoName, 6, help.GetID(), "alice", "User", "/tern help", installation)
	if err != nil {
		t.Fatal(err)
	}
	deliveryID := fmt.Sprintf("e2e-redeliver-%d", help.GetID())
	for i := 0; i < 2; i++ {
		resp, err := fakegithub.Deliver(context.Background(), c.srv.url+"/webhook", "issue_comment", deliveryID, webhookSecret, payload)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("delivery %d of %s answered %d, want 2xx", i+1, deliveryID, resp.StatusCode)
		}
		c.waitDelivered(deliveryID)
	}
	// A later command, processed after both, fences the check.
	fence := c.comment(6, "alice", "/tern status")
	c.replyAfter(6, fence)
	var helps int
	for _, cm := range c.botCommentsAfter(6, help.GetID()) {
		if strings.Contains(cm.GetBody(), "/tern cancel") && cm.GetID() < fence {
			helps++
		}
	}
	if helps != 1 {
		t.Errorf("a delivery sent twice was answered %d times, want once", helps)
	}
}

func contains(ss []string, s string) bool { return countOf(ss, s) > 0 }

func countOf(ss []string, s string) int {
	n := 0
	for _, x := range ss {
		if x == s {
			n++
		}
	}
	return n
}
