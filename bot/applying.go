package bot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

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
	pol, err := b.readPolicy(ctx, gh, pr)
	if err != nil {
		return b.asRefusal(cmd, err)
	}
	if pol.planOnly != "" {
		return refuse(report.Refusal(cmd.Line, pol.planOnly+": tern applies only under a policy that is on the base branch, so nothing can be applied from this pull request.",
			"Merge `tern.yaml` first (with schema files that match the live schema), then apply schema changes from later pull requests."))
	}
	rc := pol.repo
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
	run, err := b.planPR(ctx, gh, pr, pol, cmd.Database, cmd.Environment)
	if err != nil {
		return b.asRefusal(cmd, err)
	}
	var queue []*store.Plan
	var nothing []string
	for _, r := range run.results {
		sp, err := b.checkApply(ctx, gh, pr, cmd, run, shown[key(r.Database, r.Environment)], r)
		if err != nil {
			return err
		}
		if sp == nil {
			nothing = append(nothing, r.Database+"/"+r.Environment)
			continue
		}
		queue = append(queue, sp)
	}
	if len(queue) == 0 {
		return refuse(report.Refusal(cmd.Line, fmt.Sprintf("nothing to apply: %s already match this commit.", codeList(nothing)), ""))
	}
	for _, sp := range queue {
		if err := b.queueApply(ctx, pr, cmd, sp, user); err != nil {
			return err
		}
	}
	return nil
}

// checkApply judges one freshly planned (database, environment) r of run
// for an apply: it returns the stored plan to queue, nil when there is
// nothing to apply, or a refusal. shown is the plan the PR showed before
// the command (nil when none). Another PR's lock is checked first: while
// it holds the target, this PR's plan may well look stale (the other PR
// changed the schema), and the holder is what the person needs to know.
// Unsafe changes without --allow-unsafe also mark the check run.
func (b *Bot) checkApply(ctx context.Context, gh *github.Client, pr *prInfo, cmd *Command, run *planRun, shown *store.Plan, r report.PlanResult) (*store.Plan, error) {
	db, env := r.Database, r.Environment
	if r.Err != "" {
		return nil, refuse(report.Refusal(cmd.Line, fmt.Sprintf("the plan for `%s/%s` failed: %s", db, env, r.Err), "Fix it and push; the plan comment shows the error."))
	}
	if l, err := b.st.GetLock(ctx, pr.Repo, db, env); err == nil && l.PR != pr.Number {
		return nil, refuse(report.RefuseLock(cmd.Line, db, env, l.PR))
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("read lock: %w", err)
	}
	fresh := run.plans[key(db, env)]
	if !fresh.HasChanges() {
		return nil, nil
	}
	if shown == nil {
		return nil, refuse(report.RefuseUnplanned(cmd.Line, db, env))
	}
	if !sameDDL(fromStored(shown), fresh) {
		return nil, refuse(report.RefuseStale(cmd.Line, db, env))
	}
	rdb, _ := run.repo.Database(db)
	if err := b.checkPromotion(ctx, pr, rdb, env, fresh.DesiredHash(), cmd); err != nil {
		return nil, err
	}
	if len(fresh.Unsafe()) > 0 && !cmd.AllowUnsafe {
		multi := len(run.repo.Databases) > 1
		if err := b.setCheck(ctx, gh, pr.Repo, pr.HeadSHA, report.UnsafeCheck(db, env, fresh, multi)); err != nil {
			return nil, err
		}
		if err := b.updateAggregate(ctx, gh, pr.Repo, pr.HeadSHA); err != nil {
			return nil, err
		}
		return nil, refuse(report.RefuseUnsafe(cmd.Line, db, env, fresh))
	}
	if len(fresh.Blocking()) > 0 && !cmd.AllowBlocking {
		multi := len(run.repo.Databases) > 1
		if err := b.setCheck(ctx, gh, pr.Repo, pr.HeadSHA, report.UnsafeCheck(db, env, fresh, multi)); err != nil {
			return nil, err
		}
		if err := b.updateAggregate(ctx, gh, pr.Repo, pr.HeadSHA); err != nil {
			return nil, err
		}
		return nil, refuse(report.RefuseBlocking(cmd.Line, db, env, fresh))
	}
	return run.stored[key(db, env)], nil
}

