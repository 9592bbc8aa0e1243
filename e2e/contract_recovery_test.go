package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/ternhq/tern/store"
)

// retryingTitle is CONTRACT §5's `Failed (retrying...) attempt 2/5, next
// retry ~14:05 UTC` with the attempt and maximum filled in.
func retryingTitle(attempt, max int) *regexp.Regexp {
	return regexp.MustCompile(fmt.Sprintf(`^Failed \(retrying\.\.\.\) attempt %d/%d, next retry ~\d\d:\d\d UTC`, attempt, max))
}

const fastRecovery = "  interval: 0s\n  lease: 1m\n  max_attempts: %d\n  backoff_base: 1s\n  backoff_max: 1s"

// A transient fault (a metadata lock held past lock_wait_timeout) leaves
// the apply Failed (retrying...) in progress, with the attempt, next retry
// time and last error; `tern serve` with recovery.interval 0 does not retry
// by itself; once the lock is gone one `tern recover` pass applies it, the
// check ends Applied as a new run, the apply's comment is edited, and one
// new comment says `applied after 2 attempts`. A second pass touches
// nothing and posts nothing.
func TestContractTransientFaultRecoveredByTernRecover(t *testing.T) {
	c := newContract(t, fmt.Sprintf(fastRecovery, 3), "1s")
	head := sha(10)
	c.openPR(2, head, shopFiles(usersV2))
	c.waitCheck(head, "tern/shop/staging", "Awaiting apply")

	release := holdTable(t, c.staging, "users")
	id := c.comment(2, "alice", "/tern apply -e staging")
	run := c.waitCheck(head, "tern/shop/staging", "Failed (retrying...)")
	if !retryingTitle(1, 3).MatchString(run.GetOutput().GetTitle()) {
		t.Errorf("retrying title %q, want like %q", run.GetOutput().GetTitle(), "Failed (retrying...) attempt 1/3, next retry ~14:05 UTC")
	}
	if run.GetStatus() != "in_progress" || run.GetConclusion() != "" {
		t.Errorf("retrying run is %s/%s, want in_progress without conclusion", run.GetStatus(), run.GetConclusion())
	}
	out := run.GetOutput()
	if s := out.GetTitle() + out.GetSummary() + out.GetText(); !strings.Contains(s, "1205") && !strings.Contains(strings.ToLower(s), "lock wait") {
		t.Errorf("retrying run does not show the last error:\n%s", s)
	}
	if agg := c.check(head, "tern"); agg.GetConclusion() == "success" {
		t.Error("aggregate tern check passes while staging is retrying")
	}
	a := c.waitApplyState(2, "staging", store.FailedRetryable)
	waitFor(t, "the apply comment to show the retry", func() bool {
		return len(c.botCommentsWith(2, "Failed (retrying...)")) == 1
	})
	applyComments := c.botCommentsAfter(2, id)
	if len(applyComments) != 1 {
		t.Fatalf("after the first attempt the App made %d comments after the command, want 1 apply comment: %v", len(applyComments), bodies(applyComments))
	}
	applyCommentID := applyComments[0].GetID()

	release()
	c.waitDue(2, "staging")
	if got := c.latestApply(2, "staging"); got.State != store.FailedRetryable || got.Attempt != 1 {
		t.Fatalf("with recovery.interval 0 tern serve moved the apply by itself: %s attempt %d", got.State, got.Attempt)
	}
	stdout, sum := c.recoverPass(c.cfg)
	if sum != (summary{Recovered: 1}) {
		t.Errorf("recover summary %+v, want recovered=1\n%s", sum, stdout)
	}
	if !strings.Contains(stdout, fmt.Sprintf("apply %d ", a.ID)) || !strings.Contains(stdout, "acme/shop#2") {
		t.Errorf("recover printed no line for apply %d:\n%s", a.ID, stdout)
	}
	applied := c.waitCheck(head, "tern/shop/staging", "Applied")
	c.wantCheck(head, "tern/shop/staging", "completed", "success", "Applied")
	// §5: the in-progress run is updated in place until it completes.
	if applied.GetID() != run.GetID() {
		t.Errorf("Applied is run %d, want the in-progress run %d completed in place", applied.GetID(), run.GetID())
	}
	if columnCount(t, c.staging, "users", "email") != 1 {
		t.Error("staging lacks users.email after the recovered apply")
	}
	waitFor(t, "the outcome comment", func() bool { return len(c.botCommentsWith(2, "applied after 2 attempts")) > 0 })
	after := c.botCommentsAfter(2, id)
	if len(after) != 2 || after[0].GetID() != applyCommentID || !strings.Contains(after[0].GetBody(), "Applied") {
		t.Errorf("comments after the command: %v\nwant the apply comment (%d) edited to Applied, then the outcome comment", bodies(after), applyCommentID)
	}
	if n := len(c.botCommentsWith(2, "applied after 2 attempts")); n != 1 {
		t.Errorf("%d 'applied after 2 attempts' comments, want 1", n)
	}

	// Nothing is left to do; nothing is said twice.
	before := len(c.botComments(2))
	stdout, sum = c.recoverPass(c.cfg)
	if sum != (summary{}) {
		t.Errorf("second pass %+v, want all zero\n%s", sum, stdout)
	}
	if n := len(c.botComments(2)); n != before {
		t.Errorf("a pass with nothing to do made %d comments", n-before)
	}
	if r := c.gh.ReopenedRuns(); len(r) != 0 {
		t.Errorf("completed check runs reopened: %+v", r)
	}
}

