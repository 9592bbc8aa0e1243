package actions

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/sethvargo/go-githubactions"

	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/report"
)

// SplitArgs splits the Action's args input into arguments as a POSIX shell
// would, without running one: blanks separate arguments, 'single' and
// "double" quotes keep blanks, and a backslash escapes the next character
// (inside double quotes only before " \ $ and `). Nothing is expanded.
func SplitArgs(s string) ([]string, error) {
	var (
		out     []string
		cur     strings.Builder
		inArg   bool
		quote   rune // 0, '\'' or '"'
		escaped bool
	)
	for _, r := range s {
		switch {
		case escaped:
			if quote == '"' && !strings.ContainsRune("\"\\$`", r) {
				cur.WriteRune('\\')
			}
			if !(quote == 0 && r == '\n') { // backslash-newline joins lines
				cur.WriteRune(r)
			}
			escaped = false
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\\':
			escaped, inArg = true, true
		case quote == '"':
			if r == '"' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inArg = r, true
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			if inArg {
				out = append(out, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	switch {
	case quote != 0:
		return nil, fmt.Errorf("args: unterminated %c quote", quote)
	case escaped:
		return nil, errors.New("args: a backslash ends the input")
	}
	if inArg {
		out = append(out, cur.String())
	}
	return out, nil
}

// FailOn says when the Action's plan step fails besides errors: the
// fail-on input.
type FailOn string

// Values of the fail-on input.
const (
	FailOnNever   FailOn = "never"   // default: the step passes whenever it planned
	FailOnUnsafe  FailOn = "unsafe"  // fail when a finding is unsafe or blocking
	FailOnChanges FailOn = "changes" // fail when there is anything to apply
)

// ParseFailOn parses the fail-on input; "" is never.
func ParseFailOn(s string) (FailOn, error) {
	switch f := FailOn(strings.TrimSpace(s)); f {
	case "":
		return FailOnNever, nil
	case FailOnNever, FailOnUnsafe, FailOnChanges:
		return f, nil
	}
	return "", fmt.Errorf("input fail-on: %q is not one of unsafe, changes, never", s)
}

// Fails returns why p fails the step under f, or "" when it passes.
func (f FailOn) Fails(p *plan.Plan) string {
	c := report.CountPlan(p)
	switch {
	case f == FailOnUnsafe && c.Unsafe > 0:
		return fmt.Sprintf("the plan has %d unsafe findings (fail-on: unsafe)", c.Unsafe)
	case f == FailOnUnsafe && c.Blocking > 0:
		return fmt.Sprintf("the plan has %d statements that block writes to a large table (fail-on: unsafe; applying needs --allow-blocking)", c.Blocking)
	case f == FailOnChanges && c.Statements > 0:
		return fmt.Sprintf("the plan has %d statements to apply (fail-on: changes)", c.Statements)
	}
	return ""
}

// WritePlan publishes a plan made in a workflow: outputs changes
// (true/false), statements, unsafe and blocking (counts), and the plan as
// the step summary. title names what was planned.
func WritePlan(a *githubactions.Action, title string, p *plan.Plan) {
	c := report.CountPlan(p)
	a.SetOutput("changes", strconv.FormatBool(c.Statements > 0))
	a.SetOutput("statements", strconv.Itoa(c.Statements))
	a.SetOutput("unsafe", strconv.Itoa(c.Unsafe))
	a.SetOutput("blocking", strconv.Itoa(c.Blocking))
	a.AddStepSummary(PlanSummary(title, p))
}

// PlanSummary renders a plan as the step summary, in markdown: the
// summary line, the DDL, and the findings in the words of the PR comment.
func PlanSummary(title string, p *plan.Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### tern plan: %s\n\n", cell(title))
	if !p.HasChanges() {
		b.WriteString("No changes: the live schema matches the desired schema.\n")
		return b.String()
	}
	fmt.Fprintf(&b, "**Plan:** %s\n\n", report.SummaryLine(p))
	fence := "```"
	for _, s := range p.Statements {
		for strings.Contains(s.DDL, fence) {
			fence += "`"
		}
	}
	b.WriteString(fence + "sql\n")
	for i, s := range p.Statements {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(s.DDL + ";\n")
	}
	b.WriteString(fence + "\n")
	if len(p.Findings) > 0 {
		b.WriteString("\n| # | finding | check | on | what |\n|---:|---|---|---|---|\n")
		for _, f := range p.Findings {
			on := f.Table
			if f.Column != "" {
				on += "." + f.Column
			} else if f.Index != "" {
				on += " index " + f.Index
			}
			fmt.Fprintf(&b, "| %d | %s | %s | %s | %s |\n", f.Statement+1, report.FindingWord(f.Severity), cell(f.Check), cell(on), cell(f.Message))
		}
	}
	return b.String()
}
