package report

import (
	"fmt"
	"strings"

	"github.com/ternhq/tern/plan"
)

// PlanResult is the outcome of planning one (database, environment).
type PlanResult struct {
	Database    string
	Environment string
	// Plan is nil when planning failed.
	Plan *plan.Plan
	// Err says why planning failed ("db/shop/users.sql:3: ..."); empty on
	// success.
	Err string
}

// PlanComment is what the PR's single plan comment shows.
type PlanComment struct {
	// HeadSHA is the commit that was planned.
	HeadSHA string
	// ConfigErr is set when tern.yaml itself could not be read or parsed;
	// Results is then empty.
	ConfigErr string
	// Results in tern.yaml order: databases, then environments in
	// promotion order.
	Results []PlanResult
	// MultiDB makes the next commands name -d, because tern.yaml has more
	// than one database.
	MultiDB bool
	// PolicyChanges names the policy keys (apply_requirements, databases,
	// environments) the PR's tern.yaml changes: the PR is planned and gated
	// under the base branch's, and the new policy takes effect after merge.
	PolicyChanges []string
	// PlanOnly, when set, says why nothing can be applied from this PR
	// (the base branch has no usable tern.yaml).
	PlanOnly string
}

// RenderPlanComment renders the plan comment. It never exceeds MaxComment.
func RenderPlanComment(c PlanComment) string {
	return fit(MaxComment, func(budget int) string { return renderPlanComment(c, budget) })
}

func renderPlanComment(c PlanComment, budget int) string {
	var b strings.Builder
	b.WriteString(PlanMarker() + "\n")
	fmt.Fprintf(&b, "### tern plan for %s\n\n", code(short(c.HeadSHA)))
	if c.ConfigErr != "" {
		fmt.Fprintf(&b, "**Plan failed**: %s\n\nFix `tern.yaml` and push; tern plans again on the next commit, or comment `/tern plan`.\n", oneLine(c.ConfigErr))
		return b.String()
	}
	if len(c.PolicyChanges) > 0 {
		fmt.Fprintf(&b, "> **Policy changes take effect after merge.** This pull request changes %s in `tern.yaml`; it is planned and gated under the `tern.yaml` of its base branch.\n\n", strings.Join(c.PolicyChanges, ", "))
	}
	if c.PlanOnly != "" {
		fmt.Fprintf(&b, "> %s\n\n", planOnlyNote(c.PlanOnly))
	}
	if len(c.Results) == 0 {
		b.WriteString("Nothing to plan: no database or environment matched.\n")
		return b.String()
	}
	next := NextCommands(c.Results, c.MultiDB)
	for _, r := range c.Results {
		fmt.Fprintf(&b, "#### %s → %s\n\n", code(r.Database), code(r.Environment))
		switch {
		case r.Err != "":
			fmt.Fprintf(&b, "**Plan failed**:\n\n```\n%s\n```\n\nFix the schema files and push, or comment `/tern plan`.\n\n", strings.ReplaceAll(r.Err, "```", "` ` `"))
			continue
		case r.Plan == nil || !r.Plan.HasChanges():
			b.WriteString("No changes: the live schema already matches.\n\n")
			continue
		}
		stmts := make([]string, len(r.Plan.Statements))
		for i, s := range r.Plan.Statements {
			stmts[i] = s.DDL
		}
		b.WriteString("**Plan:** " + SummaryLine(r.Plan) + "\n\n")
		b.WriteString(sqlBlock(plural(len(stmts), "statement"), stmts, budget))
		b.WriteString("\n")
		if t := costTable(r.Plan.Statements, budget); t != "" {
			b.WriteString(t + "\n")
		}
		if len(r.Plan.Findings) > 0 {
			b.WriteString(renderFindings(r.Plan.Findings))
			b.WriteString("\n")
		}
		if n, ok := next[r.Database+"\x00"+r.Environment]; ok && c.PlanOnly == "" {
			b.WriteString(n + "\n\n")
		}
	}
	return b.String()
}

// renderFindings renders lint findings as a list, errors first.
func renderFindings(fs []plan.Finding) string {
	var b strings.Builder
	for _, sev := range []string{plan.SeverityError, plan.SeverityBlocking, plan.SeverityWarning} {
		for _, f := range fs {
			if f.Severity != sev {
				continue
			}
			label := "⚠️ " + FindingWord(sev)
			if sev == plan.SeverityError || sev == plan.SeverityBlocking {
				label = "⛔ " + FindingWord(sev)
			}
			fmt.Fprintf(&b, "- %s: %s: %s%s\n", label, code(subject(f)), oneLine(f.Message), checkSuffix(f))
		}
	}
	return b.String()
}

