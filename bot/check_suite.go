package bot

import (
	"context"
	"errors"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/store"
)

// onCheckSuite handles "Re-run all checks" (check_suite rerequested) on the
// suite of tern's check runs: the PR is planned again at that head.
func (b *Bot) onCheckSuite(ctx context.Context, e *github.CheckSuiteEvent) error {
	if e.GetAction() != "rerequested" {
		return nil
	}
	suite := e.GetCheckSuite()
	if id := suite.GetApp().GetID(); id != 0 && id != b.cfg.GitHub.AppID {
		return nil // another App's suite
	}
	repo := e.GetRepo().GetFullName()
	inst := e.GetInstallation().GetID()
	n := 0
	for _, p := range suite.PullRequests {
		n = p.GetNumber()
		break
	}
	if n == 0 {
		// A fork's suite carries no pull requests: find the PR by its head.
		id, _, err := b.st.Ref(ctx, repo, shaPRKey(suite.GetHeadSHA()))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		n = int(id)
	}
	return b.replan(ctx, repo, n, inst, "check_suite rerequested")
}

// replan plans an open PR again at its head, as autoplan does.
func (b *Bot) replan(ctx context.Context, repo string, n int, inst int64, why string) error {
	gh, err := b.client(inst)
	if err != nil {
		return err
	}
	unlock := b.lockPR(repo, n)
	defer unlock()
	pr, err := b.getPR(ctx, gh, repo, n, inst)
	if err != nil {
		return err
	}
	if pr.State != "open" {
		return nil
	}
	b.log.Info("re-plan", "repo", repo, "pr", n, "why", why)
	return b.autoplan(ctx, gh, pr)
}

// baseChanged reports whether a pull_request edited event moved the PR to
// another base branch (or another base commit).
func baseChanged(e *github.PullRequestEvent) bool {
	c := e.GetChanges()
	return c != nil && c.Base != nil && (c.Base.Ref != nil || c.Base.SHA != nil)
}
