package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/report"
	"github.com/ternhq/tern/store"
)

// refusal is a command tern will not carry out; Reply says why.
type refusal struct{ Reply string }

func (r *refusal) Error() string { return "refused" }

func refuse(body string) error { return &refusal{Reply: body} }

// onIssueComment handles a `/tern` comment on a pull request. final is true
// on the delivery's last attempt: only then does an error (not a refusal)
// get a reply, so a delivery retried after GitHub's hiccup answers once.
func (b *Bot) onIssueComment(ctx context.Context, e *github.IssueCommentEvent, final bool) error {
	if e.GetAction() != "created" || !e.GetIssue().IsPullRequest() {
		return nil
	}
	if e.GetComment().GetUser().GetType() == "Bot" || e.GetSender().GetType() == "Bot" {
		return nil
	}
	cmd, ok, perr := ParseCommand(e.GetComment().GetBody())
	if !ok {
		return nil
	}
	repo := e.GetRepo().GetFullName()
	n := e.GetIssue().GetNumber()
	inst := e.GetInstallation().GetID()
	user := e.GetComment().GetUser().GetLogin()
	commentID := e.GetComment().GetID()
	log := b.log.With("repo", repo, "pr", n, "user", user)
	gh, err := b.client(inst)
	if err != nil {
		return err
	}
	owner, name := splitRepo(repo)
	pr := &prInfo{Owner: owner, Name: name, Repo: repo, Number: n, InstallationID: inst}
	b.react(ctx, gh, pr, commentID, "eyes")
	if perr != nil {
		var pe *ParseError
		errors.As(perr, &pe)
		b.react(ctx, gh, pr, commentID, "confused")
		return b.reply(ctx, gh, pr, report.BadCommand(pe.Line, pe.Msg))
	}
	log = log.With("command", cmd.Name)
	log.Info("command received")
	unlock := b.lockPR(repo, n)
	defer unlock()
	err = b.runCommand(ctx, gh, pr, cmd, user)
	var ref *refusal
	switch {
	case errors.As(err, &ref):
		log.Info("command refused")
		b.react(ctx, gh, pr, commentID, "confused")
		return b.reply(ctx, gh, pr, ref.Reply)
	case err != nil && !final:
		log.Warn("command failed; the delivery will be retried", "err", err)
		return err
	case err != nil:
		b.react(ctx, gh, pr, commentID, "confused")
		if rerr := b.reply(ctx, gh, pr, report.Refusal(cmd.Line, "tern hit an error: "+err.Error(), "Try again in a minute; if it persists, ask whoever runs tern to look at its log.")); rerr != nil {
			log.Warn("reply with error", "err", rerr)
		}
		return err
	}
	b.react(ctx, gh, pr, commentID, "rocket")
	return nil
}

// runCommand carries out a parsed command. It returns a *refusal for
// anything the user must fix.
func (b *Bot) runCommand(ctx context.Context, gh *github.Client, pr *prInfo, cmd *Command, user string) error {
	if cmd.needsWrite() {
		role, err := b.permission(ctx, gh, pr, user)
		if err != nil {
			return err
		}
		if !canWrite(role) {
			return refuse(report.RefusePermission(cmd.Line, user, role))
		}
	}
	switch cmd.Name {
	case "help":
		return b.reply(ctx, gh, pr, report.Help())
	case "status":
		return b.cmdStatus(ctx, gh, pr)
	}
	full, err := b.getPR(ctx, gh, pr.Repo, pr.Number, pr.InstallationID)
	if err != nil {
		return err
	}
	*pr = *full
	if pr.State != "open" && cmd.Name != "unlock" {
		return refuse(report.Refusal(cmd.Line, "this pull request is closed.", "Reopen it first."))
	}
	switch cmd.Name {
	case "plan":
		_, err := b.planPR(ctx, gh, pr, nil, cmd.Database, cmd.Environment)
		return b.asRefusal(cmd, err)
	case "apply":
		return b.cmdApply(ctx, gh, pr, cmd, user)
	case "unlock":
		return b.cmdUnlock(ctx, gh, pr, cmd, user)
	case "retry":
		return b.cmdRetry(ctx, gh, pr, cmd, user)
	case "cancel":
		return b.cmdCancel(ctx, gh, pr, cmd, user)
	}
	return fmt.Errorf("command %q has no handler", cmd.Name)
}

