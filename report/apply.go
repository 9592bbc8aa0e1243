package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/ternhq/tern/store"
)

// stateWords says in words what an apply state means on the PR.
var stateWords = map[store.State]string{
	store.Pending:         "Queued",
	store.Running:         "Applying",
	store.FailedRetryable: "Failed (retrying...)",
	store.Completed:       "Applied",
	store.Failed:          "Failed",
	store.Cancelled:       "Cancelled",
}

// StateWord returns the word the PR shows for an apply state.
func StateWord(s store.State) string {
	if w, ok := stateWords[s]; ok {
		return w
	}
	return string(s)
}

// RetryLine renders "attempt 2/5, next retry ~14:05 UTC" for a retrying
// apply.
func RetryLine(a *store.Apply) string {
	// An apply whose first attempt ended waiting (not counted) is still on
	// its first.
	return fmt.Sprintf("attempt %d/%d, next retry ~%s UTC", max(a.Attempt, 1), a.MaxAttempts, a.NextAttemptAt.UTC().Format("15:04"))
}

// ApplyComment renders the comment of one apply, edited in place as the
// apply moves.
func ApplyComment(a *store.Apply, tasks []store.Task) string {
	return fit(MaxComment, func(budget int) string { return applyComment(a, tasks, budget) })
}

func applyComment(a *store.Apply, tasks []store.Task, budget int) string {
	var b strings.Builder
	b.WriteString(ApplyMarker(a.ID) + "\n")
	fmt.Fprintf(&b, "### tern apply #%d: %s → %s: %s\n\n", a.ID, code(a.Database), code(a.Environment), headline(a))
	fmt.Fprintf(&b, "Requested by @%s at %s", a.RequestedBy, code(short(a.HeadSHA)))
	if a.AllowUnsafe {
		b.WriteString(" with `--allow-unsafe`")
	}
	if a.AllowBlocking {
		b.WriteString(" with `--allow-blocking`")
	}
	b.WriteString(".\n\n")
	if p := ProgressLine(tasks); p != "" && a.State == store.Running {
		fmt.Fprintf(&b, "**Now:** %s (the server's estimate).\n\n", p)
	}
	if a.State == store.FailedRetryable || a.State == store.Failed {
		if a.LastError != "" {
			fmt.Fprintf(&b, "Last error%s: %s\n\n", classSuffix(a.ErrorClass), code(oneLine(a.LastError)))
		}
	}
	if a.State == store.FailedRetryable {
		b.WriteString("tern retries on its own. `/tern retry -e " + a.Environment + "` retries now; `/tern cancel -e " + a.Environment + "` stops it.\n\n")
	}
	if a.State == store.Failed {
		b.WriteString("Fix the cause, then `/tern retry -e " + a.Environment + "` starts a fresh apply.\n\n")
	}
	if len(tasks) > 0 {
		b.WriteString("| # | table | statement | state |\n|---|---|---|---|\n")
		for _, t := range tasks {
			st := StateWord(t.State)
			if t.Skipped {
				st = "Already live"
			}
			fmt.Fprintf(&b, "| %d | %s | %s | %s |\n", t.Seq, code(t.Table), t.Kind, st)
		}
		b.WriteString("\n")
		stmts := make([]string, len(tasks))
		for i, t := range tasks {
			stmts[i] = t.DDL
		}
		b.WriteString(sqlBlock(plural(len(stmts), "statement"), stmts, budget))
	}
	return b.String()
}

// headline is the one-line state of an apply, as in the check-run title.
func headline(a *store.Apply) string {
	switch a.State {
	case store.FailedRetryable:
		return "Failed (retrying...) " + RetryLine(a)
	case store.Completed:
		if a.Attempt > 1 {
			return fmt.Sprintf("Applied after %d attempts", a.Attempt)
		}
		return "Applied"
	case store.Failed:
		return fmt.Sprintf("Failed after %s", plural(a.Attempt, "attempt"))
	case store.Running:
		if a.Attempt > 1 {
			return fmt.Sprintf("Applying (attempt %d/%d)", a.Attempt, a.MaxAttempts)
		}
	}
	return StateWord(a.State)
}

