package psdeploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/planetscale/planetscale-go/planetscale"

	"github.com/ternhq/tern/engine"
)

// lintSchemaConflict is the lint error of a deploy request whose branch
// conflicts with the branch it deploys into.
const lintSchemaConflict = "SCHEMA_CONFLICT"

// recorderError is a Recorder failure (a lost lease): it is returned as is,
// never as a task failure.
type recorderError struct{ err error }

func (r *recorderError) Error() string { return r.err.Error() }
func (r *recorderError) Unwrap() error { return r.err }

// attempt is one Apply call.
type attempt struct {
	e       *Engine
	job     engine.Job
	rec     engine.Recorder
	state   map[string]string
	started map[int]bool
	log     *slog.Logger
}

// Apply runs job's tasks through a branch and a deploy request, resuming
// from job.EngineState. A failure is a *engine.TaskError wrapping a
// classified error; a Recorder failure is returned as is. When the failure
// is permanent the deploy request is closed and the branch deleted; when it
// is transient both are kept for the next attempt.
func (e *Engine) Apply(ctx context.Context, job engine.Job, rec engine.Recorder) error {
	if len(job.Tasks) == 0 {
		return nil
	}
	a := &attempt{
		e: e, job: job, rec: rec, state: map[string]string{}, started: map[int]bool{},
		log: e.log.With("apply", job.ApplyID, "attempt", job.Attempt),
	}
	for k, v := range job.EngineState {
		a.state[k] = v
	}
	err := a.run(ctx)
	var te *engine.TaskError
	if errors.As(err, &te) && !engine.IsRetryable(te.Err) {
		a.abandon(context.WithoutCancel(ctx))
	}
	if err != nil {
		a.log.Warn("planetscale apply attempt failed", "class", engine.Class(err), "err", err)
	}
	return err
}

func (a *attempt) run(ctx context.Context) error {
	first := a.job.Tasks[0].Seq
	if v := a.state[StateDeployRequest]; v != "" {
		num, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return &engine.TaskError{Seq: first, Err: &engine.PermanentError{Class: ClassInvalid,
				Err: fmt.Errorf("saved deploy request number %q is not a number", v)}}
		}
		a.log.Info("resuming deploy request", "number", num)
		if err := a.startAll(ctx); err != nil {
			return err
		}
		return a.watch(ctx, num)
	}
	if err := a.start(ctx, first); err != nil {
		return err
	}
	branch, err := a.branch(ctx)
	if err != nil {
		return a.taskErr(first, err)
	}
	if err := a.runDDL(ctx, branch); err != nil {
		return a.taskErr(first, err)
	}
	if err := a.startAll(ctx); err != nil {
		return err
	}
	num, err := a.openDeployRequest(ctx, branch)
	if err != nil {
		return a.taskErr(first, err)
	}
	return a.watch(ctx, num)
}

// taskErr names seq as the failed task unless err already names one or is
// a Recorder failure.
func (a *attempt) taskErr(seq int, err error) error {
	var te *engine.TaskError
	var re *recorderError
	if err == nil || errors.As(err, &te) || errors.As(err, &re) {
		return err
	}
	return &engine.TaskError{Seq: seq, Err: err}
}

func (a *attempt) start(ctx context.Context, seq int) error {
	if a.started[seq] {
		return nil
	}
	if err := a.rec.TaskStarted(ctx, seq); err != nil {
		return &recorderError{fmt.Errorf("record task %d started: %w", seq, err)}
	}
	a.started[seq] = true
	return nil
}

func (a *attempt) startAll(ctx context.Context) error {
	for _, t := range a.job.Tasks {
		if err := a.start(ctx, t.Seq); err != nil {
			return err
		}
	}
	return nil
}