// asRefusal turns errors the user must fix (no or bad tern.yaml, unknown
// database or environment) into refusals.
func (b *Bot) asRefusal(cmd *Command, err error) error {
	if err == nil {
		return nil
	}
	var fe *filterError
	var rce *repoConfigError
	switch {
	case errors.Is(err, errNoRepoConfig):
		return refuse(report.Refusal(cmd.Line, "neither this pull request's head commit nor its base has a `tern.yaml` at the repository root.", "Add one (see the tern README)."))
	case errors.As(err, &rce):
		return refuse(report.Refusal(cmd.Line, "`tern.yaml` is invalid: "+rce.Error(), "Fix it and push."))
	case errors.As(err, &fe):
		return refuse(report.Refusal(cmd.Line, fe.msg+".", ""))
	}
	return err
}

// cmdStatus replies with the PR's applies and locks.
func (b *Bot) cmdStatus(ctx context.Context, gh *github.Client, pr *prInfo) error {
	applies, err := b.st.AppliesForPR(ctx, pr.Repo, pr.Number)
	if err != nil {
		return fmt.Errorf("applies of PR: %w", err)
	}
	var locks []store.Lock
	seen := map[string]bool{}
	for _, a := range applies {
		k := key(a.Database, a.Environment)
		if seen[k] {
			continue
		}
		seen[k] = true
		l, err := b.st.GetLock(ctx, pr.Repo, a.Database, a.Environment)
		if err == nil && l.PR == pr.Number {
			locks = append(locks, *l)
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("read lock: %w", err)
		}
	}
	tasks := map[int64][]store.Task{}
	for _, a := range applies {
		if a.State != store.Running {
			continue
		}
		ts, err := b.st.Tasks(ctx, a.ID)
		if err != nil {
			return err
		}
		tasks[a.ID] = ts
	}
	return b.reply(ctx, gh, pr, report.StatusTable(applies, locks, tasks))
}

// cmdUnlock releases this PR's locks.
func (b *Bot) cmdUnlock(ctx context.Context, gh *github.Client, pr *prInfo, cmd *Command, user string) error {
	released, err := b.st.ReleaseLocks(ctx, pr.Repo, pr.Number, cmd.Database, cmd.Environment)
	if err != nil {
		return fmt.Errorf("release locks: %w", err)
	}
	if len(released) == 0 {
		return b.reply(ctx, gh, pr, report.Done("This PR held no matching locks."))
	}
	var names []string
	for _, l := range released {
		names = append(names, "`"+l.Database+"/"+l.Environment+"`")
		b.audit(ctx, store.Event{Repository: pr.Repo, PR: pr.Number, Actor: user, Action: "lock.released", Detail: l.Database + "/" + l.Environment})
	}
	return b.reply(ctx, gh, pr, report.Done("🔓 Released "+strings.Join(names, ", ")+"."))
}

// matchingDatabases returns the databases of tern.yaml that have env and
// match the -d filter.
func (b *Bot) matchingDatabases(ctx context.Context, gh *github.Client, pr *prInfo, cmd *Command) ([]string, error) {
	pol, err := b.readPolicy(ctx, gh, pr)
	if err != nil {
		return nil, b.asRefusal(cmd, err)
	}
	pairs, err := targetsOf(pol.repo, cmd.Database, cmd.Environment)
	if err != nil {
		return nil, b.asRefusal(cmd, err)
	}
	var dbs []string
	for _, p := range pairs {
		dbs = append(dbs, p[0])
	}
	return dbs, nil
}

