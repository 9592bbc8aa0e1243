package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/report"
	"github.com/ternhq/tern/store"
)

// Reporter brings GitHub in line with the ledger for one apply. The
// recovery pass and the apply workers use it.
type Reporter struct {
	b *Bot
}

// Reporter returns the bot's reporter.
func (b *Bot) Reporter() *Reporter { return &Reporter{b: b} }

// Report shows the apply's current state on its pull request: the
// per-environment check run and the aggregate `tern` check, the apply
// comment (edited in place), and, when the apply ended after more than one
// attempt, a new comment saying how, exactly once. It then marks the
// apply's version reported. Calling it again changes nothing on GitHub
// unless the ledger changed.
func (r *Reporter) Report(ctx context.Context, a *store.Apply) error {
	unlock := r.b.lockPR(a.Repository, a.PR)
	defer unlock()
	return r.b.report(ctx, a)
}

// report is Report for a caller that holds the PR's lock.
func (b *Bot) report(ctx context.Context, a *store.Apply) error {
	cur, err := b.st.Apply(ctx, a.ID)
	if err != nil {
		return fmt.Errorf("report apply %d: %w", a.ID, err)
	}
	if dropped, err := b.dropReport(ctx, cur); dropped || err != nil { // installation.go
		return err
	}
	tasks, err := b.st.Tasks(ctx, cur.ID)
	if err != nil {
		return fmt.Errorf("report apply %d: %w", a.ID, err)
	}
	gh, err := b.client(cur.InstallationID)
	if err != nil {
		return fmt.Errorf("report apply %d: %w", a.ID, err)
	}
	c := report.ApplyCheck(cur, tasks)
	if err := b.setCheck(ctx, gh, cur.Repository, cur.HeadSHA, c); err != nil {
		return fmt.Errorf("report apply %d: %w", a.ID, err)
	}
	if cur.State == store.Completed {
		if err := b.promoteNext(ctx, cur); err != nil {
			return fmt.Errorf("report apply %d: %w", a.ID, err)
		}
	}
	if err := b.updateAggregate(ctx, gh, cur.Repository, cur.HeadSHA, c.Name); err != nil {
		return fmt.Errorf("report apply %d: %w", a.ID, err)
	}
	if err := b.upsertComment(ctx, gh, cur.Repository, cur.PR, applyCommentKey(cur.ID), report.ApplyMarker(cur.ID), report.ApplyComment(cur, tasks)); err != nil {
		return fmt.Errorf("report apply %d: %w", a.ID, err)
	}
	if cur.State.Terminal() && cur.Attempt >= 2 {
		if err := b.postOnce(ctx, gh, cur.Repository, cur.PR, outcomeCommentKey(cur.ID), report.OutcomeMarker(cur.ID), report.OutcomeComment(cur)); err != nil {
			return fmt.Errorf("report apply %d: %w", a.ID, err)
		}
	}
	if err := b.st.MarkReported(ctx, cur.ID, cur.Version); err != nil {
		return fmt.Errorf("report apply %d: mark reported: %w", a.ID, err)
	}
	return nil
}

// promoteNext turns the next environment's "Waiting for <env>" check into
// "Awaiting apply" once env has been applied.
func (b *Bot) promoteNext(ctx context.Context, a *store.Apply) error {
	names, err := b.checkNames(ctx, a.Repository, a.HeadSHA)
	if err != nil {
		return err
	}
	this := report.CheckName(a.Database, a.Environment)
	prefix := "tern/" + a.Database + "/"
	next := ""
	for i, n := range names {
		if n == this {
			for _, m := range names[i+1:] {
				if strings.HasPrefix(m, prefix) {
					next = m
					break
				}
			}
		}
	}
	if next == "" {
		return nil
	}
	_, cur, found, err := b.currentRun(ctx, a.Repository, a.HeadSHA, next)
	if err != nil || !found || !strings.HasPrefix(cur.Title, "Waiting for "+a.Environment) {
		return err
	}
	env := strings.TrimPrefix(next, prefix)
	sp, err := b.st.LatestPlan(ctx, a.Repository, a.PR, a.Database, env)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("latest plan of %s: %w", next, err)
	}
	gh, err := b.client(a.InstallationID)
	if err != nil {
		return err
	}
	r := report.PlanResult{Database: a.Database, Environment: env, Plan: fromStored(sp)}
	return b.setCheck(ctx, gh, a.Repository, a.HeadSHA, report.PlanCheck(r, "", multiDB(names)))
}

// multiDB reports whether the check names span more than one database.
func multiDB(names []string) bool {
	dbs := map[string]bool{}
	for _, n := range names {
		parts := strings.SplitN(n, "/", 3)
		if len(parts) == 3 {
			dbs[parts[1]] = true
		}
	}
	return len(dbs) > 1
}

// toStored converts a planner plan into the ledger's form.
func toStored(pr *prInfo, database, env string, d *plan.Desired, p *plan.Plan) *store.Plan {
	sp := &store.Plan{
		Repository: pr.Repo, PR: pr.Number, HeadSHA: pr.HeadSHA, InstallationID: pr.InstallationID,
		Database: database, Environment: env, DesiredHash: p.DesiredHash, Desired: d.Marshal(),
	}
	if sp.DesiredHash == "" {
		sp.DesiredHash = d.Hash
	}
	for _, s := range p.Statements {
		sp.Statements = append(sp.Statements, store.Statement{Table: s.Table, Kind: s.Kind, DDL: s.DDL, Instant: s.Instant})
	}
	sp.Lint, _ = json.Marshal(p.Findings)
	return sp
}

// fromStored converts a stored plan back into the planner's form.
func fromStored(sp *store.Plan) *plan.Plan {
	p := &plan.Plan{DesiredHash: sp.DesiredHash}
	for _, s := range sp.Statements {
		p.Statements = append(p.Statements, plan.Statement{Table: s.Table, Kind: s.Kind, DDL: s.DDL, Instant: s.Instant})
	}
	if len(sp.Lint) > 0 {
		_ = json.Unmarshal(sp.Lint, &p.Findings)
	}
	return p
}

// sameDDL reports whether two plans run the same statements.
func sameDDL(a, b *plan.Plan) bool {
	if len(a.Statements) != len(b.Statements) {
		return false
	}
	for i := range a.Statements {
		if a.Statements[i].DDL != b.Statements[i].DDL {
			return false
		}
	}
	return true
}
