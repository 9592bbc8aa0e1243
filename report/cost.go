package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/store"
)

// maxCostRows bounds the cost table of one plan.
const maxCostRows = 100

// costTable renders how the target runs each statement: algorithm, lock,
// the table's estimated rows and size, and a duration band. It is empty
// when no statement has a cost. budget > 0 shows fewer rows, about one per
// 256 characters of it (at least 3).
func costTable(stmts []plan.Statement, budget int) string {
	limit := maxCostRows
	if budget > 0 {
		limit = min(limit, max(3, budget/256))
	}
	has := false
	for _, s := range stmts {
		has = has || s.Cost != nil
	}
	if !has {
		return ""
	}
	var b strings.Builder
	b.WriteString("| # | table | runs as | lock | rows (est.) | size (est.) | duration (est.) |\n|---|---|---|---|---|---|---|\n")
	for i, s := range stmts {
		if i == limit {
			fmt.Fprintf(&b, "| … | %d more | | | | | |\n", len(stmts)-i)
			break
		}
		c := s.Cost
		if c == nil {
			fmt.Fprintf(&b, "| %d | %s | ? | ? | ? | ? | |\n", i+1, code(s.Table))
			continue
		}
		runs := c.Algorithm
		if c.Source == plan.SourceRules {
			runs += " (by the rules)"
		}
		if c.Blocking {
			runs = "⛔ " + runs
		}
		rows, size := plan.Count(c.RowsEstimate), plan.Bytes(c.BytesEstimate)
		if s.Kind == plan.KindCreate {
			rows, size = "new table", ""
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s |\n", i+1, code(s.Table), runs, LockWords(c.Lock), rows, size, c.Duration)
	}
	return b.String()
}

// LockWords says what a lock lets other sessions do.
func LockWords(lock string) string {
	switch lock {
	case plan.LockNone:
		return "NONE (reads and writes go on)"
	case plan.LockShared:
		return "SHARED (writes wait)"
	case plan.LockExclusive:
		return "EXCLUSIVE (reads and writes wait)"
	}
	return lock
}

// CostNote is the one-line cost of a statement, for `tern plan`:
// "INPLACE, LOCK=NONE; ~12,000 rows, 1.5 MiB (estimates)".
func CostNote(st plan.Statement) string {
	c := st.Cost
	if c == nil {
		return ""
	}
	s := c.Algorithm
	if c.Algorithm != plan.AlgorithmInstant && c.Lock != "" {
		s += ", LOCK=" + c.Lock
	}
	if c.Source == plan.SourceRules {
		s += " by the rules"
	}
	if st.Kind == plan.KindCreate {
		return s + "; new table"
	}
	s += fmt.Sprintf("; ~%s rows, %s (estimates)", plan.Count(c.RowsEstimate), plan.Bytes(c.BytesEstimate))
	if c.Duration != "" {
		s += "; " + c.Duration
	}
	if c.Blocking {
		s += "; BLOCKS WRITES: needs --allow-blocking"
	}
	return s
}

// stageWords turns a server's stage name into words for a person.
func stageWords(stage string) string {
	s := strings.ToLower(strings.TrimSpace(stage))
	switch {
	case s == "":
		return "running"
	case strings.Contains(s, "copy to tmp table"), strings.Contains(s, "copy"), strings.Contains(s, "read pk"):
		return "copying"
	case strings.Contains(s, "enabling keys"), strings.Contains(s, "creating index"), strings.Contains(s, "merge sort"),
		strings.Contains(s, "insert"), strings.Contains(s, "build"):
		return "building indexes on"
	case strings.Contains(s, "log apply"), strings.Contains(s, "flush"), strings.Contains(s, "end"):
		return "finishing"
	}
	return s
}

// ProgressLine says how far the running task of tasks has got, from the
// progress its engine last recorded: "copying `orders` 43%, ~3 min left".
// It is empty when no running task recorded any.
func ProgressLine(tasks []store.Task) string {
	for _, t := range tasks {
		if t.State != store.Running || t.Progress.At.IsZero() {
			continue
		}
		s := fmt.Sprintf("%s %s %d%%", stageWords(t.Progress.Stage), code(t.Table), int(t.Progress.Percent))
		if t.Progress.Remaining > 0 {
			s += ", ~" + roughLeft(t.Progress.Remaining) + " left"
		}
		return s
	}
	return ""
}

func roughLeft(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()+0.5))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()+0.5))
	}
	return fmt.Sprintf("%.1f h", d.Hours())
}

// ApplyCommandFor is the /tern apply command for a plan, with the flags it
// needs: --allow-unsafe for unsafe findings, --allow-blocking for
// statements that block writes to a large table.
func ApplyCommandFor(db, env string, multiDB bool, p *plan.Plan) string {
	cmd := ApplyCommand(db, env, multiDB, len(p.Unsafe()) > 0)
	if len(p.Blocking()) > 0 {
		cmd += " --allow-blocking"
	}
	return cmd
}

// RefuseBlocking lists the statements that block writes to a large table
// and need --allow-blocking.
func RefuseBlocking(command, db, env string, p *plan.Plan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "the plan for %s has statements that block writes to a large table:\n\n", code(db+"/"+env))
	for _, f := range p.Blocking() {
		ddl := ""
		if f.Statement >= 0 && f.Statement < len(p.Statements) {
			ddl = p.Statements[f.Statement].DDL
		}
		fmt.Fprintf(&b, "- %s: %s", code(subject(f)), oneLine(f.Message))
		if ddl != "" {
			fmt.Fprintf(&b, " (%s)", code(clip(oneLine(ddl), 300)))
		}
		b.WriteString("\n")
	}
	return Refusal(command, b.String(), fmt.Sprintf("Apply at a quiet time with `%s --allow-blocking`, or change the schema so the server can run it online.",
		strings.TrimSuffix(command, " --allow-blocking")))
}