// cmdRetry retries a failed_retryable apply now, or starts a fresh apply
// after one that failed for good or was cancelled.
func (b *Bot) cmdRetry(ctx context.Context, gh *github.Client, pr *prInfo, cmd *Command, user string) error {
	dbs, err := b.matchingDatabases(ctx, gh, pr, cmd)
	if err != nil {
		return err
	}
	var fresh []string
	allowUnsafe, allowBlocking := false, false
	for _, db := range dbs {
		a, err := b.st.LatestApply(ctx, pr.Repo, pr.Number, db, cmd.Environment)
		if errors.Is(err, store.ErrNotFound) {
			return refuse(report.Refusal(cmd.Line, fmt.Sprintf("there is no apply of `%s/%s` on this PR to retry.", db, cmd.Environment), "Use `/tern apply -e "+cmd.Environment+"`."))
		}
		if err != nil {
			return fmt.Errorf("latest apply: %w", err)
		}
		switch a.State {
		case store.FailedRetryable:
			ra, err := b.st.RetryNow(ctx, a.ID, user)
			var te *store.TransitionError
			if errors.Is(err, store.ErrConflict) || errors.As(err, &te) {
				// A recovery pass took it between our read and the retry.
				return refuse(report.Refusal(cmd.Line, fmt.Sprintf("apply #%d of `%s/%s` was picked up by a recovery pass in the meantime: it is being retried now.", a.ID, db, cmd.Environment), ""))
			}
			if err != nil {
				return fmt.Errorf("retry apply %d: %w", a.ID, err)
			}
			b.audit(ctx, store.Event{ApplyID: a.ID, Repository: pr.Repo, PR: pr.Number, Actor: user, Action: "apply.retry_requested"})
			b.reportHeld(ctx, ra)
			wake(b.wakeApplies)
		case store.Failed, store.Cancelled:
			fresh = append(fresh, db)
			allowUnsafe = allowUnsafe || a.AllowUnsafe
			allowBlocking = allowBlocking || a.AllowBlocking
		default:
			return refuse(report.Refusal(cmd.Line, fmt.Sprintf("apply #%d of `%s/%s` is %s: there is nothing to retry.", a.ID, db, cmd.Environment, report.StateWord(a.State)), ""))
		}
	}
	for _, db := range fresh {
		c := *cmd
		c.Name, c.Database, c.AllowUnsafe, c.AllowBlocking = "apply", db, allowUnsafe, allowBlocking
		if err := b.cmdApply(ctx, gh, pr, &c, user); err != nil {
			return err
		}
	}
	return nil
}

// cmdCancel stops a pending or retrying apply.
func (b *Bot) cmdCancel(ctx context.Context, gh *github.Client, pr *prInfo, cmd *Command, user string) error {
	dbs, err := b.matchingDatabases(ctx, gh, pr, cmd)
	if err != nil {
		return err
	}
	for _, db := range dbs {
		a, err := b.st.LatestApply(ctx, pr.Repo, pr.Number, db, cmd.Environment)
		if errors.Is(err, store.ErrNotFound) {
			return refuse(report.Refusal(cmd.Line, fmt.Sprintf("there is no apply of `%s/%s` on this PR.", db, cmd.Environment), ""))
		}
		if err != nil {
			return fmt.Errorf("latest apply: %w", err)
		}
		switch a.State {
		case store.Pending, store.FailedRetryable:
			ca, err := b.st.Cancel(ctx, a.ID, user, "cancelled by @"+user)
			if errors.Is(err, store.ErrConflict) {
				return refuse(report.Refusal(cmd.Line, fmt.Sprintf("apply #%d started running; a running attempt cannot be cut short.", a.ID), "Cancel it after this attempt ends."))
			}
			if err != nil {
				return fmt.Errorf("cancel apply: %w", err)
			}
			b.reportHeld(ctx, ca)
		case store.Running:
			return refuse(report.Refusal(cmd.Line, fmt.Sprintf("apply #%d is running; a running attempt cannot be cut short.", a.ID), "If it fails and is retrying, cancel it then."))
		default:
			return refuse(report.Refusal(cmd.Line, fmt.Sprintf("apply #%d of `%s/%s` is %s: there is nothing to cancel.", a.ID, db, cmd.Environment, report.StateWord(a.State)), ""))
		}
	}
	return nil
}

// audit appends to the audit log; a failure is logged.
func (b *Bot) audit(ctx context.Context, e store.Event) {
	if err := b.st.AddEvent(ctx, e); err != nil {
		b.log.Warn("audit event", "action", e.Action, "err", err)
	}
}
