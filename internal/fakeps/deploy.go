package fakeps

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/planetscale/planetscale-go/planetscale"
	vtlog "vitess.io/vitess/go/vt/log"
	"vitess.io/vitess/go/vt/schemadiff"
)

func init() {
	// schemadiff logs each INSTANT-DDL decision to stderr through a
	// process-wide logger; the stand-in reports what it does itself.
	vtlog.SwapLogger(slog.New(slog.DiscardHandler))
}

// Deployment states the stand-in moves through, as PlanetScale names them.
const (
	statePending           = "pending"
	stateReady             = "ready"
	stateNoChanges         = "no_changes"
	stateError             = "error"
	stateSubmitting        = "submitting"
	stateQueued            = "queued"
	stateInProgress        = "in_progress"
	statePendingCutover    = "pending_cutover"
	stateInProgressCutover = "in_progress_cutover"
	stateComplete          = "complete"
	stateCompleteRevertWin = "complete_pending_revert"
	stateCompleteError     = "complete_error"
	stateInProgressCancel  = "in_progress_cancel"
	stateCompleteCancel    = "complete_cancel"
)

// LintSchemaConflict is the lint_error a deploy request carries when its
// branch conflicts with the branch it deploys into.
const LintSchemaConflict = "SCHEMA_CONFLICT"

type change struct {
	Table     string
	Operation string // CREATE, ALTER, DROP
	DDL       string
	State     string
	Progress  uint64
}

type deployRequest struct {
	ID          string
	Number      uint64
	Branch      string
	Into        string
	Notes       string
	State       string // open, closed
	Deployment  string
	Deployable  bool
	AutoCutover bool
	Lint        []*planetscale.DeploymentLintError
	fault       DeployFault
	polls       int
	detour      []string // states still to pass through before next
	stale       int      // GETs still to answer staleState
	staleState  string
	next        string // where the detour ends
	changes     []*change
	copied      int // in_progress steps taken (Options.CopySteps)
	CreatedAt   time.Time
	UpdatedAt   time.Time
	ClosedAt    *time.Time
	DeployedAt  *time.Time
}

func (s *Server) api(d *deployRequest) *planetscale.DeployRequest {
	top := d.Deployment
	if s.opts.NestedStateOnly {
		top = ""
	}
	return &planetscale.DeployRequest{
		ID: d.ID, Number: d.Number, Branch: d.Branch, IntoBranch: d.Into, Notes: d.Notes,
		State: d.State, DeploymentState: top, Approved: true,
		Actor: planetscale.Actor{Type: "ServiceToken", Name: "tern"},
		Deployment: &planetscale.Deployment{
			ID: d.ID + "-d", State: d.Deployment, Deployable: d.Deployable,
			LintErrors: d.Lint, DeployRequestNumber: d.Number, IntoBranch: d.Into,
			CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		},
		CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt, ClosedAt: d.ClosedAt, DeployedAt: d.DeployedAt,
	}
}

func (s *Server) findDR(r *http.Request) (*deployRequest, bool) {
	n, err := strconv.ParseUint(r.PathValue("number"), 10, 64)
	if err != nil || n == 0 || n > uint64(len(s.drs)) {
		return nil, false
	}
	return s.drs[n-1], true
}

func (s *Server) listDeployRequests(r *http.Request, _ []byte) (int, any) {
	q := r.URL.Query()
	out := []*planetscale.DeployRequest{}
	for _, d := range s.drs {
		if s.opts.ListIgnoresFilters {
			out = append(out, s.api(d))
			continue
		}
		if (q.Get("state") == "" || q.Get("state") == d.State) &&
			(q.Get("branch") == "" || q.Get("branch") == d.Branch) &&
			(q.Get("into_branch") == "" || q.Get("into_branch") == d.Into) {
			out = append(out, s.api(d))
		}
	}
	return http.StatusOK, map[string]any{"data": out}
}

