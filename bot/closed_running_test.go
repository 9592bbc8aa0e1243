package bot

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/recovery"
	"github.com/ternhq/tern/store"
)

// A PR closed without merging while its apply runs: the attempt cannot be
// cut short and its change goes live after the close was handled. The
// PR's lock on that target stays until the attempt ends, so the next
// recovery pass handles the close again and says on the PR what is live
// but was not merged.
func TestClosedWhileApplyRuns(t *testing.T) {
	h := newHarnessLockWait(t, "60s")
	ctx := context.Background()
	h.openPR(2, sha1, files(usersV2))
	release := holdTable(t, h.staging)
	defer release()
	h.comment(2, "alice", "User", "/tern apply -e staging")
	var stagingName string
	if err := h.staging.QueryRow("SELECT DATABASE()").Scan(&stagingName); err != nil {
		t.Fatal(err)
	}
	testdb.WaitForMetadataLockWait(t, h.staging, stagingName)

	h.gh.ClosePR(repoName, 2, false)
	body, err := fakegithub.PRPayload("closed", repoName, 2, sha1, inst)
	if err != nil {
		t.Fatal(err)
	}
	h.deliver("pull_request", body)
	if locks, err := h.st.LocksForPR(ctx, repoName, 2); err != nil || len(locks) != 1 {
		t.Fatalf("locks after the close while applying: %v %v, want the running target's", locks, err)
	}
	release()
	h.waitFor("the running apply to complete", func() bool {
		a, err := h.st.LatestApply(ctx, repoName, 2, "shop", "staging")
		return err == nil && a.State == store.Completed
	})

	pass := &recovery.Pass{Store: h.st, Runner: h.bot.runner, Reporter: h.bot.Reporter(), PRs: h.bot,
		Logger: slog.New(slog.DiscardHandler)}
	if _, err := pass.Run(ctx); err != nil {
		t.Fatal(err)
	}
	var notes []string
	for _, c := range h.botComments(2) {
		if strings.Contains(c, "closed without merging") {
			notes = append(notes, c)
		}
	}
	if len(notes) != 1 || !strings.Contains(norm(notes[0]), "alter table users add column email") {
		t.Fatalf("closed-without-merge comments %q, want one naming the live DDL", notes)
	}
	if locks, err := h.st.LocksForPR(ctx, repoName, 2); err != nil || len(locks) != 0 {
		t.Errorf("locks after the pass: %v %v, want none", locks, err)
	}
}
