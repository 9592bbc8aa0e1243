package e2e

import (
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"
)

// The whole happy path through `tern serve`, as CONTRACT §4-§6 describe it:
// autoplan posts one plan comment and the check runs (staging Awaiting
// apply, production Waiting for staging, tern not passing); production is
// refused until staging is applied; staging then production are applied
// with their reactions, one comment per apply and new check runs; tern
// passes only at the end; nothing completed is reopened. A push then
// re-plans: new runs on the new head, the same plan comment edited.
func TestContractHappyPathStagingThenProduction(t *testing.T) {
	c := newContract(t, "  lease: 1m\n  max_attempts: 3\n  backoff_base: 1s\n  backoff_max: 2s", "5s")
	head := sha(1)
	c.openPR(1, head, shopFiles(usersV2))

	// §5: after a plan, the first environment with changes is Awaiting
	// apply, each later one Waiting for the previous one.
	c.waitCheck(head, "tern/shop/production", "Waiting for staging")
	c.wantCheck(head, "tern/shop/staging", "completed", "action_required", "Awaiting apply")
	c.wantCheck(head, "tern/shop/production", "completed", "action_required", "Waiting for staging")
	if agg := c.check(head, "tern"); agg == nil || agg.GetConclusion() == "success" || agg.GetConclusion() == "neutral" || agg.GetConclusion() == "skipped" {
		t.Errorf("aggregate tern check after the plan: %+v, want one that blocks a merge", agg)
	}
	// §6: one plan comment with the DDL and the next command to type.
	plans := c.botComments(1)
	if len(plans) != 1 {
		t.Fatalf("after autoplan the App made %d comments, want 1 plan comment", len(plans))
	}
	planID, planBody := plans[0].GetID(), plans[0].GetBody()
	for _, want := range []string{"email", "/tern apply -e staging"} {
		if !strings.Contains(planBody, want) {
			t.Errorf("plan comment lacks %q:\n%s", want, planBody)
		}
	}

	// §4: production before staging is refused, naming staging.
	id := c.comment(1, "alice", "/tern apply -e production")
	c.waitReactions(id, "confused")
	if reply := c.replyAfter(1, id); !strings.Contains(reply, "staging") {
		t.Errorf("refusal of production before staging does not name staging:\n%s", reply)
	}
	if columnCount(t, c.prod, "users", "email") != 0 {
		t.Fatal("production changed before staging was applied")
	}

	// Staging, by a write user.
	id = c.comment(1, "alice", "/tern apply -e staging")
	c.waitReactions(id, "eyes")
	c.waitCheck(head, "tern/shop/staging", "Applied")
	c.wantCheck(head, "tern/shop/staging", "completed", "success", "Applied")
	c.waitReactions(id, "eyes", "rocket")
	if columnCount(t, c.staging, "users", "email") != 1 {
		t.Fatal("staging lacks users.email after Applied")
	}
	// Production becomes the environment awaiting apply.
	c.waitCheck(head, "tern/shop/production", "Awaiting apply")
	c.wantCheck(head, "tern/shop/production", "completed", "action_required", "Awaiting apply")
	if agg := c.check(head, "tern"); agg.GetConclusion() == "success" {
		t.Error("aggregate tern check passes with production not applied")
	}
	stagingComments := c.botCommentsAfter(1, id)
	if len(stagingComments) != 1 || !strings.Contains(stagingComments[0].GetBody(), "staging") {
		t.Errorf("the staging apply made %d comments, want 1 (edited as it moves): %v", len(stagingComments), bodies(stagingComments))
	}

	// Production, by a maintain user (role_name maintain, permission write).
	id = c.comment(1, "maggie", "/tern apply -e production")
	c.waitCheck(head, "tern/shop/production", "Applied")
	c.wantCheck(head, "tern/shop/production", "completed", "success", "Applied")
	c.waitReactions(id, "eyes", "rocket")
	if columnCount(t, c.prod, "users", "email") != 1 {
		t.Fatal("production lacks users.email after Applied")
	}
	c.waitCheck(head, "tern", "")
	waitFor(t, "the tern check to pass", func() bool { return c.check(head, "tern").GetConclusion() == "success" })
	c.wantCheck(head, "tern", "completed", "success", "")
	if n := len(c.botCommentsAfter(1, id)); n != 1 {
		t.Errorf("the production apply made %d comments, want 1", n)
	}
	// No retries, so no notifying comment.
	if n := len(c.botCommentsWith(1, "after 1 attempt")); n != 0 {
		t.Errorf("%d 'applied after N attempts' comments for applies that needed no retry", n)
	}

	// §5: every state change after a completed run is a new run; one run
	// per name per state, never reopened.
	if r := c.gh.ReopenedRuns(); len(r) != 0 {
		t.Errorf("completed check runs reopened: %+v", r)
	}
	names := map[string]bool{}
	for _, r := range c.gh.CheckRuns(repoName, head) {
		names[r.GetName()] = true
		if r.GetConclusion() == "neutral" || r.GetConclusion() == "skipped" {
			t.Errorf("run %s concluded %s", r.GetName(), r.GetConclusion())
		}
	}
	for n := range names {
		if n != "tern" && n != "tern/shop/staging" && n != "tern/shop/production" {
			t.Errorf("unexpected check run name %q", n)
		}
	}

	// Synchronize: a new head re-plans; its checks are new runs on the new
	// commit and the one plan comment is edited, not duplicated.
	head2 := sha(2)
	c.gh.Push(repoName, 1, head2, shopFiles(usersV3))
	c.prEvent("synchronize", 1, head2)
	c.waitCheck(head2, "tern/shop/staging", "Awaiting apply")
	c.wantCheck(head2, "tern/shop/staging", "completed", "action_required", "Awaiting apply")
	c.wantCheck(head2, "tern/shop/production", "completed", "action_required", "Waiting for staging")
	if agg := c.check(head2, "tern"); agg == nil || agg.GetConclusion() == "success" {
		t.Errorf("aggregate on the new head: %+v, want a blocking run", agg)
	}
	var planComments int
	for _, cm := range c.botComments(1) {
		if strings.Contains(cm.GetBody(), "nick") {
			planComments++
			if cm.GetID() != planID {
				t.Errorf("re-plan posted comment %d, want plan comment %d edited", cm.GetID(), planID)
			}
		}
	}
	if planComments != 1 {
		t.Errorf("%d comments show the re-plan, want the one plan comment", planComments)
	}
	// The old head's runs stay as they were.
	c.wantCheck(head, "tern/shop/production", "completed", "success", "Applied")
}

// botCommentsAfter returns the App's comments on PR n made after comment id.
func (c *cworld) botCommentsAfter(n int, id int64) []*github.IssueComment {
	var out []*github.IssueComment
	for _, cm := range c.botComments(n) {
		if cm.GetID() > id {
			out = append(out, cm)
		}
	}
	return out
}

func bodies(cs []*github.IssueComment) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.GetBody())
	}
	return out
}