func (s *Server) createDeployRequest(r *http.Request, body []byte) (int, any) {
	var req planetscale.CreateDeployRequestRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return http.StatusBadRequest, "invalid JSON body"
	}
	b, ok := s.branches[req.Branch]
	if !ok {
		return http.StatusNotFound, "Branch not found"
	}
	if b.Production {
		return http.StatusUnprocessableEntity, "A deploy request cannot be opened from a production branch"
	}
	if !b.Ready {
		return http.StatusUnprocessableEntity, "Branch is not ready"
	}
	into := req.IntoBranch
	if into == "" {
		into = b.Parent
	}
	if _, ok := s.branches[into]; !ok {
		return http.StatusNotFound, "Branch to deploy into not found"
	}
	for _, d := range s.drs {
		if d.Branch == b.Name && d.State == "open" {
			return http.StatusUnprocessableEntity, fmt.Sprintf("Branch %s already has an open deploy request (#%d)", b.Name, d.Number)
		}
	}
	now := time.Now().UTC()
	d := &deployRequest{
		ID: randHex(6), Number: uint64(len(s.drs) + 1), Branch: b.Name, Into: into,
		Notes: req.Notes, State: "open", Deployment: statePending, AutoCutover: req.AutoCutover,
		CreatedAt: now, UpdatedAt: now,
	}
	if len(s.deployFault) > 0 {
		d.fault, s.deployFault = s.deployFault[0], s.deployFault[1:]
	}
	s.drs = append(s.drs, d)
	return http.StatusCreated, s.api(d)
}

func (s *Server) getDeployRequest(r *http.Request, _ []byte) (int, any) {
	d, ok := s.findDR(r)
	if !ok {
		return http.StatusNotFound, "Not Found"
	}
	if d.stale > 0 {
		d.stale--
		st := s.api(d)
		st.DeploymentState, st.Deployment.State = d.staleState, d.staleState
		if s.opts.NestedStateOnly {
			st.DeploymentState = ""
		}
		return http.StatusOK, st
	}
	// Each state is answered StepPolls times before it moves on.
	if d.polls >= s.opts.StepPolls && d.Deployment != s.hangState {
		prev := d.Deployment
		s.advance(r.Context(), d)
		if d.Deployment != prev {
			d.polls = 0
		}
	}
	d.polls++
	return http.StatusOK, s.api(d)
}

// advance moves d one state forward where it moves by itself: a detour
// first, then pending -> ready | no_changes | error, submitting -> queued
// -> in_progress -> pending_cutover (or, with auto_cutover, the cutover),
// in_progress_cutover -> complete | complete_pending_revert |
// complete_error, in_progress_cancel -> complete_cancel.
func (s *Server) advance(ctx context.Context, d *deployRequest) {
	prev := d.Deployment
	switch {
	case len(d.detour) > 0:
		d.Deployment, d.detour = d.detour[0], d.detour[1:]
	case d.next != "":
		d.Deployment, d.next = d.next, ""
	default:
		s.step(ctx, d)
		if through := s.detours[prev]; len(through) > 0 && d.Deployment != prev {
			d.next = d.Deployment
			d.Deployment, d.detour = through[0], append([]string(nil), through[1:]...)
		}
	}
	if d.Deployment != prev {
		d.UpdatedAt = time.Now().UTC()
		s.log.Debug("fakeps: deploy request moved", "number", d.Number, "from", prev, "to", d.Deployment)
	}
}

// step moves d one state along PlanetScale's path.
func (s *Server) step(ctx context.Context, d *deployRequest) {
	switch d.Deployment {
	case statePending:
		s.check(ctx, d)
	case stateSubmitting:
		d.Deployment = stateQueued
	case stateQueued:
		d.Deployment = stateInProgress
		for _, c := range d.changes {
			c.State, c.Progress = "in_progress", 50
		}
	case stateInProgress:
		if d.fault == DeployCancelled {
			d.Deployment = stateInProgressCancel
			return
		}
		if n := s.opts.CopySteps; d.copied < n {
			// A long copy: in_progress for n steps, the operations'
			// progress moving at each.
			d.copied++
			for _, c := range d.changes {
				c.Progress = uint64(50 + 50*d.copied/(n+1))
			}
			return
		}
		for _, c := range d.changes {
			c.Progress = 100
		}
		if d.AutoCutover || s.opts.AutoCutover {
			d.Deployment = stateInProgressCutover
		} else {
			d.Deployment = statePendingCutover
		}
	case stateInProgressCutover:
		s.cutover(ctx, d)
	case stateInProgressCancel:
		d.Deployment = stateCompleteCancel
		for _, c := range d.changes {
			c.State = "cancelled"
		}
	}
}

