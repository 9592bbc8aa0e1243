package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/apply"
	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/report"
	"github.com/ternhq/tern/store"
)

// targetPlanner plans a desired schema against the live schema of one
// (repository, database, environment) target.
type targetPlanner struct {
	targets apply.Targets
	planner *plan.Planner
}

// Plan plans d against the live schema of the target.
func (p targetPlanner) Plan(ctx context.Context, repo, database, env string, d *plan.Desired) (*plan.Plan, error) {
	t, err := p.targets.Target(ctx, repo, database, env)
	if err != nil {
		return nil, fmt.Errorf("target %s/%s: %w", database, env, err)
	}
	live, err := t.Engine.Live(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to %s/%s: %w", database, env, err)
	}
	planner := p.planner.WithEngines(t.AllowedEngines)
	return planner.PlanAndCost(ctx, d, live, t.Shadow, t.Cost)
}

// planRun is the outcome of planning a PR head.
type planRun struct {
	policy  *repoPolicy
	repo    *config.Repo
	results []report.PlanResult
	// plans and stored are keyed by database + "\x00" + environment.
	plans  map[string]*plan.Plan
	stored map[string]*store.Plan
}

func key(db, env string) string { return db + "\x00" + env }

// filterError is a -d or -e that names nothing in tern.yaml.
type filterError struct{ msg string }

func (e *filterError) Error() string { return e.msg }

// targetsOf lists the (database, environment) pairs of rc that match the
// filters, in tern.yaml order.
func targetsOf(rc *config.Repo, dbFilter, envFilter string) ([][2]string, error) {
	if dbFilter != "" {
		if _, ok := rc.Database(dbFilter); !ok {
			return nil, &filterError{fmt.Sprintf("database %q is not in tern.yaml (it has: %s)", dbFilter, dbNames(rc))}
		}
	}
	var out [][2]string
	for _, db := range rc.Databases {
		if dbFilter != "" && db.Name != dbFilter {
			continue
		}
		for _, env := range db.Environments {
			if envFilter != "" && env != envFilter {
				continue
			}
			out = append(out, [2]string{db.Name, env})
		}
	}
	if len(out) == 0 {
		return nil, &filterError{fmt.Sprintf("environment %q is not in tern.yaml for %s", envFilter, orAll(dbFilter))}
	}
	return out, nil
}

func dbNames(rc *config.Repo) string {
	var n []string
	for _, d := range rc.Databases {
		n = append(n, d.Name)
	}
	return strings.Join(n, ", ")
}

func orAll(db string) string {
	if db == "" {
		return "any database"
	}
	return "database " + db
}

// planPR plans the PR head for the (database, environment) pairs matching
// the filters, stores the plans, and updates the plan comment and check
// runs. pol may be nil, in which case tern.yaml is read at the base and the
// head (see readPolicy).
func (b *Bot) planPR(ctx context.Context, gh *github.Client, pr *prInfo, pol *repoPolicy, dbFilter, envFilter string) (*planRun, error) {
	if pol == nil {
		var err error
		if pol, err = b.readPolicyShown(ctx, gh, pr); err != nil {
			return nil, err
		}
	}
	rc := pol.repo
	pairs, err := targetsOf(rc, dbFilter, envFilter)
	if err != nil {
		return nil, err
	}
	run := &planRun{policy: pol, repo: rc, plans: map[string]*plan.Plan{}, stored: map[string]*store.Plan{}}
	// Each database's schema files are read and parsed once.
	desired := map[string]*plan.Desired{}
	desiredErr := map[string]error{}
	for _, p := range pairs {
		db, env := p[0], p[1]
		if _, done := desired[db]; !done && desiredErr[db] == nil {
			d, err := loadDesired(ctx, pol.head, rc, db, b.planner.planner.Limits)
			if err != nil {
				if ctx.Err() != nil {
					return nil, err
				}
				desiredErr[db] = err
			}
			desired[db] = d
		}
		if desiredErr[db] != nil {
			run.results = append(run.results, report.PlanResult{Database: db, Environment: env, Err: desiredErr[db].Error()})
			continue
		}
		res, sp, err := b.planTarget(ctx, pr, db, env, desired[db])
		if err != nil {
			return nil, err
		}
		if sp != nil {
			run.plans[key(db, env)] = res.Plan
			run.stored[key(db, env)] = sp
		}
		run.results = append(run.results, res)
	}
	if err := b.publishPlan(ctx, gh, pr, run); err != nil {
		return run, err
	}
	return run, nil
}

