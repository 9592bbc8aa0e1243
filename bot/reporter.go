package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

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
//
// Reports of one pull request are ordered across processes by the
// ledger's report lease (see store.LeaseReport): a reporter reads the
// apply only once it holds the lease, so the writes GitHub receives follow
// the apply's versions; before letting go it reads the apply again and,
// when a newer version was written meanwhile, reports that one too. A
// reporter whose lease was lost while it wrote (its ledger connection
// died) may have been overtaken by another: it reports again, rewriting
// every object the apply shows, whatever the ledger remembers of them.
//
// A reporter that dies while its write is in flight cannot report again,
// and that write may land after the newer reporter's. So every write is
// recorded with the apply before it is sent and cleared once answered
// (store.BeginReportWrite): writes of a reporter that was taken over from
// are refused, and the reporter that took over from one with a write in
// flight leaves the apply due a forced report once that write can no
// longer land (one try's timeout later).
func (r *Reporter) Report(ctx context.Context, a *store.Apply) error {
	unlock := r.b.lockPR(a.Repository, a.PR)
	defer unlock()
	return r.b.report(ctx, a)
}

// reportLeaseWait bounds how long a reporter waits for another one writing
// the same pull request; one that gives up leaves the apply report-due for
// the next recovery pass.
const reportLeaseWait = 20 * time.Second

// writeBoundMargin is added to one try's timeout to bound how long a
// GitHub write that got no answer may still land.
const writeBoundMargin = 2 * time.Second

// reportRounds bounds the rounds of one report: the ledger moving on, or
// the lease being lost, while a round wrote.
const reportRounds = 4

// report is Report for a caller that holds the PR's lock.
func (b *Bot) report(ctx context.Context, a *store.Apply) error {
	force := false
	for round := 1; ; round++ {
		lease, err := b.st.LeaseReport(ctx, a.Repository, a.PR, reportLeaseWait)
		if err != nil {
			return fmt.Errorf("report apply %d: %w", a.ID, err)
		}
		w, err := b.st.BeginReportWrite(ctx, a.ID, b.writeBound)
		if err != nil {
			lease.Release(context.WithoutCancel(ctx))
			return fmt.Errorf("report apply %d: %w", a.ID, err)
		}
		shown, err := b.reportRound(ctx, a.ID, force || w.Force, w)
		newer := false
		if err == nil {
			var cur *store.Apply
			if cur, err = b.st.Apply(ctx, a.ID); err == nil {
				newer = cur.Version > shown.Version
			}
		}
		overtaken, eerr := b.st.EndReportWrite(context.WithoutCancel(ctx), w)
		held, lost := lease.Release(context.WithoutCancel(ctx))
		switch {
		case eerr != nil:
			err = errors.Join(err, eerr)
		case overtaken:
			// Another reporter took over: this one's writes may have
			// landed after its newer ones. Read again, report again.
			held, lost = false, errors.Join(lost, store.ErrReportOvertaken)
		}
		switch {
		case !held && round < reportRounds && ctx.Err() == nil:
			b.log.Warn("report lease lost while writing GitHub; reporting again", "apply", a.ID, "err", lost)
			force = true
			continue
		case !held:
			return fmt.Errorf("report apply %d: %w", a.ID, errors.Join(err, lost))
		case err != nil:
			return fmt.Errorf("report apply %d: %w", a.ID, err)
		case newer && round < reportRounds:
			continue
		}
		if err := b.st.MarkReported(ctx, shown.ID, shown.Version); err != nil {
			return fmt.Errorf("report apply %d: mark reported: %w", a.ID, err)
		}
		return nil
	}
}

