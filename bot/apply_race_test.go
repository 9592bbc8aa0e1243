package bot

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ternhq/tern/store"
)

// TestApplyOfAPlanAppliedMeanwhileIsRefused: two `/tern apply -e staging`
// at once, the first finishing while the second was still planning. The
// second reaches queueApply with a plan that is already live: it is refused
// as nothing to apply, and no second apply (which would run the DDL again
// and fail Duplicate column) is created.
func TestApplyOfAPlanAppliedMeanwhileIsRefused(t *testing.T) {
	h := newHarness(t)
	h.openPR(2, sha1, files(usersV2))
	h.comment(2, "alice", "User", "/tern apply -e staging")
	h.waitCheck(sha1, "tern/shop/staging", "Applied")
	h.waitReported(2, "staging")

	ctx := context.Background()
	sp, err := h.st.LatestPlan(ctx, repoName, 2, "shop", "staging")
	if err != nil {
		t.Fatal(err)
	}
	pr := &prInfo{Owner: "acme", Name: "shop", Repo: repoName, Number: 2, HeadSHA: sha1}
	cmd := &Command{Name: "apply", Environment: "staging", Line: "/tern apply -e staging"}
	err = h.bot.queueApply(ctx, pr, cmd, sp, "adam")
	var r *refusal
	if !errors.As(err, &r) || !strings.Contains(r.Reply, "was just applied with this plan") {
		t.Fatalf("queueApply of an applied plan = %v, want a refusal saying it was just applied", err)
	}
	applies, err := h.st.AppliesForPR(ctx, repoName, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(applies) != 1 || applies[0].State != store.Completed {
		t.Fatalf("applies: %d, want the one completed", len(applies))
	}
}
