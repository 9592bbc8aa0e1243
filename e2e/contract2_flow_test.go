package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/ternhq/tern/store"
)

// Promotion after a new push (CONTRACT §4-§6): staging is applied at
// commit A; a push changes the schema at commit B. B gets new check runs
// (staging Awaiting apply, production Waiting for staging), the one plan
// comment is edited, and production is refused, naming staging, until
// staging is applied with B's schema. Then staging and production are
// applied at B, and tern passes on B.
func TestContract2PromotionAfterPush(t *testing.T) {
	c := newContract(t, fmt.Sprintf(fastRecovery, 3), "5s")
	headA, headB := sha(900), sha(901)
	c.openPR(90, headA, shopFiles(usersV2))
	c.waitCheck(headA, "tern/shop/staging", "Awaiting apply")
	plans := c.botComments(90)
	if len(plans) != 1 {
		t.Fatalf("after autoplan the App made %d comments, want 1", len(plans))
	}
	planID := plans[0].GetID()

	c.comment(90, "alice", "/tern apply -e staging")
	c.waitCheck(headA, "tern/shop/staging", "Applied")
	c.waitCheck(headA, "tern/shop/production", "Awaiting apply")
	last := c.botComments(90)[len(c.botComments(90))-1].GetID()

	// Push B: users gains nick.
	c.gh.Push(repoName, 90, headB, shopFiles(usersV3))
	c.prEvent("synchronize", 90, headB)
	c.waitCheck(headB, "tern/shop/production", "Waiting for staging")
	c.wantCheck(headB, "tern/shop/staging", "completed", "action_required", "Awaiting apply")
	c.wantCheck(headB, "tern/shop/production", "completed", "action_required", "Waiting for staging")
	if agg := c.check(headB, "tern"); agg == nil || agg.GetConclusion() == "success" {
		t.Errorf("aggregate tern check on B: %+v, want one that blocks", agg)
	}
	if after := c.botCommentsAfter(90, last); len(after) != 0 {
		t.Errorf("the re-plan on B posted %d new comments, want the plan comment edited: %v", len(after), bodies(after))
	}
	var plan string
	for _, cm := range c.botComments(90) {
		if cm.GetID() == planID {
			plan = cm.GetBody()
		}
	}
	if !strings.Contains(plan, "nick") {
		t.Errorf("plan comment %d does not show B's change (nick):\n%s", planID, plan)
	}
	// A's runs stay as they were.
	c.wantCheck(headA, "tern/shop/staging", "completed", "success", "Applied")

	// Production at B is refused: staging has A's schema, not B's.
	id := c.comment(90, "alice", "/tern apply -e production")
	c.waitReactions(id, "confused")
	if reply := c.replyAfter(90, id); !strings.Contains(reply, "staging") {
		t.Errorf("refusal of production at B does not name staging:\n%s", reply)
	}
	if columnCount(t, c.prod, "users", "email") != 0 {
		t.Fatal("production changed while staging lacks B's schema")
	}
	if applies, _ := c.st.AppliesForPR(context.Background(), repoName, 90); len(applies) != 1 {
		t.Errorf("%d applies after the refused production apply, want staging's 1", len(applies))
	}

	// Staging at B, then production at B.
	id = c.comment(90, "alice", "/tern apply -e staging")
	c.waitReactions(id, "eyes", "rocket")
	c.waitCheck(headB, "tern/shop/staging", "Applied")
	c.wantCheck(headB, "tern/shop/staging", "completed", "success", "Applied")
	if columnCount(t, c.staging, "users", "nick") != 1 {
		t.Fatal("staging lacks users.nick after B's apply")
	}
	c.waitCheck(headB, "tern/shop/production", "Awaiting apply")
	id = c.comment(90, "alice", "/tern apply -e production")
	c.waitReactions(id, "eyes", "rocket")
	c.waitCheck(headB, "tern/shop/production", "Applied")
	c.wantCheck(headB, "tern/shop/production", "completed", "success", "Applied")
	for _, col := range []string{"email", "nick"} {
		if columnCount(t, c.prod, "users", col) != 1 {
			t.Errorf("production lacks users.%s after B's apply", col)
		}
	}
	waitFor(t, "the tern check on B to pass", func() bool { return c.check(headB, "tern").GetConclusion() == "success" })
	if a := c.latestApply(90, "production"); a.HeadSHA != headB || a.State != store.Completed {
		t.Errorf("production's apply: %s at %.7s, want completed at B", a.State, a.HeadSHA)
	}
	if r := c.gh.ReopenedRuns(); len(r) != 0 {
		t.Errorf("completed check runs reopened: %+v", r)
	}
}