// readPolicyShown reads the policy like readPolicy, and when the head's
// tern.yaml does not parse, shows what is wrong with it in the plan
// comment, where people look.
func (b *Bot) readPolicyShown(ctx context.Context, gh *github.Client, pr *prInfo) (*repoPolicy, error) {
	rc, err := b.readPolicy(ctx, gh, pr)
	var rce *repoConfigError
	if errors.As(err, &rce) {
		body := report.RenderPlanComment(report.PlanComment{HeadSHA: pr.HeadSHA, ConfigErr: rce.Error()})
		if cerr := b.upsertComment(ctx, gh, pr.Repo, pr.Number, planCommentKey(pr.Number), report.PlanMarker(), body); cerr != nil {
			return nil, cerr
		}
	}
	return rc, err
}

// planTarget plans desired against one target and stores the plan. A
// target that cannot be planned is reported in the result's Err, with a nil
// stored plan; the error is for a cancelled context or a plan the ledger
// could not save.
func (b *Bot) planTarget(ctx context.Context, pr *prInfo, db, env string, desired *plan.Desired) (report.PlanResult, *store.Plan, error) {
	res := report.PlanResult{Database: db, Environment: env}
	if _, ok := b.cfg.Target(pr.Repo, db, env); !ok {
		res.Err = fmt.Sprintf("the tern server has no target for %s database %s environment %s (targets: in its config)", pr.Repo, db, env)
		return res, nil, nil
	}
	pl, err := b.planner.Plan(ctx, pr.Repo, db, env, desired)
	if err != nil {
		if ctx.Err() != nil {
			return res, nil, err
		}
		res.Err = err.Error()
		return res, nil, nil
	}
	sp := toStored(pr, db, env, desired, pl)
	if err := b.st.SavePlan(ctx, sp); err != nil {
		return res, nil, fmt.Errorf("save plan: %w", err)
	}
	res.Plan = pl
	return res, sp, nil
}

// loadDesired reads and parses one database's schema files at the PR
// head, under the server's plan limits.
func loadDesired(ctx context.Context, head *commitReader, rc *config.Repo, db string, limits plan.Limits) (*plan.Desired, error) {
	rdb, _ := rc.Database(db)
	files, err := head.schemaFiles(ctx, rdb.SchemaDirClean(), limits)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no *.sql files in %s: refusing to plan (it would drop every table)", rdb.SchemaDirClean())
	}
	d, err := limits.Parse(files)
	if err != nil {
		return nil, err
	}
	d.Lint = rc.Lint // policy, like apply_requirements
	return d, nil
}

// publishPlan updates the plan comment (with this run's results and, for
// pairs not planned now, the newest stored plan of the same head) and the
// check runs of the planned pairs, then the aggregate.
func (b *Bot) publishPlan(ctx context.Context, gh *github.Client, pr *prInfo, run *planRun) error {
	planned := map[string]report.PlanResult{}
	for _, r := range run.results {
		planned[key(r.Database, r.Environment)] = r
	}
	all, names, err := b.headResults(ctx, pr, run.repo, planned)
	if err != nil {
		return err
	}
	multi := len(run.repo.Databases) > 1
	body := report.RenderPlanComment(report.PlanComment{HeadSHA: pr.HeadSHA, Results: all, MultiDB: multi,
		PolicyChanges: run.policy.changes, PlanOnly: run.policy.planOnly})
	if err := b.upsertComment(ctx, gh, pr.Repo, pr.Number, planCommentKey(pr.Number), report.PlanMarker(), body); err != nil {
		return err
	}
	if err := b.setRef(ctx, pr.Repo, checkListKey(pr.HeadSHA), 0, strings.Join(names, ",")); err != nil {
		return err
	}
	if err := b.setRef(ctx, pr.Repo, shaPRKey(pr.HeadSHA), int64(pr.Number), ""); err != nil {
		return err
	}
	if err := b.setPlanChecks(ctx, gh, pr, run.repo, all, planned, multi, run.policy.planOnly); err != nil {
		return err
	}
	return b.updateAggregate(ctx, gh, pr.Repo, pr.HeadSHA)
}

