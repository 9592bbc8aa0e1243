package bot

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/report"
	"github.com/ternhq/tern/store"
)

// `/tern unlock` releases the PR's lock, and another PR may then apply.
func TestUnlockLetsAnotherPRApply(t *testing.T) {
	h := newHarness(t)
	h.openPR(2, sha1, files(usersV2))
	h.comment(2, "alice", "User", "/tern apply -e staging")
	h.waitCheck(sha1, "tern/shop/staging", "Applied")
	h.waitReported(2, "staging")

	// #3 wants the email column gone again.
	h.openPR(3, sha2, files(usersV1))
	h.comment(3, "alice", "User", "/tern apply -e staging --allow-unsafe")
	if c := h.lastBotComment(3); !strings.Contains(c, "locked by #2") {
		t.Fatalf("second PR: reply %q, want it to name #2", c)
	}

	// Unlocking needs write access.
	id := h.comment(2, "mallory", "User", "/tern unlock")
	if c := h.lastBotComment(2); !strings.Contains(c, "needs `write`") {
		t.Errorf("unlock by a reader: reply %q", c)
	}
	assertReactions(t, h.gh, id, "eyes", "confused")
	if _, err := h.st.GetLock(context.Background(), repoName, "shop", "staging"); err != nil {
		t.Fatalf("a reader's unlock released the lock: %v", err)
	}

	id = h.comment(2, "alice", "User", "/tern unlock -e staging")
	if c := h.lastBotComment(2); !strings.Contains(c, "Released `shop/staging`") {
		t.Errorf("unlock reply %q", c)
	}
	assertReactions(t, h.gh, id, "eyes", "rocket")
	if _, err := h.st.GetLock(context.Background(), repoName, "shop", "staging"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("lock after unlock: %v, want none", err)
	}

	h.comment(3, "alice", "User", "/tern apply -e staging --allow-unsafe")
	h.waitCheck(sha2, "tern/shop/staging", "Applied")
	if hasColumn(t, h.staging, "users", "email") {
		t.Error("#3's apply did not run")
	}
	l, err := h.st.GetLock(context.Background(), repoName, "shop", "staging")
	if err != nil || l.PR != 3 {
		t.Errorf("lock after #3 applied: %+v %v, want held by #3", l, err)
	}
}

// apply_requirements: an apply is refused, naming the requirement, until
// it is met; then accepted.
func TestApplyRequirements(t *testing.T) {
	cases := []struct {
		requirement string
		unmet       []func(h *harness) // each leaves the requirement unmet
		meet        func(h *harness)
	}{
		{
			requirement: "approved",
			unmet: []func(h *harness){
				func(h *harness) {}, // no review at all
				func(h *harness) { h.gh.AddReview(repoName, 2, "bob", "COMMENTED") },
				func(h *harness) {
					h.gh.AddReview(repoName, 2, "bob", "APPROVED")
					h.gh.AddReview(repoName, 2, "carol", "CHANGES_REQUESTED")
				},
			},
			meet: func(h *harness) { h.gh.AddReview(repoName, 2, "carol", "APPROVED") },
		},
		{
			requirement: "mergeable",
			unmet: []func(h *harness){
				func(h *harness) {}, // not computed yet
				func(h *harness) { h.gh.SetMergeable(repoName, 2, false) },
			},
			meet: func(h *harness) { h.gh.SetMergeable(repoName, 2, true) },
		},
	}
	for _, c := range cases {
		t.Run(c.requirement, func(t *testing.T) {
			h := newHarness(t)
			h.gh.SetPermission(repoName, "bob", "write")
			h.gh.SetPermission(repoName, "carol", "maintain")
			f := files(usersV2)
			f["tern.yaml"] = ternYAML + "apply_requirements: [" + c.requirement + "]\n"
			h.openPR(2, sha1, f)
			for i, unmet := range c.unmet {
				unmet(h)
				id := h.comment(2, "alice", "User", "/tern apply -e staging")
				reply := h.lastBotComment(2)
				if !strings.Contains(reply, "refused") || !strings.Contains(reply, "requirement `"+c.requirement+"` is not met") {
					t.Errorf("unmet case %d: reply %q, want a refusal naming %s", i, reply, c.requirement)
				}
				assertReactions(t, h.gh, id, "eyes", "confused")
			}
			if applies, _ := h.st.AppliesForPR(context.Background(), repoName, 2); len(applies) != 0 {
				t.Fatalf("%d applies queued while %s was unmet", len(applies), c.requirement)
			}
			c.meet(h)
			id := h.comment(2, "alice", "User", "/tern apply -e staging")
			h.waitCheck(sha1, "tern/shop/staging", "Applied")
			assertReactions(t, h.gh, id, "eyes", "rocket")
			if !hasColumn(t, h.staging, "users", "email") {
				t.Error("staging not changed")
			}
		})
	}
}