// An apply whose fault never clears fails for good after max_attempts: the
// check ends completed/failure `Failed`, one comment says `failed for good
// after 2 attempts: <error>`, `tern recover` exits 0 counting it failed,
// `/tern status` (anyone) shows it, and `/tern retry` then starts a fresh
// apply that succeeds once the fault is gone.
func TestContractMaxAttemptsExhaustedThenRetry(t *testing.T) {
	c := newContract(t, fmt.Sprintf(fastRecovery, 2), "1s")
	head := sha(20)
	c.openPR(3, head, shopFiles(usersV2))
	c.waitCheck(head, "tern/shop/staging", "Awaiting apply")

	release := holdTable(t, c.staging, "users")
	c.comment(3, "alice", "/tern apply -e staging")
	run := c.waitCheck(head, "tern/shop/staging", "Failed (retrying...)")
	if !retryingTitle(1, 2).MatchString(run.GetOutput().GetTitle()) {
		t.Errorf("retrying title %q", run.GetOutput().GetTitle())
	}
	first := c.waitApplyState(3, "staging", store.FailedRetryable)
	c.waitDue(3, "staging")

	stdout, sum := c.recoverPass(c.cfg)
	if sum != (summary{Failed: 1}) {
		t.Errorf("recover summary %+v, want failed=1\n%s", sum, stdout)
	}
	c.waitCheck(head, "tern/shop/staging", "Failed")
	c.wantCheck(head, "tern/shop/staging", "completed", "failure", "Failed")
	if strings.HasPrefix(c.check(head, "tern/shop/staging").GetOutput().GetTitle(), "Failed (retrying") {
		t.Error("the exhausted apply still shows Failed (retrying...)")
	}
	if agg := c.check(head, "tern"); agg.GetConclusion() == "success" {
		t.Error("aggregate passes with staging failed")
	}
	waitFor(t, "the failed-for-good comment", func() bool { return len(c.botCommentsWith(3, "failed for good after 2 attempts: ")) > 0 })
	outcome := c.botCommentsWith(3, "failed for good after 2 attempts: ")
	if len(outcome) != 1 {
		t.Errorf("%d failed-for-good comments, want 1", len(outcome))
	}
	if b := outcome[0].GetBody(); !strings.Contains(b, "1205") && !strings.Contains(strings.ToLower(b), "lock wait") {
		t.Errorf("failed-for-good comment does not carry the error:\n%s", b)
	}
	if a := c.latestApply(3, "staging"); a.ID != first.ID || a.State != store.Failed || a.Attempt != 2 {
		t.Errorf("apply %d: %s attempt %d, want %d failed after attempt 2", a.ID, a.State, a.Attempt, first.ID)
	}
	if columnCount(t, c.staging, "users", "email") != 0 {
		t.Error("staging changed though every attempt failed")
	}

	// Anyone may ask for the status.
	id := c.comment(3, "mallory", "/tern status")
	status := c.replyAfter(3, id)
	for _, want := range []string{"staging", "Failed", "2/2"} {
		if !strings.Contains(status, want) {
			t.Errorf("status reply lacks %q:\n%s", want, status)
		}
	}

	// /tern retry after a failure for good starts a fresh apply.
	release()
	id = c.comment(3, "alice", "/tern retry -e staging")
	c.waitReactions(id, "eyes")
	c.waitCheck(head, "tern/shop/staging", "Applied")
	c.wantCheck(head, "tern/shop/staging", "completed", "success", "Applied")
	if a := c.latestApply(3, "staging"); a.ID == first.ID || a.State != store.Completed {
		t.Errorf("after retry the newest apply is %d %s, want a fresh completed apply", a.ID, a.State)
	}
	if columnCount(t, c.staging, "users", "email") != 1 {
		t.Error("staging lacks users.email after the retry")
	}
	c.waitReactions(id, "eyes", "rocket")
	if r := c.gh.ReopenedRuns(); len(r) != 0 {
		t.Errorf("completed check runs reopened: %+v", r)
	}
}