// headResults lists the plan results of the PR head in tern.yaml order:
// planned's for the pairs planned now, the newest stored plan of the same
// head for the others (pairs never planned at this head are left out). It
// also returns the check names of every pair in tern.yaml.
func (b *Bot) headResults(ctx context.Context, pr *prInfo, rc *config.Repo, planned map[string]report.PlanResult) ([]report.PlanResult, []string, error) {
	var all []report.PlanResult
	var names []string
	for _, db := range rc.Databases {
		for _, env := range db.Environments {
			names = append(names, report.CheckName(db.Name, env))
			if r, ok := planned[key(db.Name, env)]; ok {
				all = append(all, r)
				continue
			}
			sp, err := b.st.LatestPlan(ctx, pr.Repo, pr.Number, db.Name, env)
			if err == nil && sp.HeadSHA == pr.HeadSHA {
				all = append(all, report.PlanResult{Database: db.Name, Environment: env, Plan: fromStored(sp)})
			} else if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, nil, fmt.Errorf("latest plan: %w", err)
			}
		}
	}
	return all, names, nil
}

// setPlanChecks sets the check runs of the pairs planned now. Per
// database, environments go in promotion order: the first with changes
// (or a failed plan) awaits apply, each later one waits for the one before
// it. A run an apply owns is left alone (see checkOwnedByApply). planOnly,
// when set, says why nothing can be applied from this PR.
func (b *Bot) setPlanChecks(ctx context.Context, gh *github.Client, pr *prInfo, rc *config.Repo, all []report.PlanResult, planned map[string]report.PlanResult, multi bool, planOnly string) error {
	blocked := map[string]bool{}
	for _, r := range all {
		rdb, _ := rc.Database(r.Database)
		waiting := ""
		if blocked[r.Database] {
			waiting = rdb.Previous(r.Environment)
		}
		if r.Err != "" || (r.Plan != nil && r.Plan.HasChanges()) {
			blocked[r.Database] = true
		}
		if _, now := planned[key(r.Database, r.Environment)]; !now {
			continue
		}
		c := report.PlanCheck(r, waiting, multi)
		if planOnly != "" {
			c = report.PlanOnlyCheck(c, planOnly)
		}
		skip, err := b.checkOwnedByApply(ctx, pr, r.Database, r.Environment, c)
		if err != nil {
			return err
		}
		if skip {
			continue
		}
		if err := b.setCheck(ctx, gh, pr.Repo, pr.HeadSHA, c); err != nil {
			return err
		}
	}
	return nil
}

// checkOwnedByApply reports whether a plan's check must leave the current
// run alone: an apply of this PR is under way on the target, or the run
// already shows it applied and the plan has nothing more to do.
func (b *Bot) checkOwnedByApply(ctx context.Context, pr *prInfo, db, env string, c report.Check) (bool, error) {
	a, err := b.st.ActiveApply(ctx, pr.Repo, db, env)
	if err == nil && a.PR == pr.Number && a.HeadSHA == pr.HeadSHA {
		return true, nil
	}
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("active apply: %w", err)
	}
	if c.Conclusion == report.ConclusionSuccess {
		_, cur, found, err := b.currentRun(ctx, pr.Repo, pr.HeadSHA, c.Name)
		if err != nil {
			return false, err
		}
		if found && cur.Conclusion == report.ConclusionSuccess && strings.HasPrefix(cur.Title, "Applied") {
			return true, nil
		}
	}
	return false, nil
}
