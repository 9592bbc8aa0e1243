package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/report"
	"github.com/ternhq/tern/store"
)

// cmdApply checks everything an apply needs and queues it: requirements,
// a fresh plan identical to the one shown, promotion order, unsafe
// changes, the lock, and no other active apply on the target. Nothing is
// queued unless every database passes the checks.
func (b *Bot) cmdApply(ctx context.Context, gh *github.Client, pr *prInfo, cmd *Command, user string) error {
	rc, err := b.readRepoConfig(ctx, gh, pr)
	if err != nil {
		return b.asRefusal(cmd, err)
	}
	pairs, err := targetsOf(rc, cmd.Database, cmd.Environment)
	if err != nil {
		return b.asRefusal(cmd, err)
	}
	if err := b.checkRequirements(ctx, gh, pr, rc, cmd); err != nil {
		return err
	}
	// The plans shown before this command, to detect a stale plan.
	shown := map[string]*store.Plan{}
	for _, p := range pairs {
		sp, err := b.st.LatestPlan(ctx, pr.Repo, pr.Number, p[0], p[1])
		if err == nil {
			shown[key(p[0], p[1])] = sp
		} else if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("latest plan: %w", err)
		}
	}
	run, err := b.planPR(ctx, gh, pr, rc, cmd.Database, cmd.Environment)
	if err != nil {
		return b.asRefusal(cmd, err)
	}
	multi := len(rc.Databases) > 1
	var queue []*store.Plan
	var nothing []string
	for _, r := range run.results {
		db, env := r.Database, r.Environment
		if r.Err != "" {
			return refuse(report.Refusal(cmd.Line, fmt.Sprintf("the plan for `%s/%s` failed: %s", db, env, r.Err), "Fix it and push; the plan comment shows the error."))
		}
		// Another PR's lock comes first: while it holds the target, this
		// PR's plan may well look stale (the other PR changed the schema),
		// and the holder is what the person needs to know.
		if l, err := b.st.GetLock(ctx, pr.Repo, db, env); err == nil && l.PR != pr.Number {
			return refuse(report.RefuseLock(cmd.Line, db, env, l.PR))
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("read lock: %w", err)
		}
		fresh := run.plans[key(db, env)]
		if !fresh.HasChanges() {
			nothing = append(nothing, db+"/"+env)
			continue
		}
		prev := shown[key(db, env)]
		if prev == nil {
			return refuse(report.RefuseUnplanned(cmd.Line, db, env))
		}
		if !sameDDL(fromStored(prev), fresh) {
			return refuse(report.RefuseStale(cmd.Line, db, env))
		}
		rdb, _ := rc.Database(db)
		if err := b.checkPromotion(ctx, pr, rdb, env, fresh.DesiredHash, cmd); err != nil {
			return err
		}
		if len(fresh.Unsafe()) > 0 && !cmd.AllowUnsafe {
			if err := b.setCheck(ctx, gh, pr.Repo, pr.HeadSHA, report.UnsafeCheck(db, env, fresh, multi)); err != nil {
				return err
			}
			if err := b.updateAggregate(ctx, gh, pr.Repo, pr.HeadSHA); err != nil {
				return err
			}
			return refuse(report.RefuseUnsafe(cmd.Line, db, env, fresh))
		}
		queue = append(queue, run.stored[key(db, env)])
	}
	if len(queue) == 0 {
		return refuse(report.Refusal(cmd.Line, fmt.Sprintf("nothing to apply: %s already match this commit.", codeList(nothing)), ""))
	}
	for _, sp := range queue {
		err := b.st.TakeLock(ctx, store.Lock{Repository: pr.Repo, Database: sp.Database, Environment: sp.Environment, PR: pr.Number})
		var held *store.LockHeldError
		if errors.As(err, &held) {
			return refuse(report.RefuseLock(cmd.Line, sp.Database, sp.Environment, held.Lock.PR))
		}
		if err != nil {
			return fmt.Errorf("take lock: %w", err)
		}
		a, err := b.st.CreateApply(ctx, sp, user, cmd.AllowUnsafe, b.cfg.Recovery.MaxAttempts)
		var active *store.ActiveApplyError
		if errors.As(err, &active) {
			return refuse(report.RefuseActive(cmd.Line, sp.Database, sp.Environment, active.ApplyID, active.PR, string(active.State)))
		}
		if err != nil {
			return fmt.Errorf("create apply: %w", err)
		}
		b.log.Info("apply queued", "apply", a.ID, "repo", pr.Repo, "pr", pr.Number, "database", a.Database, "env", a.Environment, "user", user)
		b.audit(ctx, store.Event{ApplyID: a.ID, Repository: pr.Repo, PR: pr.Number, Actor: user, Action: "apply.requested",
			Detail: fmt.Sprintf("%s/%s at %s allow_unsafe=%v", a.Database, a.Environment, a.HeadSHA, a.AllowUnsafe)})
		if err := b.report(ctx, a); err != nil {
			b.log.Warn("report apply", "apply", a.ID, "err", err)
		}
		wake(b.wakeApplies)
	}
	return nil
}

func codeList(items []string) string {
	out := ""
	for i, s := range items {
		if i > 0 {
			out += ", "
		}
		out += "`" + s + "`"
	}
	return out
}

// checkRequirements enforces tern.yaml's apply_requirements.
func (b *Bot) checkRequirements(ctx context.Context, gh *github.Client, pr *prInfo, rc *config.Repo, cmd *Command) error {
	if slices.Contains(rc.ApplyRequirements, config.RequireApproved) {
		ok, err := b.approved(ctx, gh, pr)
		if err != nil {
			return err
		}
		if !ok {
			return refuse(report.RefuseRequirement(cmd.Line, config.RequireApproved, "this pull request has no approving review, or a reviewer requested changes."))
		}
	}
	if slices.Contains(rc.ApplyRequirements, config.RequireMergeable) {
		if pr.Mergeable == nil || !*pr.Mergeable {
			detail := "GitHub does not report this pull request as mergeable (conflicts, or not computed yet)."
			return refuse(report.RefuseRequirement(cmd.Line, config.RequireMergeable, detail))
		}
	}
	return nil
}

// checkPromotion refuses env until every earlier environment of the
// database was applied by this PR with the same desired schema, or already
// had it (its newest plan of that schema had no changes).
func (b *Bot) checkPromotion(ctx context.Context, pr *prInfo, rdb *config.RepoDatabase, env, hash string, cmd *Command) error {
	for _, earlier := range rdb.Environments {
		if earlier == env {
			return nil
		}
		ok, err := b.st.HasCompletedApply(ctx, pr.Repo, pr.Number, rdb.Name, earlier, hash)
		if err != nil {
			return fmt.Errorf("promotion check: %w", err)
		}
		if ok {
			continue
		}
		sp, err := b.st.LatestPlan(ctx, pr.Repo, pr.Number, rdb.Name, earlier)
		if err == nil && sp.DesiredHash == hash && len(sp.Statements) == 0 {
			continue
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("promotion check: %w", err)
		}
		return refuse(report.RefusePromotion(cmd.Line, rdb.Name, env, earlier))
	}
	return nil
}
