package e2e

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/store"
)

// deliverAll sends the deliveries at once (each under its own delivery
// id) and waits until the server has processed every one of them.
func (c *cworld) deliverAll(event string, payloads ...[]byte) {
	c.t.Helper()
	ids := make([]string, len(payloads))
	errs := make([]error, len(payloads))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, body := range payloads {
		ids[i] = fmt.Sprintf("%s-race-%d", c.t.Name(), i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := fakegithub.Deliver(context.Background(), c.srv.url+"/webhook", event, ids[i], webhookSecret, body)
			if err != nil {
				errs[i] = err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				errs[i] = fmt.Errorf("delivery %s: %d %s", ids[i], resp.StatusCode, b)
			}
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			c.t.Fatal(err)
		}
	}
	for _, id := range ids {
		c.waitDelivered(id)
	}
}

// commentPayload records a comment by user on PR n and returns its id and
// webhook payload, undelivered.
func (c *cworld) commentPayload(n int, user, body string) (int64, []byte) {
	c.t.Helper()
	cm := c.gh.AddComment(repoName, n, user, "User", body)
	p, err := fakegithub.CommentPayload(repoName, n, cm.GetID(), user, "User", body, installation)
	if err != nil {
		c.t.Fatal(err)
	}
	return cm.GetID(), p
}

// hasReaction reports whether comment id carries reaction r.
func (c *cworld) hasReaction(id int64, r string) bool {
	for _, g := range c.gh.Reactions(repoName, id) {
		if g == r {
			return true
		}
	}
	return false
}

// Two `/tern apply -e staging` comments on one PR, delivered at the same
// moment under distinct delivery ids (CONTRACT §4): exactly one apply
// runs; the other command is answered (a reply and a reaction), never
// silently dropped, and staging is changed once.
func TestContract2ConcurrentApplySamePR(t *testing.T) {
	c := newContract(t, fmt.Sprintf(fastRecovery, 3), "5s")
	head := sha(940)
	c.openPR(95, head, shopFiles(usersV2))
	c.waitCheck(head, "tern/shop/staging", "Awaiting apply")
	last := c.botComments(95)[0].GetID()

	id1, p1 := c.commentPayload(95, "alice", "/tern apply -e staging")
	id2, p2 := c.commentPayload(95, "adam", "/tern apply -e staging")
	c.deliverAll("issue_comment", p1, p2)
	c.waitCheck(head, "tern/shop/staging", "Applied")
	c.wantCheck(head, "tern/shop/staging", "completed", "success", "Applied")

	applies, err := c.st.AppliesForPR(context.Background(), repoName, 95)
	if err != nil {
		t.Fatal(err)
	}
	if len(applies) != 1 || applies[0].State != store.Completed {
		t.Fatalf("two concurrent apply commands made %d applies, want 1 completed: %+v", len(applies), applies)
	}
	if columnCount(t, c.staging, "users", "email") != 1 {
		t.Error("staging lacks users.email")
	}
	// One command was taken (rocket), the other refused (confused), each
	// answered.
	waitFor(t, "both commands answered", func() bool {
		return (c.hasReaction(id1, "rocket") || c.hasReaction(id1, "confused")) &&
			(c.hasReaction(id2, "rocket") || c.hasReaction(id2, "confused"))
	})
	taken, refused := id1, id2
	if c.hasReaction(id2, "rocket") {
		taken, refused = id2, id1
	}
	if c.hasReaction(taken, "confused") || !c.hasReaction(refused, "confused") || c.hasReaction(refused, "rocket") {
		t.Errorf("reactions: %d %v, %d %v; want one command rocket, the other confused",
			id1, c.gh.Reactions(repoName, id1), id2, c.gh.Reactions(repoName, id2))
	}
	var replies []string
	for _, cm := range c.botCommentsAfter(95, last) {
		if b := cm.GetBody(); strings.Contains(b, "/tern apply -e staging") && !strings.Contains(b, "Applied") {
			replies = append(replies, b)
		}
	}
	if len(replies) == 0 {
		t.Errorf("the refused command got no reply quoting it; comments: %v", bodies(c.botCommentsAfter(95, last)))
	}
	if n := len(c.botCommentsWith(95, "staging")) - len(replies); n < 1 {
		t.Errorf("no apply comment for the one apply")
	}
}

