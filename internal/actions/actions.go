// Package actions writes what tern does inside GitHub Actions: masks for
// secrets, step outputs, the step summary and error annotations, through
// github.com/sethvargo/go-githubactions.
package actions

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sethvargo/go-githubactions"

	"github.com/ternhq/tern/recovery"
	"github.com/ternhq/tern/store"
)

// Enabled reports whether the process runs inside GitHub Actions, given a
// getenv such as os.Getenv.
func Enabled(getenv func(string) string) bool { return getenv("GITHUB_ACTIONS") == "true" }

// Mask tells the runner to hide every secret in the log. A multi-line
// secret (a PEM key) is masked whole and line by line, since the runner
// matches masks within single lines. Call it before anything else is
// printed.
func Mask(a *githubactions.Action, secrets []string) {
	for _, s := range secrets {
		if strings.TrimSpace(s) == "" {
			continue
		}
		a.AddMask(s)
		if strings.ContainsAny(s, "\r\n") {
			for _, line := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }) {
				if line = strings.TrimSpace(line); len(line) >= 4 {
					a.AddMask(line)
				}
			}
		}
	}
}

// WritePass publishes a recovery pass: outputs recovered, retrying, failed
// and rescued; a step summary table of the applies it touched; and an
// error annotation for each apply that failed for good.
func WritePass(a *githubactions.Action, res *recovery.Result) {
	a.SetOutput("recovered", strconv.Itoa(res.Recovered))
	a.SetOutput("retrying", strconv.Itoa(res.Retrying))
	a.SetOutput("failed", strconv.Itoa(res.Failed))
	a.SetOutput("rescued", strconv.Itoa(res.Rescued))
	a.AddStepSummary(Summary(res))
	for _, l := range res.Lines {
		if l.Apply.State != store.Failed {
			continue
		}
		x := l.Apply
		a.WithFieldsMap(map[string]string{
			"title": fmt.Sprintf("tern: %s#%d %s/%s failed", x.Repository, x.PR, x.Database, x.Environment),
		}).Errorf("%s", l.String())
	}
}

// maxCell bounds an error cell of the summary table.
const maxCell = 300

// Summary renders the step summary in markdown: the summary line, then a
// table of the touched applies (apply, PR, environment, attempt, outcome,
// error).
func Summary(res *recovery.Result) string {
	var b strings.Builder
	b.WriteString("### tern recovery pass\n\n")
	fmt.Fprintf(&b, "**%d** recovered · **%d** retrying · **%d** failed · **%d** rescued", res.Recovered, res.Retrying, res.Failed, res.Rescued)
	if res.ReportErrors > 0 {
		fmt.Fprintf(&b, " · %d not reported to GitHub (retried next pass)", res.ReportErrors)
	}
	b.WriteString("\n\n")
	if len(res.Lines) == 0 {
		b.WriteString("No applies needed attention.\n")
		return b.String()
	}
	b.WriteString("| Apply | PR | Environment | Attempt | Outcome | Error |\n")
	b.WriteString("|---:|---|---|---:|---|---|\n")
	for _, l := range res.Lines {
		x := l.Apply
		errText := x.LastError
		if x.State == store.Completed || x.State == store.Cancelled {
			errText = ""
		}
		if x.ErrorClass != "" && errText != "" {
			errText = x.ErrorClass + ": " + errText
		}
		if l.Err != "" {
			errText = strings.TrimSpace(errText + " (pass: " + l.Err + ")")
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %d/%d | %s | %s |\n",
			x.ID, cell(fmt.Sprintf("%s#%d", x.Repository, x.PR)), cell(x.Database+"/"+x.Environment),
			x.Attempt, x.MaxAttempts, cell(outcome(l)), cell(errText))
	}
	return b.String()
}

// outcome is the short outcome word of the table.
func outcome(l recovery.Line) string {
	x := l.Apply
	var s string
	switch x.State {
	case store.Completed:
		s = "✅ applied"
	case store.FailedRetryable:
		s = "🔁 retrying"
		if !x.NextAttemptAt.IsZero() {
			s += " ~" + x.NextAttemptAt.UTC().Format("15:04 UTC")
		}
	case store.Failed:
		s = "❌ failed"
	case store.Cancelled:
		s = "⏹️ cancelled"
	default:
		s = string(x.State)
	}
	for _, a := range l.Actions {
		if a == recovery.ActionRescued {
			return s + " (rescued)"
		}
	}
	return s
}

// cell makes text safe inside a markdown table cell: one line, pipes and
// HTML escaped, bounded in length.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > maxCell {
		s = string(r[:maxCell]) + "…"
	}
	s = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "|", "\\|", "`", "\\`").Replace(s)
	return s
}
