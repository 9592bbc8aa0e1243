package bot

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/report"
	"github.com/ternhq/tern/store"
)

// onPullRequest autoplans on opened, reopened and synchronize when the PR
// changes tern.yaml or a schema file, and on edited when its base changed;
// it cleans up on closed.
func (b *Bot) onPullRequest(ctx context.Context, e *github.PullRequestEvent) error {
	repo := e.GetRepo().GetFullName()
	n := e.GetNumber()
	if n == 0 {
		n = e.GetPullRequest().GetNumber()
	}
	inst := e.GetInstallation().GetID()
	switch e.GetAction() {
	case "opened", "reopened", "synchronize":
	case "closed":
		return b.HandleClosed(ctx, store.PRRef{Repository: repo, PR: n, InstallationID: inst}, e.GetPullRequest().GetMerged())
	case "edited":
		if !baseChanged(e) {
			return nil
		}
		// A new base means another policy and another diff (check_suite.go).
		return b.replan(ctx, repo, n, inst, "base changed")
	default:
		return nil
	}
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
	return b.autoplan(ctx, gh, pr)
}

// autoplan plans an open PR's head when the PR changes tern.yaml or a
// schema file, or was planned before. A PR without tern.yaml is left
// alone; one whose tern.yaml does not parse gets the error in its plan
// comment; one that changes no schema file gets a passing `tern` check.
func (b *Bot) autoplan(ctx context.Context, gh *github.Client, pr *prInfo) error {
	pol, err := b.readPolicyShown(ctx, gh, pr)
	var rce *repoConfigError
	switch {
	case errors.Is(err, errNoRepoConfig), errors.As(err, &rce):
		return nil
	case err != nil:
		return err
	}
	rc := pol.repo
	touched, err := touchesSchema(ctx, pol.base, pol.head, pol.baseRepo, pol.headRepo)
	if err != nil {
		return err
	}
	if !touched {
		// A PR planned before is planned again at its new head, whatever
		// this push changed: its schema changes are still in it.
		planned, err := b.everPlanned(ctx, pr, rc)
		if err != nil {
			return err
		}
		if !planned {
			return b.setCheck(ctx, gh, pr.Repo, pr.HeadSHA, report.NoSchemaChangesCheck())
		}
	}
	b.log.Info("autoplan", "repo", pr.Repo, "pr", pr.Number, "head", pr.HeadSHA, "base", pr.BaseSHA, "head_repo", pr.HeadRepo)
	_, err = b.planPR(ctx, gh, pr, pol, "", "")
	return err
}

// PRClosed asks GitHub whether a pull request is closed, and merged.
func (b *Bot) PRClosed(ctx context.Context, ref store.PRRef) (closed, merged bool, err error) {
	gh, err := b.client(ref.InstallationID)
	if err != nil {
		return false, false, err
	}
	pr, err := b.getPR(ctx, gh, ref.Repository, ref.PR, ref.InstallationID)
	if err != nil {
		return false, false, err
	}
	return pr.State == "closed", pr.Merged, nil
}

// HandleClosed does what closing a pull request means: its locks are
// released, its pending and retrying applies cancelled (their check runs
// completed as Cancelled), and, when it was not merged but its changes are
// live somewhere, a comment names those environments and the DDL. The lock
// of a target where an apply is running stays until the attempt ends (see
// releaseIdleLocks): the recovery pass then calls HandleClosed again.
func (b *Bot) HandleClosed(ctx context.Context, ref store.PRRef, merged bool) error {
	unlock := b.lockPR(ref.Repository, ref.PR)
	defer unlock()
	log := b.log.With("repo", ref.Repository, "pr", ref.PR, "merged", merged)
	applies, err := b.st.AppliesForPR(ctx, ref.Repository, ref.PR)
	if err != nil {
		return fmt.Errorf("applies of PR: %w", err)
	}
	released, err := b.releaseIdleLocks(ctx, ref, applies)
	if err != nil {
		return err
	}
	for _, l := range released {
		b.audit(ctx, store.Event{Repository: ref.Repository, PR: ref.PR, Actor: "tern", Action: "lock.released", Detail: l.Database + "/" + l.Environment + " (PR closed)"})
	}
	reason := "pull request closed"
	if merged {
		reason = "pull request merged"
	}
	var errs []error
	latestDone := map[string]*store.Apply{}
	for _, a := range applies {
		switch a.State {
		case store.Pending, store.FailedRetryable:
			ca, err := b.st.Cancel(ctx, a.ID, "tern", reason)
			if err != nil {
				if !errors.Is(err, store.ErrConflict) {
					errs = append(errs, fmt.Errorf("cancel apply %d: %w", a.ID, err))
				}
				continue
			}
			log.Info("apply cancelled", "apply", a.ID)
			if err := b.report(ctx, ca); err != nil {
				errs = append(errs, err)
			}
		case store.Completed:
			latestDone[key(a.Database, a.Environment)] = a
		}
	}
	if !merged && len(latestDone) > 0 {
		if err := b.commentUnmerged(ctx, ref, latestDone); err != nil {
			errs = append(errs, err)
		}
	}
	log.Info("pull request closed", "locks_released", len(released))
	return errors.Join(errs...)
}