// Two PRs race for shop/staging (CONTRACT §4): their apply commands are
// delivered at the same moment; one PR takes the lock and applies, the
// other is refused with a reply naming the winner `#N`, and gets no apply.
func TestContract2TwoPRsRaceForLock(t *testing.T) {
	c := newContract(t, fmt.Sprintf(fastRecovery, 3), "5s")
	headA, headB := sha(950), sha(951)
	c.openPR(96, headA, shopFiles(usersV2))
	c.openPR(97, headB, shopFiles(usersV3))
	c.waitCheck(headA, "tern/shop/staging", "Awaiting apply")
	c.waitCheck(headB, "tern/shop/staging", "Awaiting apply")

	idA, pA := c.commentPayload(96, "alice", "/tern apply -e staging")
	idB, pB := c.commentPayload(97, "adam", "/tern apply -e staging")
	c.deliverAll("issue_comment", pA, pB)

	ctx := context.Background()
	la, _ := c.st.LocksForPR(ctx, repoName, 96)
	lb, _ := c.st.LocksForPR(ctx, repoName, 97)
	if len(la)+len(lb) != 1 {
		t.Fatalf("locks after the race: #96 %+v, #97 %+v; want exactly one PR holding shop/staging", la, lb)
	}
	winner, loser, loserID, winnerHead := 96, 97, idB, headA
	if len(lb) == 1 {
		winner, loser, loserID, winnerHead = 97, 96, idA, headB
	}
	c.waitCheck(winnerHead, "tern/shop/staging", "Applied")
	c.waitReactions(loserID, "confused")
	if reply := c.replyAfter(loser, loserID); !strings.Contains(reply, fmt.Sprintf("#%d", winner)) {
		t.Errorf("#%d's refusal does not name the lock holder #%d:\n%s", loser, winner, reply)
	}
	if applies, _ := c.st.AppliesForPR(ctx, repoName, loser); len(applies) != 0 {
		t.Errorf("the losing PR #%d got an apply: %+v", loser, applies[0])
	}
	if a, _ := c.st.AppliesForPR(ctx, repoName, winner); len(a) != 1 || a[0].State != store.Completed {
		t.Errorf("the winning PR #%d's applies: %+v, want one completed", winner, a)
	}
}

// One delivery arriving twice at the same moment (GitHub's redelivery
// racing the original, same X-GitHub-Delivery): both are answered 2xx and
// the command runs once: one apply, one apply comment, no refusal.
func TestContract2SameDeliveryTwiceAtOnce(t *testing.T) {
	c := newContract(t, fmt.Sprintf(fastRecovery, 3), "5s")
	head := sha(970)
	c.openPR(99, head, shopFiles(usersV2))
	c.waitCheck(head, "tern/shop/staging", "Awaiting apply")
	last := c.botComments(99)[0].GetID()
	id, p := c.commentPayload(99, "alice", "/tern apply -e staging")

	delivery := "e2e-same-delivery-" + head[:12]
	var wg sync.WaitGroup
	codes := make([]int, 4)
	errs := make([]error, len(codes))
	start := make(chan struct{})
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := fakegithub.Deliver(context.Background(), c.srv.url+"/webhook", "issue_comment", delivery, webhookSecret, p)
			if err != nil {
				errs[i] = err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	for i, code := range codes {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if code/100 != 2 {
			t.Errorf("copy %d of the delivery answered %d, want 2xx", i, code)
		}
	}
	c.waitDelivered(delivery)
	c.waitCheck(head, "tern/shop/staging", "Applied")
	c.waitReactions(id, "eyes", "rocket")
	applies, err := c.st.AppliesForPR(context.Background(), repoName, 99)
	if err != nil || len(applies) != 1 {
		t.Fatalf("one delivery sent 4 times made %d applies (%v), want 1", len(applies), err)
	}
	if c.hasReaction(id, "confused") {
		t.Error("a copy of the delivery was refused (confused): it should have done nothing")
	}
	if after := c.botCommentsAfter(99, last); len(after) != 1 {
		t.Errorf("%d comments after the command, want the one apply comment: %v", len(after), bodies(after))
	}
}