// fence confirms, right before a side effect on PlanetScale that a worker
// that lost the apply must not make, that this attempt still holds its
// lease (when the Recorder can tell: engine.Confirmer). A failure is a
// Recorder failure: the attempt stops.
func (a *attempt) fence(ctx context.Context, what string) error {
	c, ok := a.rec.(engine.Confirmer)
	if !ok {
		return nil
	}
	if err := c.Confirm(ctx); err != nil {
		return &recorderError{fmt.Errorf("before %s: %w", what, err)}
	}
	return nil
}

func (a *attempt) save(ctx context.Context, key, value string) error {
	if err := a.rec.SaveState(ctx, key, value); err != nil {
		return &recorderError{fmt.Errorf("save state %s: %w", key, err)}
	}
	a.state[key] = value
	return nil
}

func (a *attempt) api(ctx context.Context, op string, f func(ctx context.Context, c *planetscale.Client, org, db string) error) error {
	return call(ctx, op, func(ctx context.Context) error {
		return f(ctx, a.e.client, a.e.cfg.Organization, a.e.cfg.Database)
	})
}

func (a *attempt) getBranch(ctx context.Context, name string) (*planetscale.DatabaseBranch, error) {
	var b *planetscale.DatabaseBranch
	err := a.api(ctx, "get branch "+name, func(ctx context.Context, c *planetscale.Client, org, db string) (err error) {
		b, err = c.DatabaseBranches.Get(ctx, &planetscale.GetDatabaseBranchRequest{Organization: org, Database: db, Branch: name})
		return err
	})
	return b, err
}

func (a *attempt) deleteBranch(ctx context.Context, name string) error {
	if err := a.fence(ctx, "delete branch "+name); err != nil {
		return err
	}
	err := a.api(ctx, "delete branch "+name, func(ctx context.Context, c *planetscale.Client, org, db string) error {
		return c.DatabaseBranches.Delete(ctx, &planetscale.DeleteDatabaseBranchRequest{Organization: org, Database: db, Branch: name})
	})
	if engine.Class(err) == ClassNotFound {
		return nil
	}
	return err
}

// branch returns a ready branch for this apply: the recorded one when it
// still exists and no DDL on it is in doubt, else a new one.
func (a *attempt) branch(ctx context.Context) (string, error) {
	name := a.state[StateBranch]
	if name != "" {
		_, err := a.getBranch(ctx, name)
		switch {
		case engine.Class(err) == ClassNotFound:
			a.log.Info("recorded branch is gone; making a new one", "branch", name)
			name = ""
		case err != nil:
			return "", err
		case a.state[StateBranchStarted] != a.state[StateBranchDone]:
			// A DDL was sent but never confirmed: the branch's schema is in
			// doubt, so start over on a fresh branch.
			a.log.Info("DDL on recorded branch in doubt; replacing it", "branch", name)
			if err := a.deleteBranch(ctx, name); err != nil {
				return "", err
			}
			name = ""
		default:
			a.log.Info("reusing branch", "branch", name)
		}
	}
	if name == "" {
		// The random part keeps a branch some other ledger (or a tern
		// reinstalled from scratch) left under the same apply number from
		// being taken for this apply's.
		name = fmt.Sprintf("tern-%d-%d-%s", a.job.ApplyID, a.job.Attempt, randSuffix())
		for _, kv := range [][2]string{{StateBranch, name}, {StateBranchStarted, ""}, {StateBranchDone, ""}} {
			if err := a.save(ctx, kv[0], kv[1]); err != nil {
				return "", err
			}
		}
		err := a.api(ctx, "create branch "+name, func(ctx context.Context, c *planetscale.Client, org, db string) error {
			_, err := c.DatabaseBranches.Create(ctx, &planetscale.CreateDatabaseBranchRequest{
				Organization: org, Database: db, Name: name, ParentBranch: a.e.cfg.Branch,
			})
			return err
		})
		if err != nil {
			return "", err
		}
		a.log.Info("branch created", "branch", name, "parent", a.e.cfg.Branch)
	}
	err := a.poll(ctx, "branch "+name, func(ctx context.Context) (string, bool, error) {
		b, err := a.getBranch(ctx, name)
		if err != nil {
			return "", false, err
		}
		if b.Ready {
			return "ready", true, nil
		}
		return "not ready", false, nil
	})
	return name, err
}