// check computes a deploy request's diff and whether it conflicts.
func (s *Server) check(ctx context.Context, d *deployRequest) {
	b, into := s.branches[d.Branch], s.branches[d.Into]
	if b == nil || into == nil {
		d.Deployment = stateError
		return
	}
	fail := func(lint, desc string) {
		d.Deployment, d.Deployable = stateError, false
		d.Lint = []*planetscale.DeploymentLintError{{LintError: lint, Keyspace: s.opts.Database, ErrorDescription: desc}}
	}
	if d.fault == SchemaConflict {
		fail(LintSchemaConflict, "The branch's schema conflicts with changes deployed to "+d.Into+" since it was created")
		return
	}
	branchTables, err := s.tables(ctx, b.DB)
	if err != nil {
		fail("INTERNAL_ERROR", "could not read the branch's schema")
		return
	}
	intoTables, err := s.tables(ctx, into.DB)
	if err != nil {
		fail("INTERNAL_ERROR", "could not read the schema of "+d.Into)
		return
	}
	// A table changed on the branch that also changed on the target since
	// the branch was made is a conflict.
	for _, t := range union(branchTables, b.base) {
		if branchTables[t] != b.base[t] && intoTables[t] != b.base[t] {
			fail(LintSchemaConflict, "Table "+t+" changed on both "+d.Branch+" and "+d.Into)
			return
		}
	}
	changes, err := diff(ctx, intoTables, branchTables)
	if err != nil {
		fail("UNSUPPORTED_SCHEMA", err.Error())
		return
	}
	if len(changes) == 0 {
		d.Deployment = stateNoChanges
		return
	}
	d.changes, d.Deployment, d.Deployable = changes, stateReady, true
}

func union(a, b map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]string{a, b} {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}

// diff returns the ordered changes that turn schema from into schema to.
func diff(ctx context.Context, from, to map[string]string) ([]*change, error) {
	env := schemadiff.NewTestEnv()
	load := func(m map[string]string) (*schemadiff.Schema, error) {
		qs := make([]string, 0, len(m))
		for _, t := range union(m, nil) {
			qs = append(qs, m[t])
		}
		return schemadiff.NewSchemaFromQueries(env, qs)
	}
	fromSchema, err := load(from)
	if err != nil {
		return nil, fmt.Errorf("parse schema: %w", err)
	}
	toSchema, err := load(to)
	if err != nil {
		return nil, fmt.Errorf("parse branch schema: %w", err)
	}
	sd, err := schemadiff.DiffSchemas(env, fromSchema, toSchema, &schemadiff.DiffHints{})
	if err != nil {
		return nil, fmt.Errorf("diff schemas: %w", err)
	}
	diffs, err := sd.OrderedDiffs(ctx)
	if err != nil {
		return nil, fmt.Errorf("order diffs: %w", err)
	}
	out := make([]*change, 0, len(diffs))
	for _, df := range diffs {
		op, err := schemadiff.DDLActionStr(df)
		if err != nil {
			return nil, err
		}
		out = append(out, &change{Table: df.EntityName(), Operation: op, DDL: df.CanonicalStatementString(), State: "pending"})
	}
	return out, nil
}