// `/tern cancel` stops a retrying apply: it ends cancelled with a
// completed/cancelled `Cancelled` check, a later recover pass leaves it
// alone, a read user's cancel is refused naming `write`, and `/tern retry`
// starts a fresh apply after it.
func TestContractCancelThenRetry(t *testing.T) {
	c := newContract(t, fmt.Sprintf(fastRecovery, 5), "1s")
	head := sha(30)
	c.openPR(4, head, shopFiles(usersV2))
	c.waitCheck(head, "tern/shop/staging", "Awaiting apply")

	release := holdTable(t, c.staging, "users")
	c.comment(4, "alice", "/tern apply -e staging")
	c.waitCheck(head, "tern/shop/staging", "Failed (retrying...)")
	a := c.waitApplyState(4, "staging", store.FailedRetryable)

	id := c.comment(4, "mallory", "/tern cancel -e staging")
	c.waitReactions(id, "confused")
	if reply := c.replyAfter(4, id); !strings.Contains(reply, "write") {
		t.Errorf("refusal of a read user's cancel does not name write:\n%s", reply)
	}
	if got := c.latestApply(4, "staging"); got.State != store.FailedRetryable {
		t.Fatalf("a read user's cancel moved the apply to %s", got.State)
	}

	id = c.comment(4, "alice", "/tern cancel -e staging")
	c.waitCheck(head, "tern/shop/staging", "Cancelled")
	c.wantCheck(head, "tern/shop/staging", "completed", "cancelled", "Cancelled")
	c.waitReactions(id, "eyes", "rocket")
	if got := c.latestApply(4, "staging"); got.ID != a.ID || got.State != store.Cancelled {
		t.Fatalf("apply after cancel: %d %s, want %d cancelled", got.ID, got.State, a.ID)
	}
	release()
	c.waitDue(4, "staging")
	if _, sum := c.recoverPass(c.cfg); sum != (summary{}) {
		t.Errorf("a pass after the cancel touched applies: %+v", sum)
	}
	if columnCount(t, c.staging, "users", "email") != 0 {
		t.Fatal("the cancelled apply changed staging")
	}

	id = c.comment(4, "alice", "/tern retry -e staging")
	c.waitCheck(head, "tern/shop/staging", "Applied")
	c.waitReactions(id, "eyes", "rocket")
	if got := c.latestApply(4, "staging"); got.ID == a.ID || got.State != store.Completed {
		t.Errorf("after retry the newest apply is %d %s, want a fresh completed one", got.ID, got.State)
	}
	if r := c.gh.ReopenedRuns(); len(r) != 0 {
		t.Errorf("completed check runs reopened: %+v", r)
	}
}

// Drift (CONTRACT §8): between attempts someone changes the live table in
// a way the plan did not expect. The next attempt re-plans, finds a
// difference it was not asked to make, and fails the apply for good
// without running the reviewed DDL: Failed check, a `failed for good`
// comment, the hand-made change left as it was.
func TestContractDriftFailsForGood(t *testing.T) {
	c := newContract(t, fmt.Sprintf(fastRecovery, 5), "1s")
	head := sha(70)
	c.openPR(70, head, shopFiles(usersV2))
	c.waitCheck(head, "tern/shop/staging", "Awaiting apply")
	release := holdTable(t, c.staging, "users")
	c.comment(70, "alice", "/tern apply -e staging")
	c.waitCheck(head, "tern/shop/staging", "Failed (retrying...)")
	c.waitApplyState(70, "staging", store.FailedRetryable)
	release()
	if _, err := c.staging.Exec("ALTER TABLE users ADD COLUMN email INT NULL"); err != nil {
		t.Fatal(err)
	}
	c.waitDue(70, "staging")
	stdout, sum := c.recoverPass(c.cfg)
	if sum.Failed != 1 || sum.Recovered != 0 {
		t.Errorf("recover after drift: %+v, want failed=1\n%s", sum, stdout)
	}
	c.waitCheck(head, "tern/shop/staging", "Failed")
	c.wantCheck(head, "tern/shop/staging", "completed", "failure", "Failed")
	if a := c.latestApply(70, "staging"); a.State != store.Failed {
		t.Errorf("apply after drift: %s, want failed", a.State)
	}
	waitFor(t, "the failed-for-good comment", func() bool { return len(c.botCommentsWith(70, "failed for good after 2 attempts")) == 1 })
	var typ string
	if err := c.staging.QueryRow(`SELECT data_type FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'users' AND column_name = 'email'`).Scan(&typ); err != nil {
		t.Fatal(err)
	}
	if typ != "int" {
		t.Errorf("users.email is %s after the drifted apply, want the hand-made int left alone", typ)
	}
}
