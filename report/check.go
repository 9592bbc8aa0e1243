package report

import (
	"fmt"
	"strings"

	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/store"
)

// Check-run statuses and conclusions tern uses.
const (
	StatusInProgress = "in_progress"
	StatusCompleted  = "completed"

	ConclusionSuccess        = "success"
	ConclusionFailure        = "failure"
	ConclusionActionRequired = "action_required"
	ConclusionCancelled      = "cancelled"
)

// AggregateName is the name of the check that is success only when every
// per-environment check is.
const AggregateName = "tern"

// RetryAction is the identifier of the "Retry now" button.
const RetryAction = "retry"

// CheckName returns the per-environment check name tern/<db>/<env>.
func CheckName(db, env string) string { return "tern/" + db + "/" + env }

// Check is what one check run shows.
type Check struct {
	Name       string
	Status     string // in_progress or completed
	Conclusion string // set when completed
	Title      string
	Summary    string
	Text       string
	// Retry adds a "Retry now" button (only shown on completed runs).
	Retry bool
}

// Completed reports whether the run is final.
func (c Check) Completed() bool { return c.Status == StatusCompleted }

func finish(c Check) Check {
	c.Title = clip(c.Title, 1000)
	c.Summary = clip(c.Summary, MaxCheckOutput)
	c.Text = clip(c.Text, MaxCheckOutput)
	return c
}

// PlanCheck renders the check run of one planned (database, environment).
// waitingFor names the earlier environment still to be applied, or "" when
// this environment is next.
func PlanCheck(r PlanResult, waitingFor string, multiDB bool) Check {
	c := Check{Name: CheckName(r.Database, r.Environment), Status: StatusCompleted}
	switch {
	case r.Err != "":
		c.Conclusion = ConclusionFailure
		c.Title = "Plan failed"
		c.Summary = "Planning failed:\n\n```\n" + r.Err + "\n```\n"
		return finish(c)
	case r.Plan == nil || !r.Plan.HasChanges():
		c.Conclusion = ConclusionSuccess
		c.Title = "No changes"
		c.Summary = fmt.Sprintf("The live schema of %s in %s already matches this commit.", code(r.Database), code(r.Environment))
		return finish(c)
	}
	n := len(r.Plan.Statements)
	c.Conclusion = ConclusionActionRequired
	if waitingFor != "" {
		c.Title = fmt.Sprintf("Waiting for %s", waitingFor)
		c.Summary = fmt.Sprintf("%s to apply once %s is applied with this schema.", plural(n, "statement"), code(waitingFor))
	} else {
		c.Title = fmt.Sprintf("Awaiting apply: %s", plural(n, "statement"))
		c.Summary = fmt.Sprintf("Comment %s to apply.", code(ApplyCommandFor(r.Database, r.Environment, multiDB, r.Plan)))
	}
	c.Text = planText(r.Plan)
	return finish(c)
}

// PlanOnlyCheck is c, a plan's check run, for a pull request nothing can
// be applied from (why: "the base branch `main` has no `tern.yaml` yet"):
// a run with changes says so instead of suggesting an apply that would be
// refused. Its title and conclusion stay those of a plan with changes.
func PlanOnlyCheck(c Check, why string) Check {
	if c.Conclusion != ConclusionActionRequired {
		return c
	}
	c.Summary = planOnlyNote(why)
	return finish(c)
}

// planOnlyNote says why nothing can be applied from a PR and what to do.
func planOnlyNote(why string) string {
	return fmt.Sprintf("**Plan only**: %s, so nothing can be applied from this pull request. Merge `tern.yaml` first (with schema files that match the live schema), then apply schema changes from later pull requests.", oneLine(why))
}