// runDDL sends the tasks not yet on the branch, in order, over MySQL with
// a fresh password that is deleted when done.
func (a *attempt) runDDL(ctx context.Context, branch string) error {
	done, _ := strconv.Atoi(a.state[StateBranchDone])
	var todo []engine.Task
	for _, t := range a.job.Tasks {
		if t.Seq > done {
			todo = append(todo, t)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	if old := a.state[StatePassword]; old != "" {
		// Left by an attempt that died: its plain text is gone anyway.
		if err := a.e.deletePassword(ctx, branch, old); err != nil {
			a.log.Warn("could not delete an old branch password", "branch", branch, "err", err)
		}
	}
	var pw *planetscale.DatabaseBranchPassword
	err := a.api(ctx, "create password on "+branch, func(ctx context.Context, c *planetscale.Client, org, db string) (err error) {
		pw, err = c.Passwords.Create(ctx, &planetscale.DatabaseBranchPasswordRequest{
			Organization: org, Database: db, Branch: branch, Role: "admin",
			Name: fmt.Sprintf("tern-%d-%d-%s", a.job.ApplyID, a.job.Attempt, randSuffix()),
		})
		return err
	})
	if err != nil {
		return err
	}
	if err := a.save(ctx, StatePassword, pw.PublicID); err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := a.e.deletePassword(cctx, branch, pw.PublicID); err != nil {
			a.log.Warn("could not delete the branch password", "branch", branch, "err", err)
			return
		}
		if ctx.Err() == nil {
			a.save(ctx, StatePassword, "")
		}
	}()
	db, err := a.e.connect(ctx, pw)
	if err != nil {
		return fmt.Errorf("connect to branch %s: %w", branch, err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return engine.ClassifyMySQL(fmt.Errorf("connect to branch %s: %w", branch, err))
	}
	defer conn.Close()
	for _, t := range todo {
		if err := a.start(ctx, t.Seq); err != nil {
			return err
		}
		seq := strconv.Itoa(t.Seq)
		if err := a.save(ctx, StateBranchStarted, seq); err != nil {
			return err
		}
		if _, err := conn.ExecContext(ctx, trimStatement(t.DDL)); err != nil {
			return &engine.TaskError{Seq: t.Seq, Err: engine.ClassifyMySQL(
				fmt.Errorf("task %d on branch %s: %w", t.Seq, branch, err))}
		}
		if err := a.save(ctx, StateBranchDone, seq); err != nil {
			return err
		}
		a.log.Info("DDL applied to branch", "branch", branch, "task", t.Seq)
	}
	return nil
}

// openDeployRequest opens the branch's deploy request and records it. When
// Create fails, an attempt that died before recording its deploy request
// may have left one open (PlanetScale allows one open deploy request per
// branch and refuses a second): the open deploy request of this branch is
// adopted if there is one, else Create's error is returned.
func (a *attempt) openDeployRequest(ctx context.Context, branch string) (uint64, error) {
	var dr *planetscale.DeployRequest
	err := a.api(ctx, "create deploy request", func(ctx context.Context, c *planetscale.Client, org, db string) (err error) {
		dr, err = c.DeployRequests.Create(ctx, &planetscale.CreateDeployRequestRequest{
			Organization: org, Database: db, Branch: branch, IntoBranch: a.e.cfg.Branch,
			Notes: fmt.Sprintf("tern: apply %d for %s#%d", a.job.ApplyID, a.job.Repository, a.job.PR),
		})
		return err
	})
	var num uint64
	switch {
	case err == nil && dr.Number != 0:
		num = dr.Number
		a.log.Info("deploy request created", "number", num, "branch", branch)
	default:
		if err == nil {
			err = &engine.RetryableError{Class: ClassMalformed,
				Err: errors.New("planetscale: create deploy request: the answer carries no deploy request number")}
		}
		open, lerr := a.openDeployRequests(ctx, branch)
		if lerr != nil || len(open) == 0 {
			if lerr != nil {
				a.log.Debug("could not list deploy requests", "branch", branch, "err", lerr)
			}
			return 0, err
		}
		num = open[0].Number
		a.log.Info("adopting open deploy request", "number", num, "branch", branch, "create_err", err)
	}
	if err := a.save(ctx, StateDeployRequest, strconv.FormatUint(num, 10)); err != nil {
		return 0, err
	}
	return num, nil
}

// openDeployRequests lists the open deploy requests of branch into the
// target's branch. The filters are checked here too: a server that ignores
// the query's must not make the engine adopt another branch's request.
func (a *attempt) openDeployRequests(ctx context.Context, branch string) ([]*planetscale.DeployRequest, error) {
	var all []*planetscale.DeployRequest
	err := a.api(ctx, "list deploy requests", func(ctx context.Context, c *planetscale.Client, org, db string) (err error) {
		all, err = c.DeployRequests.List(ctx, &planetscale.ListDeployRequestsRequest{
			Organization: org, Database: db, State: "open", Branch: branch, IntoBranch: a.e.cfg.Branch,
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	var open []*planetscale.DeployRequest
	for _, d := range all {
		if d != nil && d.Number != 0 && d.Branch == branch && d.State == "open" &&
			(d.IntoBranch == "" || d.IntoBranch == a.e.cfg.Branch) {
			open = append(open, d)
		}
	}
	return open, nil
}

// Deployment states a deploy request reports (deployment_state), as
// planetscale-go and the API name them.
const (
	dsPending                 = "pending"     // the deploy check runs
	dsReady                   = "ready"       // deployable
	dsNoChanges               = "no_changes"  // the branch has nothing to deploy
	dsError                   = "error"       // the deploy check failed (lint errors)
	dsQueued                  = "queued"      // deployed, waiting in the deploy queue
	dsSubmitting              = "submitting"  // deployed, being handed to the queue
	dsInProgress              = "in_progress" // copying tables
	dsInProgressVSchema       = "in_progress_vschema"
	dsPendingCutover          = "pending_cutover" // gated: waits for ApplyDeploy
	dsInProgressCutover       = "in_progress_cutover"
	dsInProgressCancel        = "in_progress_cancel"
	dsComplete                = "complete"
	dsCompletePendingRevert   = "complete_pending_revert" // live, revert window open
	dsCompleteError           = "complete_error"
	dsCompleteCancel          = "complete_cancel"
	dsCancelled               = "cancelled"
	dsInProgressRevert        = "in_progress_revert"
	dsInProgressRevertVSchema = "in_progress_revert_vschema"
	dsCompleteRevert          = "complete_revert"
	dsCompleteRevertError     = "complete_revert_error"
)

// deploymentState is dr's deployment state: deployment_state, or where an
// answer leaves it empty, the nested deployment's state.
func deploymentState(dr *planetscale.DeployRequest) string {
	if dr.DeploymentState != "" {
		return dr.DeploymentState
	}
	if dr.Deployment != nil {
		return dr.Deployment.State
	}
	return ""
}

// watch drives deploy request num to its end: deploy once deployable, cut
// over when it waits for it, and finish once its changes are live.
//
// States: pending waits; ready is deployed (once per attempt: an answer
// that still says ready after Deploy is waited on); no_changes, complete
// and complete_pending_revert end it (the changes are live); pending_cutover
// is cut over (once each time it is entered); queued, submitting and the
// in_progress states wait, logging progress; error (the deploy check
// failed), complete_error, cancellation, a revert and a request closed
// before it was deployed fail the apply for good. Any other state is
// waited on like an in-progress one, bounded by StateTimeout.
func (a *attempt) watch(ctx context.Context, num uint64) error {
	first := a.job.Tasks[0].Seq
	fail := func(err error) error { return a.taskErr(first, err) }
	var dr *planetscale.DeployRequest
	var outcome error
	ended, deployed, cutOver := false, false, false
	seen := "" // the last deployment state read
	lastOps := ""
	warned := map[string]bool{}
	failed := func(st, why string) {
		outcome = &engine.PermanentError{Class: ClassDeployFailed,
			Err: fmt.Errorf("planetscale: deploy request %d %s (%s)", num, why, st)}
	}
	err := a.poll(ctx, fmt.Sprintf("deploy request %d", num), func(ctx context.Context) (string, bool, error) {
		err := a.api(ctx, fmt.Sprintf("get deploy request %d", num), func(ctx context.Context, c *planetscale.Client, org, db string) (err error) {
			dr, err = c.DeployRequests.Get(ctx, &planetscale.GetDeployRequestRequest{Organization: org, Database: db, Number: num})
			return err
		})
		if err != nil {
			return "", false, err
		}
		st := deploymentState(dr)
		seen = st
		if st != dsPendingCutover {
			cutOver = false
		}
		switch st {
		case dsComplete, dsCompletePendingRevert, dsNoChanges:
			ended = true
			return st, true, nil
		case dsError:
			outcome = a.deployFailure(dr, st)
			return st, true, nil
		case dsCompleteError, dsCompleteRevertError:
			failed(st, "failed")
			return st, true, nil
		case dsCompleteCancel, dsCancelled:
			failed(st, "was cancelled")
			return st, true, nil
		case dsCompleteRevert:
			failed(st, "was reverted")
			return st, true, nil
		}
		if dr.State == "closed" && (st == "" || st == dsPending || st == dsReady) {
			failed(st, "was closed before it was deployed")
			return st, true, nil
		}
		switch st {
		case dsPending:
		case dsReady:
			if deployed {
				break // the answer lags behind the deploy
			}
			if dr.Deployment != nil && !dr.Deployment.Deployable && len(dr.Deployment.LintErrors) > 0 {
				outcome = a.deployFailure(dr, st)
				return st, true, nil
			}
			if err := a.fence(ctx, fmt.Sprintf("deploy deploy request %d", num)); err != nil {
				return "", false, err
			}
			err := a.api(ctx, fmt.Sprintf("deploy deploy request %d", num), func(ctx context.Context, c *planetscale.Client, org, db string) error {
				_, err := c.DeployRequests.Deploy(ctx, &planetscale.PerformDeployRequest{Organization: org, Database: db, Number: num})
				return err
			})
			if err != nil {
				return "", false, err
			}
			deployed = true
			a.log.Info("deploy request deployed", "number", num)
		case dsPendingCutover:
			if cutOver {
				break
			}
			if err := a.fence(ctx, fmt.Sprintf("cut over deploy request %d", num)); err != nil {
				return "", false, err
			}
			err := a.api(ctx, fmt.Sprintf("cut over deploy request %d", num), func(ctx context.Context, c *planetscale.Client, org, db string) error {
				_, err := c.DeployRequests.ApplyDeploy(ctx, &planetscale.ApplyDeployRequestRequest{Organization: org, Database: db, Number: num})
				return err
			})
			if err != nil {
				return "", false, err
			}
			cutOver = true
			a.log.Info("deploy request cut over", "number", num)
		case dsQueued, dsSubmitting, dsInProgress, dsInProgressVSchema, dsInProgressCutover,
			dsInProgressCancel, dsInProgressRevert, dsInProgressRevertVSchema:
			if s := a.progress(ctx, num); s != "" && s != lastOps {
				lastOps = s
				a.log.Info("deploy progress", "number", num, "state", st, "operations", s)
			}
			// A deploy whose operations move is progressing, however long
			// it stays in one state: StateTimeout counts from the last
			// move.
			return st + " " + lastOps, false, nil
		default:
			if !warned[st] {
				warned[st] = true
				a.log.Warn("deploy request in a state tern does not know; waiting", "number", num, "state", st)
			}
		}
		return st, false, nil
	})
	if err == nil && outcome == nil && !ended {
		err = &engine.RetryableError{Class: ClassStateTimeout, Err: fmt.Errorf("planetscale: deploy request %d did not end", num)}
	}
	if err != nil {
		var re *recorderError
		if st := seen; !errors.As(err, &re) && engine.Class(err) != ClassNotFound {
			if deployed || st == "" || deploying(st) {
				// The deploy request may still land: waiting on it is not
				// an attempt, and the apply must not fail for good while
				// it is not over. The next attempt resumes watching it.
				return fail(&engine.WaitingError{Err: &engine.RetryableError{Class: waitClass(err),
					Err: fmt.Errorf("deploy request %d is %s and may still land; waiting on it: %w", num, stateOrUnknown(st), err)}})
			}
		}
		return fail(err)
	}
	if outcome != nil {
		return fail(outcome)
	}
	st := deploymentState(dr)
	a.log.Info("deploy request complete", "number", num, "state", st)
	if st == dsNoChanges && dr.State == "open" {
		if err := a.fence(ctx, fmt.Sprintf("close deploy request %d", num)); err != nil {
			return err
		}
		err := a.api(ctx, fmt.Sprintf("close deploy request %d", num), func(ctx context.Context, c *planetscale.Client, org, db string) error {
			_, err := c.DeployRequests.CloseDeploy(ctx, &planetscale.CloseDeployRequestRequest{Organization: org, Database: db, Number: num})
			return err
		})
		if err != nil {
			a.log.Warn("could not close a deploy request with no changes", "number", num, "err", err)
		}
	}
	for _, t := range a.job.Tasks {
		if err := a.start(ctx, t.Seq); err != nil {
			return err
		}
		if err := a.rec.TaskDone(ctx, t.Seq); err != nil {
			return &recorderError{fmt.Errorf("record task %d done: %w", t.Seq, err)}
		}
	}
	branch := a.state[StateBranch]
	if branch == "" {
		branch = dr.Branch
	}
	if branch != "" && branch != a.e.cfg.Branch {
		if err := a.deleteBranch(ctx, branch); err != nil {
			a.log.Warn("deployed, but could not delete the branch", "branch", branch, "err", err)
		}
	}
	return nil
}

// waitClass is the class of a wait on a deploy request cut short by err:
// err's own class, or interrupted when it has none.
func waitClass(err error) string {
	if c := engine.Class(err); c != "" && c != engine.ClassUnknown {
		return c
	}
	return engine.ClassInterrupted
}

func stateOrUnknown(st string) string {
	if st == "" {
		return "in an unknown state"
	}
	return st
}

// Resumes reports whether job's recorded state names a deploy request:
// an attempt then continues it (and starts nothing new).
func (e *Engine) Resumes(job engine.Job) bool { return job.EngineState[StateDeployRequest] != "" }

// deployFailure classifies a deploy request whose deploy check failed.
func (a *attempt) deployFailure(dr *planetscale.DeployRequest, st string) error {
	var lints []string
	conflict := false
	if dr.Deployment != nil {
		for _, l := range dr.Deployment.LintErrors {
			if l == nil {
				continue
			}
			if l.LintError == lintSchemaConflict {
				conflict = true
			}
			lints = append(lints, strings.TrimSpace(l.LintError+": "+l.ErrorDescription))
		}
	}
	msg := fmt.Sprintf("planetscale: deploy request %d is not deployable (%s)", dr.Number, st)
	if len(lints) > 0 {
		msg += ": " + strings.Join(lints, "; ")
	}
	if conflict {
		return &engine.PermanentError{Class: ClassSchemaConflict, Err: errors.New(msg)}
	}
	return &engine.PermanentError{Class: ClassDeployFailed, Err: errors.New(msg)}
}

// progress summarizes a deploy's operations ("orders ALTER 50%, ..."); a
// failure to read them only costs the log line.
func (a *attempt) progress(ctx context.Context, num uint64) string {
	var ops []*planetscale.DeployOperation
	err := a.api(ctx, "get deploy operations", func(ctx context.Context, c *planetscale.Client, org, db string) (err error) {
		ops, err = c.DeployRequests.GetDeployOperations(ctx, &planetscale.GetDeployOperationsRequest{Organization: org, Database: db, Number: num})
		return err
	})
	if err != nil {
		a.log.Debug("could not read deploy operations", "number", num, "err", err)
		return ""
	}
	parts := make([]string, 0, len(ops))
	for _, op := range ops {
		parts = append(parts, fmt.Sprintf("%s %s %s %d%%", op.Table, op.Operation, op.State, op.ProgressPercentage))
	}
	return strings.Join(parts, ", ")
}

// poll calls f every PollInterval until it reports done or fails. A state
// that does not change for StateTimeout ends the attempt with a transient
// ps_timeout error.
func (a *attempt) poll(ctx context.Context, what string, f func(ctx context.Context) (state string, done bool, err error)) error {
	last, since := "", time.Now()
	for {
		st, done, err := f(ctx)
		if err != nil || done {
			return err
		}
		if st != last {
			if last != "" {
				a.log.Info("state changed", "what", what, "from", last, "to", st)
			}
			last, since = st, time.Now()
		} else if time.Since(since) >= a.e.opts.StateTimeout {
			return &engine.RetryableError{Class: ClassStateTimeout,
				Err: fmt.Errorf("planetscale: %s stayed %s for %s", what, st, a.e.opts.StateTimeout)}
		}
		if err := sleep(ctx, a.e.opts.PollInterval); err != nil {
			return err
		}
	}
}

// abandon closes the deploy request and deletes the branch after a
// permanent failure. Best effort: failures are logged. A deploy request
// that is being deployed (or whose state cannot be read) is left alone
// with its branch: the deploy may still complete, and deleting its branch
// under it helps nobody.
func (a *attempt) abandon(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if v := a.state[StateDeployRequest]; v != "" {
		if num, err := strconv.ParseUint(v, 10, 64); err == nil {
			var dr *planetscale.DeployRequest
			err := a.api(ctx, fmt.Sprintf("get deploy request %d", num), func(ctx context.Context, c *planetscale.Client, org, db string) (err error) {
				dr, err = c.DeployRequests.Get(ctx, &planetscale.GetDeployRequestRequest{Organization: org, Database: db, Number: num})
				return err
			})
			switch {
			case engine.Class(err) == ClassNotFound:
			case err != nil:
				a.log.Warn("could not read the deploy request; leaving it and its branch", "number", num, "err", err)
				return
			case deploying(deploymentState(dr)):
				a.log.Warn("the deploy request is being deployed; leaving it and its branch", "number", num, "state", deploymentState(dr))
				return
			case dr.State == "open":
				if err := a.fence(ctx, fmt.Sprintf("close deploy request %d", num)); err != nil {
					a.log.Warn("lease lost: leaving the deploy request and its branch", "number", num, "err", err)
					return
				}
				err := a.api(ctx, fmt.Sprintf("close deploy request %d", num), func(ctx context.Context, c *planetscale.Client, org, db string) error {
					_, err := c.DeployRequests.CloseDeploy(ctx, &planetscale.CloseDeployRequestRequest{Organization: org, Database: db, Number: num})
					return err
				})
				if err != nil {
					a.log.Warn("could not close the deploy request", "number", num, "err", err)
				}
			}
		}
	}
	if b := a.state[StateBranch]; b != "" && b != a.e.cfg.Branch {
		if err := a.deleteBranch(ctx, b); err != nil {
			a.log.Warn("could not delete the branch", "branch", b, "err", err)
		}
	}
}

// deploying reports whether a deploy request in deployment state st has
// been deployed and not yet ended.
func deploying(st string) bool {
	switch st {
	case "", dsPending, dsReady, dsNoChanges, dsError, dsComplete, dsCompletePendingRevert,
		dsCompleteError, dsCompleteCancel, dsCancelled, dsCompleteRevert, dsCompleteRevertError:
		return false
	}
	return true
}