// checkRunPayload returns a check_run webhook payload for action
// (rerequested or requested_action) on the newest run of name on sha; pr 0
// leaves pull_requests empty, as GitHub sends it for a PR from a fork.
func (h *harness) checkRunPayload(action, name, sha string, pr int) []byte {
	h.t.Helper()
	run := h.check(sha, name)
	if run == nil {
		h.t.Fatalf("no check run %s on %s", name, sha)
	}
	payload, err := fakegithub.Fixture("check_run." + action + ".json")
	if err != nil {
		h.t.Fatal(err)
	}
	edits := map[string]any{
		"repository.full_name": repoName, "repository.name": "shop", "repository.owner.login": "acme",
		"check_run.id": run.GetID(), "check_run.name": name, "check_run.head_sha": sha,
		"check_run.pull_requests": []any{}, "sender.login": "alice", "installation.id": inst,
	}
	if pr != 0 {
		edits["check_run.pull_requests"] = []any{map[string]any{"number": pr}}
	}
	if action == "requested_action" {
		edits["requested_action.identifier"] = report.RetryAction
	}
	if payload, err = fakegithub.Edit(payload, edits); err != nil {
		h.t.Fatal(err)
	}
	return payload
}

// The "Retry now" button of a run that failed for good starts a fresh
// apply, which applies once the cause is gone.
func TestCheckRunRetryNowButton(t *testing.T) {
	h := newHarness(t)
	h.openPR(2, sha1, files(usersV2))
	release := holdTable(t, h.staging)
	h.comment(2, "alice", "User", "/tern apply -e staging")
	h.waitCheck(sha1, "tern/shop/staging", "Failed (retrying...) attempt 1/3")
	h.comment(2, "alice", "User", "/tern retry -e staging")
	h.waitCheck(sha1, "tern/shop/staging", "Failed (retrying...) attempt 2/3")
	h.comment(2, "alice", "User", "/tern retry -e staging")
	run := h.waitCheck(sha1, "tern/shop/staging", "Failed after 3 attempts")
	if run.GetStatus() != "completed" || run.GetConclusion() != "failure" {
		t.Fatalf("failed run: %s/%s", run.GetStatus(), run.GetConclusion())
	}
	failed, err := h.st.LatestApply(context.Background(), repoName, 2, "shop", "staging")
	if err != nil || failed.State != store.Failed {
		t.Fatalf("apply %+v %v, want failed", failed, err)
	}
	h.waitReported(2, "staging")
	release()

	h.deliver("check_run", h.checkRunPayload("requested_action", "tern/shop/staging", sha1, 2))
	h.waitCheck(sha1, "tern/shop/staging", "Applied")
	if !hasColumn(t, h.staging, "users", "email") {
		t.Fatal("staging not changed")
	}
	a, err := h.st.LatestApply(context.Background(), repoName, 2, "shop", "staging")
	if err != nil || a.ID == failed.ID || a.RequestedBy != "alice" {
		t.Errorf("apply after Retry now: %+v %v, want a fresh one requested by alice", a, err)
	}
	if r := h.gh.ReopenedRuns(); len(r) != 0 {
		t.Errorf("completed check runs reopened: %+v", r)
	}
}

// "Re-run" (rerequested) of a cancelled run starts a fresh apply; on the
// aggregate `tern` run it plans again.
func TestCheckRunRerequested(t *testing.T) {
	h := newHarness(t)
	h.openPR(2, sha1, files(usersV2))
	release := holdTable(t, h.staging)
	h.comment(2, "alice", "User", "/tern apply -e staging")
	h.waitCheck(sha1, "tern/shop/staging", "Failed (retrying...)")
	h.comment(2, "alice", "User", "/tern cancel -e staging")
	h.waitCheck(sha1, "tern/shop/staging", "Cancelled")
	h.waitReported(2, "staging")
	release()

	h.deliver("check_run", h.checkRunPayload("rerequested", "tern/shop/staging", sha1, 2))
	h.waitCheck(sha1, "tern/shop/staging", "Applied")
	if !hasColumn(t, h.staging, "users", "email") {
		t.Fatal("staging not changed")
	}

	// Re-run of the aggregate re-plans: production now awaits apply. The
	// payload names no PR (a fork's): tern finds it from the commit.
	var plans int
	h.st.DB().QueryRow("SELECT COUNT(*) FROM tern_plans WHERE environment = 'production'").Scan(&plans)
	h.deliver("check_run", h.checkRunPayload("rerequested", "tern", sha1, 0))
	var after int
	h.st.DB().QueryRow("SELECT COUNT(*) FROM tern_plans WHERE environment = 'production'").Scan(&after)
	if after != plans+1 {
		t.Errorf("production plans %d then %d: the aggregate's Re-run did not plan again", plans, after)
	}
	h.waitCheck(sha1, "tern/shop/production", "Awaiting apply")
}