// checkSuffix names the lint check of f, as tern.yaml's lint.checks
// names it: " (`drop-column`)", or "" for a finding stored without one.
func checkSuffix(f plan.Finding) string {
	if f.Check == "" {
		return ""
	}
	return " (" + code(f.Check) + ")"
}

func subject(f plan.Finding) string {
	switch {
	case f.Column != "":
		return f.Table + "." + f.Column
	case f.Index != "":
		return f.Table + " index " + f.Index
	}
	return f.Table
}

// NextCommands returns, per "database\x00environment" with changes, the
// line telling the reader what to type next.
func NextCommands(results []PlanResult, multiDB bool) map[string]string {
	out := map[string]string{}
	// The first environment of each database with changes is next; later
	// ones wait for the one before them.
	prev := map[string]string{}
	ready := map[string]bool{}
	for _, r := range results {
		key := r.Database + "\x00" + r.Environment
		p := prev[r.Database]
		prev[r.Database] = r.Environment
		if r.Err != "" || r.Plan == nil || !r.Plan.HasChanges() {
			continue
		}
		cmd := ApplyCommandFor(r.Database, r.Environment, multiDB, r.Plan)
		if !ready[r.Database] {
			ready[r.Database] = true
			line := "**Next:** comment " + code(cmd) + " to apply."
			if len(r.Plan.Unsafe()) > 0 {
				line += " These changes are unsafe (see above): `--allow-unsafe` says you mean it."
			}
			if len(r.Plan.Blocking()) > 0 {
				line += " Some statements block writes to a large table (see above): `--allow-blocking` says you accept that."
			}
			out[key] = line
			continue
		}
		out[key] = fmt.Sprintf("**Then**, after %s is applied: %s", code(p), code(cmd))
	}
	return out
}

// ApplyCommand renders the /tern apply command for a database and
// environment.
func ApplyCommand(db, env string, multiDB, unsafe bool) string {
	cmd := "/tern apply -e " + env
	if multiDB {
		cmd += " -d " + db
	}
	if unsafe {
		cmd += " --allow-unsafe"
	}
	return cmd
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// PlanCounts counts a plan's statements by kind and its findings by
// severity: what the summary line says, and what `tern plan --json` and
// the Action's outputs report.
type PlanCounts struct {
	Statements int `json:"statements"`
	Create     int `json:"create"`
	Alter      int `json:"alter"`
	Drop       int `json:"drop"`
	Unsafe     int `json:"unsafe"`
	Warnings   int `json:"warnings"`
	// Blocking counts the statements that block writes to a large table
	// (applying needs --allow-blocking).
	Blocking int `json:"blocking"`
}

// CountPlan counts p's statements and findings.
func CountPlan(p *plan.Plan) PlanCounts {
	var c PlanCounts
	if p == nil {
		return c
	}
	c.Statements = len(p.Statements)
	for _, s := range p.Statements {
		switch s.Kind {
		case plan.KindCreate:
			c.Create++
		case plan.KindAlter:
			c.Alter++
		case plan.KindDrop:
			c.Drop++
		}
	}
	for _, f := range p.Findings {
		switch f.Severity {
		case plan.SeverityError:
			c.Unsafe++
		case plan.SeverityBlocking:
			c.Blocking++
		default:
			c.Warnings++
		}
	}
	return c
}

// SummaryLine is the one-line summary of a plan, the same in the plan
// comment and the CLI: "2 statements (1 create, 1 alter, 0 drop), 1
// unsafe", with ", 3 warnings" when there are any.
func SummaryLine(p *plan.Plan) string {
	c := CountPlan(p)
	s := fmt.Sprintf("%s (%d create, %d alter, %d drop), %d unsafe", plural(c.Statements, "statement"), c.Create, c.Alter, c.Drop, c.Unsafe)
	if c.Warnings > 0 {
		s += ", " + plural(c.Warnings, "warning")
	}
	if c.Blocking > 0 {
		s += fmt.Sprintf(", %d blocking", c.Blocking)
	}
	return s
}

// FindingWord is the word a finding of severity sev is shown with,
// everywhere tern shows one: "unsafe" (applying needs --allow-unsafe) or
// "warning", or "blocking" (applying needs --allow-blocking).
func FindingWord(sev string) string {
	switch sev {
	case plan.SeverityError:
		return "unsafe"
	case plan.SeverityBlocking:
		return "blocking"
	}
	return "warning"
}