func classSuffix(class string) string {
	if class == "" {
		return ""
	}
	return " (" + class + ")"
}

// OutcomeComment renders the new comment posted once when an apply that
// needed more than one attempt ends, so that the PR's people are notified.
func OutcomeComment(a *store.Apply) string {
	var b strings.Builder
	b.WriteString(OutcomeMarker(a.ID) + "\n")
	target := code(a.Database) + " → " + code(a.Environment)
	switch a.State {
	case store.Completed:
		fmt.Fprintf(&b, "✅ %s applied after %d attempts.\n", target, a.Attempt)
	case store.Failed:
		fmt.Fprintf(&b, "❌ %s failed for good after %s: %s\n\n", target, plural(a.Attempt, "attempt"), clip(oneLine(a.LastError), 4000))
		fmt.Fprintf(&b, "The lock is still held by this PR. Fix the cause, then `/tern retry -e %s`.\n", a.Environment)
	case store.Cancelled:
		fmt.Fprintf(&b, "⏹️ %s cancelled after %s.\n", target, plural(a.Attempt, "attempt"))
	default:
		fmt.Fprintf(&b, "%s is %s.\n", target, StateWord(a.State))
	}
	if a.RequestedBy != "" {
		fmt.Fprintf(&b, "\ncc @%s\n", a.RequestedBy)
	}
	return b.String()
}

// StatusTable renders `/tern status`: the PR's applies, newest last.
// tasks holds the tasks of running applies by apply id (may be nil), to
// show how far a long DDL has got.
func StatusTable(applies []*store.Apply, locks []store.Lock, tasks map[int64][]store.Task) string {
	var b strings.Builder
	b.WriteString("### tern status\n\n")
	if len(applies) == 0 {
		b.WriteString("No applies yet on this PR.\n")
	} else {
		b.WriteString("| apply | database | environment | state | attempts | commit | last error |\n|---|---|---|---|---|---|---|\n")
		for _, a := range applies {
			state := StateWord(a.State)
			if a.State == store.FailedRetryable {
				state += " next ~" + a.NextAttemptAt.UTC().Format("15:04") + " UTC"
			}
			if p := ProgressLine(tasks[a.ID]); p != "" && a.State == store.Running {
				state += ": " + p
			}
			fmt.Fprintf(&b, "| #%d | %s | %s | %s | %d/%d | %s | %s |\n", a.ID, a.Database, a.Environment, state,
				a.Attempt, a.MaxAttempts, code(short(a.HeadSHA)), clip(oneLine(a.LastError), 200))
		}
	}
	if len(locks) > 0 {
		b.WriteString("\nLocks held by this PR: ")
		for i, l := range locks {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(code(l.Database + "/" + l.Environment))
		}
		b.WriteString(" (released when the PR is merged or closed, or by `/tern unlock`).\n")
	}
	return clip(b.String(), MaxComment)
}

// LiveNotMerged is one environment where a closed PR's changes are live.
type LiveNotMerged struct {
	Database    string
	Environment string
	DDL         []string
	AppliedAt   time.Time
}

// UnmergedComment warns, when a PR is closed without merging, that its
// changes are live in some environments. markerID keys the marker.
func UnmergedComment(markerID int64, live []LiveNotMerged) string {
	return fit(MaxComment, func(budget int) string {
		var b strings.Builder
		b.WriteString(UnmergedMarker(markerID) + "\n")
		b.WriteString("⚠️ This PR was closed without merging, but its schema changes are live in ")
		for i, l := range live {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(code(l.Database + "/" + l.Environment))
		}
		b.WriteString(". The schema files on the base branch no longer describe those databases.\n\n")
		for _, l := range live {
			fmt.Fprintf(&b, "#### %s → %s (applied %s)\n\n", code(l.Database), code(l.Environment), l.AppliedAt.UTC().Format("2006-01-02 15:04 UTC"))
			b.WriteString(sqlBlock(plural(len(l.DDL), "statement"), l.DDL, budget))
			b.WriteString("\n")
		}
		b.WriteString("Reopen and merge this PR, or open a PR that reverts these changes. This PR's locks were released.\n")
		return b.String()
	})
}
