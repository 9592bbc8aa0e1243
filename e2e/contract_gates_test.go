package e2e

import (
	"strings"
	"testing"
)

// When the first environment already matches the PR, it is `No changes`
// (success) and the next one is the one `Awaiting apply` (CONTRACT §5);
// applying it is not refused for want of an earlier apply, since the
// earlier environment already has this schema. With nothing left, tern
// passes.
func TestContractFirstEnvironmentWithoutChanges(t *testing.T) {
	c := newContract(t, "  lease: 1m", "5s")
	if _, err := c.staging.Exec("ALTER TABLE users ADD COLUMN email VARCHAR(255) NOT NULL DEFAULT '' AFTER name"); err != nil {
		t.Fatal(err)
	}
	head := sha(400)
	c.openPR(40, head, shopFiles(usersV2))
	c.waitCheck(head, "tern/shop/production", "Awaiting apply")
	c.wantCheck(head, "tern/shop/staging", "completed", "success", "No changes")
	c.wantCheck(head, "tern/shop/production", "completed", "action_required", "Awaiting apply")
	if plan := c.botComments(40); len(plan) != 1 || !strings.Contains(plan[0].GetBody(), "/tern apply -e production") {
		t.Errorf("plan comment does not give `/tern apply -e production` as the next command: %v", bodies(plan))
	}

	id := c.comment(40, "alice", "/tern apply -e production")
	c.waitReactions(id, "eyes")
	if got := c.gh.Reactions(repoName, id); contains(got, "confused") {
		t.Fatalf("apply to production refused though staging already has this schema: %s", c.replyAfter(40, id))
	}
	c.waitCheck(head, "tern/shop/production", "Applied")
	if columnCount(t, c.prod, "users", "email") != 1 {
		t.Error("production lacks users.email")
	}
	waitFor(t, "the tern check to pass", func() bool { return c.check(head, "tern").GetConclusion() == "success" })
}

// A PR that changes nothing anywhere: every run `No changes` and tern
// passes at once.
func TestContractNoChangesPasses(t *testing.T) {
	c := newContract(t, "  lease: 1m", "5s")
	head := sha(410)
	c.openPR(41, head, shopFiles(usersV1+";\n"))
	c.waitCheck(head, "tern/shop/production", "No changes")
	c.wantCheck(head, "tern/shop/staging", "completed", "success", "No changes")
	c.wantCheck(head, "tern/shop/production", "completed", "success", "No changes")
	waitFor(t, "the tern check", func() bool { return c.check(head, "tern") != nil })
	c.wantCheck(head, "tern", "completed", "success", "")
}

// Unsafe changes are refused without --allow-unsafe, naming the statement,
// with an `Unsafe changes` action_required check; with the flag they are
// applied. apply_requirements [approved] refuses until a review approves.
func TestContractUnsafeAndApproval(t *testing.T) {
	c := newContract(t, "  lease: 1m", "5s")
	head := sha(420)
	files := shopFiles("CREATE TABLE users (\n  id BIGINT NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (id)\n);\n")
	files["tern.yaml"] = contractYAML + "apply_requirements: [approved]\n"
	c.openPR(42, head, files)
	c.waitCheck(head, "tern/shop/staging", "")

	id := c.comment(42, "alice", "/tern apply -e staging")
	c.waitReactions(id, "confused")
	if reply := c.replyAfter(42, id); !strings.Contains(reply, "approved") {
		t.Errorf("requirement refusal does not name `approved`:\n%s", reply)
	}
	c.gh.AddReview(repoName, 42, "maggie", "APPROVED") // a maintainer: only write or more counts

	id = c.comment(42, "alice", "/tern apply -e staging")
	c.waitReactions(id, "confused")
	reply := c.replyAfter(42, id)
	if !strings.Contains(reply, "name") || !strings.Contains(reply, "--allow-unsafe") {
		t.Errorf("unsafe refusal does not name the dropped column and --allow-unsafe:\n%s", reply)
	}
	c.wantCheck(head, "tern/shop/staging", "completed", "action_required", "Unsafe changes")
	if columnCount(t, c.staging, "users", "name") != 1 {
		t.Fatal("the unsafe change ran without --allow-unsafe")
	}

	id = c.comment(42, "adam", "/tern apply -e staging --allow-unsafe")
	c.waitCheck(head, "tern/shop/staging", "Applied")
	c.waitReactions(id, "eyes", "rocket")
	if columnCount(t, c.staging, "users", "name") != 0 {
		t.Error("users.name survived the --allow-unsafe apply")
	}
}