// `/tern help` (and a bare `/tern`) answer with the usage; unknown
// commands and flags are answered with it too, and a confused reaction.
func TestHelpAndBadCommands(t *testing.T) {
	h := newHarness(t)
	h.openPR(2, sha1, files(usersV2))
	cases := []struct {
		body     string
		want     []string
		reaction string
	}{
		{"/tern help", []string{"tern commands", "/tern apply -e ENV", "/tern unlock", "/tern status"}, "rocket"},
		{"/tern", []string{"tern commands", "/tern plan"}, "rocket"},
		{"/tern frobnicate", []string{`unknown command "frobnicate"`, "Usage", "/tern apply -e ENV"}, "confused"},
		{"/tern plan --everything", []string{`unknown flag "--everything"`, "Usage", "/tern plan"}, "confused"},
		{"/tern apply", []string{"needs an environment", "Usage"}, "confused"},
	}
	for _, c := range cases {
		id := h.comment(2, "bob", "User", c.body)
		reply := h.lastBotComment(2)
		for _, w := range c.want {
			if !strings.Contains(reply, w) {
				t.Errorf("%q: reply lacks %q:\n%s", c.body, w, reply)
			}
		}
		assertReactions(t, h.gh, id, "eyes", c.reaction)
	}
}

// An edited comment is not a command, even when it now reads as one.
func TestEditedCommentIgnored(t *testing.T) {
	h := newHarness(t)
	h.openPR(2, sha1, files(usersV2))
	before := len(h.gh.Comments(repoName, 2))
	c := h.gh.AddComment(repoName, 2, "alice", "User", "/tern apply -e staging")
	payload, err := fakegithub.CommentPayload(repoName, 2, c.GetID(), "alice", "User", "/tern apply -e staging", inst)
	if err != nil {
		t.Fatal(err)
	}
	if payload, err = fakegithub.Edit(payload, map[string]any{"action": "edited", "changes": map[string]any{"body": map[string]any{"from": "typo"}}}); err != nil {
		t.Fatal(err)
	}
	h.deliver("issue_comment", payload)
	if after := len(h.gh.Comments(repoName, 2)); after != before+1 {
		t.Errorf("bot answered an edited comment: %d comments, want %d", after, before+1)
	}
	assertReactions(t, h.gh, c.GetID())
	if applies, _ := h.st.AppliesForPR(context.Background(), repoName, 2); len(applies) != 0 {
		t.Errorf("an edited comment started %d applies", len(applies))
	}
}

// Closing a PR without merging after staging was applied, while its
// production apply is retrying: the locks are released, the retrying apply
// is cancelled, and one comment names the environment whose schema is live
// and its DDL. Merging says nothing of the kind.
func TestClosedWithoutMergeAfterStagingApplied(t *testing.T) {
	h := newHarness(t)
	h.openPR(2, sha1, files(usersV2))
	h.comment(2, "alice", "User", "/tern apply -e staging")
	h.waitCheck(sha1, "tern/shop/staging", "Applied")
	h.waitReported(2, "staging")
	release := holdTable(t, h.prod)
	defer release()
	h.comment(2, "alice", "User", "/tern apply -e production")
	h.waitCheck(sha1, "tern/shop/production", "Failed (retrying...)")
	h.waitFor("production apply retrying and reported", func() bool {
		a, err := h.st.LatestApply(context.Background(), repoName, 2, "shop", "production")
		return err == nil && a.State == store.FailedRetryable && a.ReportedVersion == a.Version
	})

	h.gh.ClosePR(repoName, 2, false)
	body, err := fakegithub.PRPayload("closed", repoName, 2, sha1, inst)
	if err != nil {
		t.Fatal(err)
	}
	h.deliver("pull_request", body)
	h.deliver("pull_request", body) // a second close event (new delivery id) adds nothing

	var notes []string
	for _, c := range h.botComments(2) {
		if strings.Contains(c, "closed without merging") {
			notes = append(notes, c)
		}
	}
	if len(notes) != 1 {
		t.Fatalf("%d closed-without-merge comments, want 1: %q", len(notes), notes)
	}
	if n := norm(notes[0]); !strings.Contains(n, "shop/staging") || !strings.Contains(n, "alter table users add column email") || strings.Contains(n, "shop/production") {
		t.Errorf("comment should name shop/staging and its DDL only:\n%s", notes[0])
	}
	run := h.waitCheck(sha1, "tern/shop/production", "Cancelled")
	if run.GetConclusion() != "cancelled" {
		t.Errorf("production run %s", run.GetConclusion())
	}
	if locks, err := h.st.LocksForPR(context.Background(), repoName, 2); err != nil || len(locks) != 0 {
		t.Errorf("locks after close: %v %v", locks, err)
	}

	// A merged PR leaves no such comment.
	h.openPR(3, sha2, files(usersDropName))
	h.comment(3, "alice", "User", "/tern apply -e staging --allow-unsafe")
	h.waitCheck(sha2, "tern/shop/staging", "Applied")
	h.waitReported(3, "staging")
	h.gh.ClosePR(repoName, 3, true)
	body, _ = fakegithub.PRPayload("merged", repoName, 3, sha2, inst)
	h.deliver("pull_request", body)
	for _, c := range h.botComments(3) {
		if strings.Contains(c, "closed without merging") {
			t.Errorf("merged PR got a not-merged comment:\n%s", c)
		}
	}
}