// A PR closed without merging and reopened (CONTRACT §4): the close
// releases its lock, the reopen autoplans again (new runs on the head, the
// plan comment edited) and an apply takes the lock again.
func TestContract2ReopenedPR(t *testing.T) {
	c := newContract(t, fmt.Sprintf(fastRecovery, 3), "5s")
	head := sha(910)
	c.openPR(91, head, shopFiles(usersV2))
	c.waitCheck(head, "tern/shop/staging", "Awaiting apply")
	planID := c.botComments(91)[0].GetID()
	c.gh.ClosePR(repoName, 91, false)
	c.prEvent("closed", 91, head)
	if l, _ := c.st.LocksForPR(context.Background(), repoName, 91); len(l) != 0 {
		t.Fatalf("closed #91 holds %+v", l)
	}
	before := len(c.gh.CheckRuns(repoName, head))

	// Reopen at a new head with another schema: autoplan again.
	head2 := sha(911)
	c.gh.OpenPR(repoName, 91, head2, shopFiles(usersV3))
	c.prEvent("reopened", 91, head2)
	c.waitCheck(head2, "tern/shop/production", "Waiting for staging")
	c.wantCheck(head2, "tern/shop/staging", "completed", "action_required", "Awaiting apply")
	if n := len(c.gh.CheckRuns(repoName, head)); n != before {
		t.Errorf("the reopen touched the old head's runs (%d, was %d)", n, before)
	}
	plans := c.botCommentsWith(91, "nick")
	if len(plans) != 1 || plans[0].GetID() != planID {
		t.Errorf("after the reopen %d comments show the plan, want plan comment %d edited", len(plans), planID)
	}

	// The reopened PR takes the lock again and applies.
	id := c.comment(91, "alice", "/tern apply -e staging")
	c.waitReactions(id, "eyes", "rocket")
	c.waitCheck(head2, "tern/shop/staging", "Applied")
	if columnCount(t, c.staging, "users", "nick") != 1 {
		t.Error("staging lacks users.nick after the reopened PR's apply")
	}
	l, err := c.st.LocksForPR(context.Background(), repoName, 91)
	if err != nil || len(l) != 1 || l[0].Environment != "staging" {
		t.Errorf("reopened #91's locks after its apply: %+v (%v), want shop/staging", l, err)
	}

	// A reopen at the same head of a PR whose schema is now live: autoplan
	// again, staging No changes.
	c.gh.ClosePR(repoName, 91, false)
	c.prEvent("closed", 91, head2)
	head3 := sha(912)
	c.gh.OpenPR(repoName, 91, head3, shopFiles(usersV3))
	c.prEvent("reopened", 91, head3)
	c.waitCheck(head3, "tern/shop/production", "Awaiting apply")
	c.wantCheck(head3, "tern/shop/staging", "completed", "success", "No changes")
}

// `/tern plan -d DB -e ENV` plans only the pair named (CONTRACT §4): with
// both live schemas changed by hand to what the PR wants, planning
// production alone makes production `No changes` and leaves staging's run
// as it was (no new run); a plain `/tern plan` then re-plans staging too.
func TestContract2SubsetPlan(t *testing.T) {
	c := newContract(t, fmt.Sprintf(fastRecovery, 3), "5s")
	head := sha(930)
	c.openPR(94, head, shopFiles(usersV2))
	c.waitCheck(head, "tern/shop/production", "Waiting for staging")
	stagingRun := c.check(head, "tern/shop/staging").GetID()
	runs := func(name string) int {
		n := 0
		for _, r := range c.gh.CheckRuns(repoName, head) {
			if r.GetName() == name {
				n++
			}
		}
		return n
	}
	stagingRuns := runs("tern/shop/staging")
	for _, db := range []*sql.DB{c.staging, c.prod} {
		if _, err := db.Exec("ALTER TABLE users ADD COLUMN email VARCHAR(255) NOT NULL DEFAULT ''"); err != nil {
			t.Fatal(err)
		}
	}

	id := c.comment(94, "mallory", "/tern plan -d shop -e production")
	c.waitReactions(id, "eyes", "rocket")
	c.waitCheck(head, "tern/shop/production", "No changes")
	c.wantCheck(head, "tern/shop/production", "completed", "success", "No changes")
	c.wantCheck(head, "tern/shop/staging", "completed", "action_required", "Awaiting apply")
	if n := runs("tern/shop/staging"); n != stagingRuns || c.check(head, "tern/shop/staging").GetID() != stagingRun {
		t.Errorf("/tern plan -d shop -e production touched staging's runs (%d, was %d)", n, stagingRuns)
	}
	if agg := c.check(head, "tern"); agg.GetConclusion() == "success" {
		t.Error("tern passes while staging is still Awaiting apply")
	}

	id = c.comment(94, "mallory", "/tern plan")
	c.waitReactions(id, "eyes", "rocket")
	c.waitCheck(head, "tern/shop/staging", "No changes")
	c.wantCheck(head, "tern/shop/staging", "completed", "success", "No changes")
	waitFor(t, "the tern check to pass", func() bool { return c.check(head, "tern").GetConclusion() == "success" })

	// Naming an environment tern.yaml lacks is refused, naming it.
	id = c.comment(94, "mallory", "/tern plan -d shop -e qa")
	c.waitReactions(id, "confused")
	if reply := c.replyAfter(94, id); !strings.Contains(reply, "qa") {
		t.Errorf("refusal of -e qa does not name qa:\n%s", reply)
	}
}