// queueApply takes the target's lock for the PR and records the apply of
// sp, pending, for the workers; it refuses when another PR holds the lock
// or another apply is active on the target.
func (b *Bot) queueApply(ctx context.Context, pr *prInfo, cmd *Command, sp *store.Plan, user string) error {
	err := b.st.TakeLock(ctx, store.Lock{Repository: pr.Repo, Database: sp.Database, Environment: sp.Environment, PR: pr.Number, InstallationID: pr.InstallationID})
	var held *store.LockHeldError
	if errors.As(err, &held) {
		return refuse(report.RefuseLock(cmd.Line, sp.Database, sp.Environment, held.Lock.PR))
	}
	if err != nil {
		return fmt.Errorf("take lock: %w", err)
	}
	// Another command may have applied this very plan while this one was
	// planning (two `/tern apply` at once): its plan is then stale.
	prior, err := b.st.AppliesForPR(ctx, pr.Repo, pr.Number)
	if err != nil {
		return fmt.Errorf("read applies: %w", err)
	}
	for _, p := range prior {
		if p.Database == sp.Database && p.Environment == sp.Environment && p.State == store.Completed &&
			p.HeadSHA == sp.HeadSHA && p.DesiredHash == sp.DesiredHash {
			return refuse(report.Refusal(cmd.Line, fmt.Sprintf("nothing to apply: `%s/%s` was just applied with this plan (apply #%d).", sp.Database, sp.Environment, p.ID), ""))
		}
	}
	a, err := b.st.CreateApplyWith(ctx, sp, store.ApplyRequest{RequestedBy: user, AllowUnsafe: cmd.AllowUnsafe,
		AllowBlocking: cmd.AllowBlocking, MaxAttempts: b.cfg.Recovery.MaxAttempts})
	var active *store.ActiveApplyError
	if errors.As(err, &active) {
		return refuse(report.RefuseActive(cmd.Line, sp.Database, sp.Environment, active.ApplyID, active.PR, string(active.State)))
	}
	if err != nil {
		return fmt.Errorf("create apply: %w", err)
	}
	b.log.Info("apply queued", "apply", a.ID, "repo", pr.Repo, "pr", pr.Number, "database", a.Database, "env", a.Environment, "user", user)
	b.audit(ctx, store.Event{ApplyID: a.ID, Repository: pr.Repo, PR: pr.Number, Actor: user, Action: "apply.requested",
		Detail: fmt.Sprintf("%s/%s at %s allow_unsafe=%v allow_blocking=%v", a.Database, a.Environment, a.HeadSHA, a.AllowUnsafe, a.AllowBlocking)})
	b.reportHeld(ctx, a)
	wake(b.wakeApplies)
	return nil
}

// codeList renders items as "`a`, `b`".
func codeList(items []string) string {
	if len(items) == 0 {
		return ""
	}
	return "`" + strings.Join(items, "`, `") + "`"
}

// checkRequirements enforces apply_requirements of the base's tern.yaml.
func (b *Bot) checkRequirements(ctx context.Context, gh *github.Client, pr *prInfo, rc *config.Repo, cmd *Command) error {
	if slices.Contains(rc.ApplyRequirements, config.RequireApproved) {
		ok, detail, err := b.approved(ctx, gh, pr)
		if err != nil {
			return err
		}
		if !ok {
			return refuse(report.RefuseRequirement(cmd.Line, config.RequireApproved, detail))
		}
	}
	if slices.Contains(rc.ApplyRequirements, config.RequireMergeable) {
		if ok, err := b.mergeable(ctx, gh, pr); err != nil {
			return err
		} else if !ok {
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
