package e2e

import (
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/fakegithub"
)

// A pull request from a fork (its head repository is not the base
// repository) whose tern.yaml drops `approved` and lists only production,
// to skip staging. The policy is the base branch's: the plan comment says
// the change waits for merge, the fork's author (read access) cannot
// apply, approvals by people without write access do not count, staging
// comes first, and only then is production changed.
func TestForkPRCannotWeakenPolicy(t *testing.T) {
	c := newContract(t, "  lease: 1m", "5s")
	c.gh.SetBase(repoName, map[string]string{"tern.yaml": contractYAML + "apply_requirements: [approved]\n"})
	head := sha(777)
	files := shopFiles(usersV2)
	files["tern.yaml"] = "databases:\n  - name: shop\n    schema_dir: db/shop\n    environments: [production]\n"
	c.gh.OpenPR(repoName, 77, head, files)
	c.gh.SetForkHead(repoName, 77, "mallory/shop")
	body, err := fakegithub.PRPayload("opened", repoName, 77, head, installation)
	if err == nil {
		body, err = fakegithub.Edit(body, map[string]any{
			"pull_request.head.repo.full_name": "mallory/shop", "pull_request.head.repo.fork": true,
			"pull_request.user.login": "mallory",
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	c.waitDelivered(c.deliver(c.srv, "pull_request", body))

	c.waitCheck(head, "tern/shop/production", "Waiting for staging")
	c.wantCheck(head, "tern/shop/staging", "completed", "action_required", "Awaiting apply")
	plans := c.botCommentsWith(77, "<!-- tern:plan -->")
	if len(plans) != 1 || !strings.Contains(plans[0].GetBody(), "Policy changes take effect after merge") {
		t.Fatalf("plan comment does not say the fork's policy waits for merge: %v", plans)
	}

	refused := func(user, cmd string, want ...string) {
		t.Helper()
		id := c.comment(77, user, cmd)
		c.waitReactions(id, "confused")
		reply := c.replyAfter(77, id)
		for _, w := range want {
			if !strings.Contains(reply, w) {
				t.Errorf("%s by %s: reply lacks %q:\n%s", cmd, user, w, reply)
			}
		}
	}
	refused("mallory", "/tern apply -e production", "write")
	refused("alice", "/tern apply -e production", "approved", "not met")
	c.gh.AddReview(repoName, 77, "mallory", "APPROVED")
	c.gh.AddReview(repoName, 77, "trish", "APPROVED")
	refused("alice", "/tern apply -e production", "@mallory's approval does not count", "@trish's approval does not count")
	c.gh.AddReview(repoName, 77, "maggie", "APPROVED")
	refused("alice", "/tern apply -e production", "staging")
	if columnCount(t, c.prod, "users", "email") != 0 {
		t.Fatal("production changed before staging")
	}

	id := c.comment(77, "alice", "/tern apply -e staging")
	c.waitCheck(head, "tern/shop/staging", "Applied")
	c.waitReactions(id, "eyes", "rocket")
	id = c.comment(77, "alice", "/tern apply -e production")
	c.waitCheck(head, "tern/shop/production", "Applied")
	c.waitReactions(id, "eyes", "rocket")
	if columnCount(t, c.staging, "users", "email") != 1 || columnCount(t, c.prod, "users", "email") != 1 {
		t.Error("staging then production not both changed")
	}
}