// releaseIdleLocks releases the PR's locks except those of targets where
// one of its applies is running: an attempt cannot be cut short, and the
// kept lock keeps the PR among those the recovery pass looks at, so that
// once the attempt ends the pass handles the close again (cancels what is
// left, says what went live without being merged).
func (b *Bot) releaseIdleLocks(ctx context.Context, ref store.PRRef, applies []*store.Apply) ([]store.Lock, error) {
	running := map[string]bool{}
	for _, a := range applies {
		if a.State == store.Running {
			running[key(a.Database, a.Environment)] = true
		}
	}
	if len(running) == 0 {
		ls, err := b.st.ReleaseLocks(ctx, ref.Repository, ref.PR, "", "")
		if err != nil {
			return nil, fmt.Errorf("release locks: %w", err)
		}
		return ls, nil
	}
	held, err := b.st.LocksForPR(ctx, ref.Repository, ref.PR)
	if err != nil {
		return nil, fmt.Errorf("release locks: %w", err)
	}
	var out []store.Lock
	for _, l := range held {
		if running[key(l.Database, l.Environment)] {
			continue
		}
		ls, err := b.st.ReleaseLocks(ctx, ref.Repository, ref.PR, l.Database, l.Environment)
		if err != nil {
			return nil, fmt.Errorf("release locks: %w", err)
		}
		out = append(out, ls...)
	}
	return out, nil
}

func (b *Bot) commentUnmerged(ctx context.Context, ref store.PRRef, done map[string]*store.Apply) error {
	var live []report.LiveNotMerged
	var maxID int64
	for _, a := range done {
		tasks, err := b.st.Tasks(ctx, a.ID)
		if err != nil {
			return fmt.Errorf("tasks of apply %d: %w", a.ID, err)
		}
		l := report.LiveNotMerged{Database: a.Database, Environment: a.Environment, AppliedAt: a.FinishedAt}
		for _, t := range tasks {
			if t.State == store.Completed && !t.Skipped {
				l.DDL = append(l.DDL, t.DDL)
			}
		}
		if len(l.DDL) == 0 {
			continue
		}
		live = append(live, l)
		maxID = max(maxID, a.ID)
	}
	if len(live) == 0 {
		return nil
	}
	sort.Slice(live, func(i, j int) bool {
		if live[i].Database != live[j].Database {
			return live[i].Database < live[j].Database
		}
		return live[i].AppliedAt.Before(live[j].AppliedAt)
	})
	gh, err := b.client(ref.InstallationID)
	if err != nil {
		return err
	}
	return b.postOnce(ctx, gh, ref.Repository, ref.PR, unmergedKey(ref.PR, maxID), report.UnmergedMarker(maxID), report.UnmergedComment(maxID, live))
}

// everPlanned reports whether tern has planned any (database, environment)
// of the pull request before.
func (b *Bot) everPlanned(ctx context.Context, pr *prInfo, rc *config.Repo) (bool, error) {
	for _, db := range rc.Databases {
		for _, env := range db.Environments {
			_, err := b.st.LatestPlan(ctx, pr.Repo, pr.Number, db.Name, env)
			if err == nil {
				return true, nil
			}
			if !errors.Is(err, store.ErrNotFound) {
				return false, fmt.Errorf("read plans: %w", err)
			}
		}
	}
	return false, nil
}