// UnsafeCheck renders the check run of a plan refused for unsafe changes
// or for statements that block writes to a large table.
func UnsafeCheck(db, env string, p *plan.Plan, multiDB bool) Check {
	c := Check{Name: CheckName(db, env), Status: StatusCompleted, Conclusion: ConclusionActionRequired}
	c.Title = fmt.Sprintf("Unsafe changes: %s", plural(len(p.Unsafe())+len(p.Blocking()), "finding"))
	if len(p.Unsafe()) > 0 {
		c.Summary = "Applying needs `--allow-unsafe`:\n\n" + renderFindings(p.Unsafe()) + "\n"
	}
	if len(p.Blocking()) > 0 {
		c.Summary += "Applying needs `--allow-blocking`:\n\n" + renderFindings(p.Blocking()) + "\n"
	}
	c.Summary += "Comment " + code(ApplyCommandFor(db, env, multiDB, p)) + " if you mean it."
	c.Text = planText(p)
	return finish(c)
}

func planText(p *plan.Plan) string {
	stmts := make([]string, len(p.Statements))
	for i, s := range p.Statements {
		stmts[i] = s.DDL
	}
	var b strings.Builder
	b.WriteString(sqlBlock(plural(len(stmts), "statement"), stmts, MaxCheckOutput-12000))
	if t := costTable(p.Statements, 0); t != "" {
		b.WriteString("\n" + t)
	}
	if len(p.Findings) > 0 {
		b.WriteString("\n" + renderFindings(p.Findings))
	}
	return b.String()
}

// ApplyCheck renders the check run of an apply in its current state.
func ApplyCheck(a *store.Apply, tasks []store.Task) Check {
	c := Check{Name: CheckName(a.Database, a.Environment)}
	progress := fmt.Sprintf("%d of %s done", completed(tasks), plural(len(tasks), "statement"))
	switch a.State {
	case store.Pending:
		c.Status = StatusInProgress
		c.Title = "Applying: queued"
		c.Summary = "Apply #" + fmt.Sprint(a.ID) + " is queued."
	case store.Running:
		c.Status = StatusInProgress
		c.Title = "Applying: " + progress
		if p := ProgressLine(tasks); p != "" {
			c.Title = "Applying: " + p + " (" + progress + ")"
		}
		if a.Attempt > 1 {
			c.Title += fmt.Sprintf(" (attempt %d/%d)", a.Attempt, a.MaxAttempts)
		}
		c.Summary = fmt.Sprintf("Apply #%d is running.", a.ID)
		if p := ProgressLine(tasks); p != "" {
			c.Summary += " Now " + p + " (the server's estimate)."
		}
	case store.FailedRetryable:
		c.Status = StatusInProgress
		// CONTRACT §5: the attempt, the next retry time and the last error.
		c.Title = retryingTitle + " " + RetryLine(a)
		if a.LastError != "" {
			c.Title += ": " + clip(oneLine(a.LastError), 200)
		}
		c.Summary = fmt.Sprintf("Last error%s: %s\n\ntern retries on its own; `/tern retry -e %s` retries now, `/tern cancel -e %s` stops it.",
			classSuffix(a.ErrorClass), code(oneLine(a.LastError)), a.Environment, a.Environment)
	case store.Completed:
		c.Status, c.Conclusion = StatusCompleted, ConclusionSuccess
		c.Title = "Applied: " + plural(len(tasks), "statement")
		if a.Attempt > 1 {
			c.Title += fmt.Sprintf(" after %d attempts", a.Attempt)
		}
		c.Summary = fmt.Sprintf("Apply #%d changed %s in %s.", a.ID, code(a.Database), code(a.Environment))
	case store.Failed:
		c.Status, c.Conclusion = StatusCompleted, ConclusionFailure
		c.Title = fmt.Sprintf("Failed after %s: %s", plural(a.Attempt, "attempt"), clip(oneLine(a.LastError), 200))
		c.Summary = fmt.Sprintf("Last error%s: %s\n\n%s. Fix the cause, then `/tern retry -e %s` (or the Retry now button).",
			classSuffix(a.ErrorClass), code(oneLine(a.LastError)), progress, a.Environment)
		c.Retry = true
	case store.Cancelled:
		c.Status, c.Conclusion = StatusCompleted, ConclusionCancelled
		c.Title = "Cancelled: " + progress
		c.Summary = fmt.Sprintf("Apply #%d was cancelled.", a.ID)
		if a.LastError != "" {
			c.Summary += " " + oneLine(a.LastError)
		}
	}
	c.Text = taskText(tasks)
	return finish(c)
}