// reportRound reads apply id and brings GitHub in line with it, returning
// the version shown. force rewrites the objects the apply shows even where
// the ledger remembers them showing this text already (another reporter
// may have overwritten them since). Every write is announced in the
// ledger through w.
func (b *Bot) reportRound(ctx context.Context, id int64, force bool, w *store.ReportWrite) (*store.Apply, error) {
	cur, err := b.st.Apply(ctx, id)
	if err != nil {
		return nil, err
	}
	if dropped, err := b.dropReport(ctx, cur); err != nil { // installation.go
		return nil, err
	} else if dropped {
		return b.st.Apply(ctx, id) // as dropReport left it
	}
	tasks, err := b.st.Tasks(ctx, cur.ID)
	if err != nil {
		return nil, err
	}
	gh, err := b.client(cur.InstallationID)
	if err != nil {
		return nil, err
	}
	ctx = withWriteGuard(ctx, &reportGuard{b: b, w: w, version: cur.Version})
	c := report.ApplyCheck(cur, tasks)
	if force {
		if err := b.forgetShown(ctx, cur.Repository, checkKey(cur.HeadSHA, c.Name), checkKey(cur.HeadSHA, report.AggregateName), applyCommentKey(cur.ID)); err != nil {
			return nil, err
		}
	}
	if err := b.setCheck(ctx, gh, cur.Repository, cur.HeadSHA, c); err != nil {
		return nil, err
	}
	if cur.State == store.Completed {
		if err := b.promoteNext(ctx, cur); err != nil {
			return nil, err
		}
	}
	if err := b.updateAggregate(ctx, gh, cur.Repository, cur.HeadSHA, c.Name); err != nil {
		return nil, err
	}
	if err := b.upsertComment(ctx, gh, cur.Repository, cur.PR, applyCommentKey(cur.ID), report.ApplyMarker(cur.ID), report.ApplyComment(cur, tasks)); err != nil {
		return nil, err
	}
	if cur.State.Terminal() && cur.Attempt >= 2 {
		if err := b.postOnce(ctx, gh, cur.Repository, cur.PR, outcomeCommentKey(cur.ID), report.OutcomeMarker(cur.ID), report.OutcomeComment(cur)); err != nil {
			return nil, err
		}
	}
	return cur, nil
}

// forgetShown drops what the ledger remembers of the text GitHub shows for
// the check runs and comments stored under keys (their ids stay), so that
// the next write of each sends its text whatever it is.
func (b *Bot) forgetShown(ctx context.Context, repo string, keys ...string) error {
	for _, key := range keys {
		id, meta, err := b.st.Ref(ctx, repo, key)
		if errors.Is(err, store.ErrNotFound) || (err == nil && id == 0) {
			continue // not created yet, or being created under a claim
		}
		if err != nil {
			return fmt.Errorf("read ref %s: %w", key, err)
		}
		if strings.HasPrefix(key, "check/") {
			m := parseRunMeta(meta)
			m.Hash = ""
			meta = m.String()
		} else {
			meta = ""
		}
		if err := b.setRef(ctx, repo, key, id, meta); err != nil {
			return err
		}
	}
	return nil
}

// reportGuard announces a report's GitHub writes in the ledger (see
// store.ReportWrite) and refuses them once another reporter took over. A
// write that waits out a rate limit or a 5xx is not sent again once the
// apply has moved on either: the newer state is reported by whoever moved
// it, and must not be overwritten by this one.
type reportGuard struct {
	b       *Bot
	w       *store.ReportWrite
	version int64
}

func (g *reportGuard) sending(ctx context.Context, resend bool) error {
	if err := g.b.st.ReportWriteSending(ctx, g.w); err != nil {
		return err
	}
	if !resend {
		return nil
	}
	now, err := g.b.st.Apply(ctx, g.w.ApplyID)
	if err == nil && now.Version != g.version {
		return fmt.Errorf("apply %d moved on to version %d", g.w.ApplyID, now.Version)
	}
	return nil
}

func (g *reportGuard) answered(ctx context.Context) {
	if err := g.b.st.ReportWriteAnswered(ctx, g.w); err != nil {
		// The write stays announced: the apply gets a recheck.
		g.b.log.Warn("record a GitHub answer", "apply", g.w.ApplyID, "err", err)
	}
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
		Database: database, Environment: env, DesiredHash: p.DesiredHash(), Desired: d.Marshal(),
	}
	if sp.DesiredHash == "" {
		sp.DesiredHash = d.Hash()
	}
	for _, s := range p.Statements {
		st := store.Statement{Table: s.Table, Kind: s.Kind, DDL: s.DDL, Instant: s.Instant}
		if s.Cost != nil {
			st.Algorithm, st.Lock = s.Cost.Algorithm, s.Cost.Lock
			b, _ := json.Marshal(s.Cost)
			st.Cost = string(b)
		}
		sp.Statements = append(sp.Statements, st)
	}
	sp.Lint, _ = json.Marshal(p.Findings)
	return sp
}

// fromStored converts a stored plan back into the planner's form.
func fromStored(sp *store.Plan) *plan.Plan {
	p := &plan.Plan{}
	for _, s := range sp.Statements {
		st := plan.Statement{Table: s.Table, Kind: s.Kind, DDL: s.DDL, Instant: s.Instant}
		if s.Cost != "" {
			var c plan.Cost
			if json.Unmarshal([]byte(s.Cost), &c) == nil {
				st.Cost = &c
			}
		}
		p.Statements = append(p.Statements, st)
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
