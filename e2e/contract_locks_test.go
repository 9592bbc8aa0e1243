package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ternhq/tern/store"
)

// Locks (CONTRACT §4): the first apply of a PR locks shop/staging; another
// PR's apply is refused naming `#N`; `/tern unlock` (write+) releases it.
// Closing a PR without merging cancels its retrying apply and releases its
// locks; where its changes are live, tern comments on it with the
// environment and the DDL. A merged PR's lock is released too.
func TestContractLocksUnlockAndClose(t *testing.T) {
	c := newContract(t, fmt.Sprintf(fastRecovery, 5), "1s")
	headA, headB := sha(60), sha(61)
	c.openPR(6, headA, shopFiles(usersV2))
	c.openPR(7, headB, shopFiles(usersV3))
	c.waitCheck(headB, "tern/shop/staging", "Awaiting apply")

	c.comment(6, "alice", "/tern apply -e staging")
	c.waitCheck(headA, "tern/shop/staging", "Applied")

	// #7, planned before #6 changed staging, is refused while #6 holds
	// shop/staging, even for an admin: the reply names the holder, #6.
	id := c.comment(7, "adam", "/tern apply -e staging")
	c.waitReactions(id, "confused")
	if reply := c.replyAfter(7, id); !strings.Contains(reply, "#6") {
		t.Errorf("lock refusal does not name #6:\n%s", reply)
	}
	if applies, _ := c.st.AppliesForPR(context.Background(), repoName, 7); len(applies) != 0 {
		t.Fatalf("#7 got an apply while #6 holds the lock: %+v", applies[0])
	}

	// A read user may not unlock; a write user may.
	id = c.comment(6, "mallory", "/tern unlock")
	c.waitReactions(id, "confused")
	if reply := c.replyAfter(6, id); !strings.Contains(reply, "write") {
		t.Errorf("unlock refusal does not name write:\n%s", reply)
	}
	id = c.comment(6, "alice", "/tern unlock")
	c.waitReactions(id, "eyes", "rocket")
	if l, err := c.st.LocksForPR(context.Background(), repoName, 6); err != nil || len(l) != 0 {
		t.Fatalf("#6 still holds %+v after /tern unlock (%v)", l, err)
	}

	// #7 re-plans against the staging #6 changed, then takes the lock with
	// an apply that keeps failing on a metadata lock.
	id = c.comment(7, "alice", "/tern plan")
	c.waitReactions(id, "rocket")
	c.waitCheck(headB, "tern/shop/staging", "Awaiting apply")
	release := holdTable(t, c.staging, "users")
	c.comment(7, "alice", "/tern apply -e staging")
	c.waitCheck(headB, "tern/shop/staging", "Failed (retrying...)")
	retrying := c.waitApplyState(7, "staging", store.FailedRetryable)

	// A PR planned against the current staging is refused too, naming #7.
	headD := sha(63)
	c.openPR(9, headD, shopFiles(usersV3))
	c.waitCheck(headD, "tern/shop/staging", "Awaiting apply")
	id = c.comment(9, "alice", "/tern apply -e staging")
	c.waitReactions(id, "confused")
	if reply := c.replyAfter(9, id); !strings.Contains(reply, "#7") {
		t.Errorf("lock refusal does not name #7:\n%s", reply)
	}

	// Closing #7 unmerged cancels its retrying apply and frees the lock.
	c.gh.ClosePR(repoName, 7, false)
	c.prEvent("closed", 7, headB)
	c.waitCheck(headB, "tern/shop/staging", "Cancelled")
	c.wantCheck(headB, "tern/shop/staging", "completed", "cancelled", "Cancelled")
	if a := c.latestApply(7, "staging"); a.ID != retrying.ID || a.State != store.Cancelled {
		t.Errorf("#7's apply after close: %d %s, want %d cancelled", a.ID, a.State, retrying.ID)
	}
	release()
	if columnCount(t, c.staging, "users", "nick") != 0 {
		t.Error("the cancelled apply of the closed PR changed staging")
	}
	if l, _ := c.st.LocksForPR(context.Background(), repoName, 7); len(l) != 0 {
		t.Errorf("closed #7 still holds %+v", l)
	}

	// Closing #6 unmerged: its staging change is live, so tern says so.
	c.gh.ClosePR(repoName, 6, false)
	c.prEvent("closed", 6, headA)
	var notice string
	waitFor(t, "the comment about live, unmerged changes on #6", func() bool {
		for _, cm := range c.botComments(6) {
			if b := cm.GetBody(); strings.Contains(b, "staging") && strings.Contains(strings.ToLower(b), "add column") && strings.Contains(b, "email") && !strings.Contains(b, "/tern apply -e staging") {
				notice = b
				return true
			}
		}
		return false
	})
	if strings.Contains(notice, "production") && !strings.Contains(notice, "staging") {
		t.Errorf("the notice names the wrong environment:\n%s", notice)
	}
	if l, _ := c.st.LocksForPR(context.Background(), repoName, 6); len(l) != 0 {
		t.Errorf("closed #6 still holds %+v", l)
	}

	// The lock is free: a third PR applies, then merges, and its lock goes.
	headC := sha(62)
	c.openPR(8, headC, shopFiles(usersV3))
	c.waitCheck(headC, "tern/shop/staging", "Awaiting apply")
	c.comment(8, "alice", "/tern apply -e staging")
	c.waitCheck(headC, "tern/shop/staging", "Applied")
	if columnCount(t, c.staging, "users", "nick") != 1 {
		t.Error("staging lacks users.nick after #8's apply")
	}
	before := len(c.botComments(8))
	c.gh.ClosePR(repoName, 8, true)
	c.prEvent("merged", 8, headC)
	if l, _ := c.st.LocksForPR(context.Background(), repoName, 8); len(l) != 0 {
		t.Errorf("merged #8 still holds %+v", l)
	}
	if n := len(c.botComments(8)) - before; n != 0 {
		t.Errorf("merging #8 made %d comments; the merged changes are not 'live but not merged'", n)
	}
}