// taskText is the body of an apply's check run: a table of its tasks with
// their states, then their statements.
func taskText(tasks []store.Task) string {
	var b strings.Builder
	b.WriteString("| # | table | statement | state |\n|---|---|---|---|\n")
	stmts := make([]string, len(tasks))
	for i, t := range tasks {
		st := StateWord(t.State)
		if t.Skipped {
			st = "Already live"
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s |\n", t.Seq, code(t.Table), t.Kind, st)
		stmts[i] = t.DDL
	}
	b.WriteString("\n" + sqlBlock(plural(len(stmts), "statement"), stmts, MaxCheckOutput-len(b.String())-1000))
	return b.String()
}

// completed counts the tasks that are done.
func completed(tasks []store.Task) int {
	n := 0
	for _, t := range tasks {
		if t.State == store.Completed {
			n++
		}
	}
	return n
}

// CheckState is the last known state of one per-environment run.
type CheckState struct {
	Name       string
	Status     string
	Conclusion string
	Title      string
}

// NoSchemaChangesCheck renders the `tern` check of a pull request that
// changes neither tern.yaml nor a schema file: it passes, so that a required
// `tern` check does not block pull requests that have nothing to apply.
func NoSchemaChangesCheck() Check {
	return finish(Check{
		Name: AggregateName, Status: StatusCompleted, Conclusion: ConclusionSuccess,
		Title:   "No changes: this pull request changes no schema file",
		Summary: "Nothing for tern to plan or apply: neither `tern.yaml` nor a file under a `schema_dir` changed.",
	})
}

// retryingTitle begins the title of a run whose apply failed transiently
// and waits for its retry (CONTRACT §5).
const retryingTitle = "Failed (retrying...)"

// AggregateCheck renders the `tern` check: success only when every
// per-environment run is success, failure when any failed, "Failed
// (retrying...)" (in progress) while any waits for a retry, in progress
// while any applies, and action_required otherwise.
func AggregateCheck(runs []CheckState) Check {
	c := Check{Name: AggregateName, Status: StatusCompleted}
	var failed, retrying, progress, waiting, ok []string
	for _, r := range runs {
		short := strings.TrimPrefix(r.Name, "tern/")
		switch {
		case r.Status != StatusCompleted && strings.HasPrefix(r.Title, retryingTitle):
			retrying = append(retrying, short)
		case r.Status != StatusCompleted:
			progress = append(progress, short)
		case r.Conclusion == ConclusionSuccess:
			ok = append(ok, short)
		case r.Conclusion == ConclusionFailure:
			failed = append(failed, short)
		default:
			waiting = append(waiting, short)
		}
	}
	switch {
	case len(runs) == 0:
		c.Conclusion, c.Title = ConclusionSuccess, "No changes"
	case len(failed) > 0:
		c.Conclusion, c.Title = ConclusionFailure, "Failed: "+strings.Join(failed, ", ")
	case len(retrying) > 0:
		c.Status, c.Title = StatusInProgress, retryingTitle+" "+strings.Join(retrying, ", ")
	case len(progress) > 0:
		c.Status, c.Title = StatusInProgress, "Applying: "+strings.Join(progress, ", ")
	case len(waiting) > 0:
		c.Conclusion, c.Title = ConclusionActionRequired, "Awaiting apply: "+strings.Join(waiting, ", ")
	default:
		c.Conclusion, c.Title = ConclusionSuccess, "Applied or no changes: "+strings.Join(ok, ", ")
	}
	var b strings.Builder
	b.WriteString("| check | state |\n|---|---|\n")
	for _, r := range runs {
		fmt.Fprintf(&b, "| %s | %s |\n", r.Name, oneLine(r.Title))
	}
	c.Summary = "`tern` passes only when every `tern/<database>/<environment>` check passes.\n\n" + b.String()
	return finish(c)
}
