package bot

import (
	"context"
	"errors"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/report"
	"github.com/ternhq/tern/store"
)

// onCheckRun handles "Re-run" (rerequested) and the "Retry now" button
// (requested_action) on tern's check runs: a per-environment run retries
// its apply; the aggregate `tern` run plans again.
func (b *Bot) onCheckRun(ctx context.Context, e *github.CheckRunEvent) error {
	action := e.GetAction()
	switch {
	case action == "rerequested":
	case action == "requested_action" && e.GetRequestedAction().Identifier == report.RetryAction:
	default:
		return nil
	}
	run := e.GetCheckRun()
	name := run.GetName()
	if name != report.AggregateName && !strings.HasPrefix(name, "tern/") {
		return nil
	}
	repo := e.GetRepo().GetFullName()
	inst := e.GetInstallation().GetID()
	sha := run.GetHeadSHA()
	n := 0
	if len(run.PullRequests) > 0 {
		n = run.PullRequests[0].GetNumber()
	}
	if n == 0 {
		// A fork's runs carry no pull requests: find the PR by its head.
		id, _, err := b.st.Ref(ctx, repo, shaPRKey(sha))
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		n = int(id)
	}
	gh, err := b.client(inst)
	if err != nil {
		return err
	}
	owner, nm := splitRepo(repo)
	pr := &prInfo{Owner: owner, Name: nm, Repo: repo, Number: n, InstallationID: inst}
	cmd := &Command{Name: "plan", Line: "Re-run " + name}
	if name != report.AggregateName {
		parts := strings.SplitN(name, "/", 3)
		if len(parts) != 3 {
			return nil
		}
		cmd = &Command{Name: "retry", Database: parts[1], Environment: parts[2], Line: "/tern retry -e " + parts[2] + " -d " + parts[1]}
	}
	user := e.GetSender().GetLogin()
	unlock := b.lockPR(repo, n)
	defer unlock()
	err = b.runCommand(ctx, gh, pr, cmd, user)
	var ref *refusal
	if errors.As(err, &ref) {
		return b.reply(ctx, gh, pr, ref.Reply)
	}
	return err
}