// `/tern unlock -e ENV` releases only that environment's lock, so another
// PR may then take it while the other lock still names the holder; and
// `/tern status` lists every apply with its state and attempts (CONTRACT
// §4).
func TestContract2UnlockOneEnvAndStatus(t *testing.T) {
	c := newContract(t, fmt.Sprintf(fastRecovery, 4), "1s")
	head := sha(920)
	c.openPR(92, head, shopFiles(usersV2))
	c.waitCheck(head, "tern/shop/staging", "Awaiting apply")

	// Staging on the first try; production after one transient fault.
	c.comment(92, "alice", "/tern apply -e staging")
	c.waitCheck(head, "tern/shop/staging", "Applied")
	c.waitCheck(head, "tern/shop/production", "Awaiting apply")
	release := holdTable(t, c.prod, "users")
	c.comment(92, "alice", "/tern apply -e production")
	c.waitCheck(head, "tern/shop/production", "Failed (retrying...)")
	c.waitApplyState(92, "production", store.FailedRetryable)
	release()
	c.waitDue(92, "production")
	c.recoverPass(c.cfg)
	c.waitCheck(head, "tern/shop/production", "Applied")

	// Status, asked by a read user: both applies, states and attempts.
	id := c.comment(92, "mallory", "/tern status")
	status := c.replyAfter(92, id)
	row := func(env string) string {
		for _, l := range strings.Split(status, "\n") {
			if strings.Contains(l, env) && strings.HasPrefix(strings.TrimSpace(l), "|") {
				return l
			}
		}
		return ""
	}
	for _, tc := range []struct{ env, attempts string }{{"staging", "1/4"}, {"production", "2/4"}} {
		r := row(tc.env)
		if r == "" {
			t.Errorf("status has no row for %s:\n%s", tc.env, status)
			continue
		}
		if !regexp.MustCompile(`(?i)applied|completed`).MatchString(r) || !strings.Contains(r, tc.attempts) {
			t.Errorf("status row for %s is %q, want its state (applied) and attempts %s", tc.env, r, tc.attempts)
		}
	}

	// #92 holds both locks. Unlock staging only.
	id = c.comment(92, "alice", "/tern unlock -e staging")
	c.waitReactions(id, "eyes", "rocket")
	l, err := c.st.LocksForPR(context.Background(), repoName, 92)
	if err != nil || len(l) != 1 || l[0].Environment != "production" {
		t.Fatalf("#92's locks after /tern unlock -e staging: %+v (%v), want production only", l, err)
	}

	// Another PR, planned on the live schemas: staging is free, production
	// is still #92's.
	head2 := sha(921)
	c.openPR(93, head2, shopFiles(usersV3))
	c.waitCheck(head2, "tern/shop/staging", "Awaiting apply")
	c.comment(93, "alice", "/tern apply -e staging")
	c.waitCheck(head2, "tern/shop/staging", "Applied")
	c.waitCheck(head2, "tern/shop/production", "Awaiting apply")
	id = c.comment(93, "alice", "/tern apply -e production")
	c.waitReactions(id, "confused")
	if reply := c.replyAfter(93, id); !strings.Contains(reply, "#92") {
		t.Errorf("production refusal does not name #92:\n%s", reply)
	}
	if columnCount(t, c.prod, "users", "nick") != 0 {
		t.Error("production changed while #92 holds its lock")
	}
}