// cutover applies d's changes to the branch it deploys into.
func (s *Server) cutover(ctx context.Context, d *deployRequest) {
	now := time.Now().UTC()
	into := s.branches[d.Into]
	var err error
	if d.fault == DeployError || into == nil {
		err = fmt.Errorf("injected deploy failure")
	} else {
		stmts := make([]string, len(d.changes))
		for i, c := range d.changes {
			stmts[i] = c.DDL
		}
		err = s.execIn(ctx, into.DB, stmts)
	}
	if err != nil {
		s.log.Info("fakeps: deploy failed", "number", d.Number, "err", err)
		d.Deployment = stateCompleteError
		for _, c := range d.changes {
			c.State = "error"
		}
		return
	}
	for _, c := range d.changes {
		c.State, c.Progress = "complete", 100
	}
	d.DeployedAt = &now
	if s.opts.RevertWindow {
		d.Deployment = stateCompleteRevertWin
		return
	}
	d.Deployment, d.State, d.ClosedAt = stateComplete, "closed", &now
}

func (s *Server) deploy(r *http.Request, _ []byte) (int, any) {
	d, ok := s.findDR(r)
	if !ok {
		return http.StatusNotFound, "Not Found"
	}
	if d.State != "open" {
		return http.StatusUnprocessableEntity, "Deploy request is closed"
	}
	if d.Deployment != stateReady || !d.Deployable {
		return http.StatusUnprocessableEntity, "Deploy request is not deployable (state " + d.Deployment + ")"
	}
	s.deploys++
	d.polls, d.stale, d.staleState = 0, s.opts.StaleReads, d.Deployment
	d.Deployment, d.UpdatedAt = stateSubmitting, time.Now().UTC()
	return http.StatusOK, s.api(d)
}

func (s *Server) applyDeploy(r *http.Request, _ []byte) (int, any) {
	d, ok := s.findDR(r)
	if !ok {
		return http.StatusNotFound, "Not Found"
	}
	if d.Deployment != statePendingCutover {
		return http.StatusUnprocessableEntity, "Deploy request is not waiting for cutover (state " + d.Deployment + ")"
	}
	d.polls, d.stale, d.staleState = 0, s.opts.StaleReads, d.Deployment
	d.Deployment, d.UpdatedAt = stateInProgressCutover, time.Now().UTC()
	return http.StatusOK, s.api(d)
}

func (s *Server) cancelDeploy(r *http.Request, _ []byte) (int, any) {
	d, ok := s.findDR(r)
	if !ok {
		return http.StatusNotFound, "Not Found"
	}
	switch d.Deployment {
	case stateSubmitting, stateQueued, stateInProgress, statePendingCutover:
		d.polls, d.Deployment, d.UpdatedAt = 0, stateInProgressCancel, time.Now().UTC()
		return http.StatusOK, s.api(d)
	}
	return http.StatusUnprocessableEntity, "Deploy request cannot be cancelled (state " + d.Deployment + ")"
}

func (s *Server) closeDeployRequest(r *http.Request, body []byte) (int, any) {
	d, ok := s.findDR(r)
	if !ok {
		return http.StatusNotFound, "Not Found"
	}
	var req planetscale.CloseRequest
	if err := json.Unmarshal(body, &req); err != nil || req.State != "closed" {
		return http.StatusBadRequest, "only state=closed is supported"
	}
	switch d.Deployment {
	case stateSubmitting, stateQueued, stateInProgress, statePendingCutover, stateInProgressCutover, stateInProgressCancel:
		return http.StatusUnprocessableEntity, "Deploy request is being deployed"
	}
	if d.State == "open" {
		now := time.Now().UTC()
		d.State, d.ClosedAt, d.UpdatedAt = "closed", &now, now
	}
	return http.StatusOK, s.api(d)
}

func (s *Server) deployOperations(r *http.Request, _ []byte) (int, any) {
	d, ok := s.findDR(r)
	if !ok {
		return http.StatusNotFound, "Not Found"
	}
	ops := []*planetscale.DeployOperation{}
	for i, c := range d.changes {
		ops = append(ops, &planetscale.DeployOperation{
			ID: fmt.Sprintf("%s-%d", d.ID, i+1), State: c.State, Table: c.Table,
			Keyspace: s.opts.Database, Operation: c.Operation, ProgressPercentage: c.Progress,
			CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
		})
	}
	return http.StatusOK, map[string]any{"data": ops}
}
