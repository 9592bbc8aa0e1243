// Package report renders every word tern shows on a pull request: the plan
// comment, apply and outcome comments, the status table, help and refusal
// replies, and check-run titles, summaries and texts.
//
// Every function here is pure: it takes ledger or planner values and
// returns text. Deciding what to show is the bot's job; how it reads is
// this package's. No function here ever receives a secret.
package report

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// GitHub's limits.
const (
	// MaxComment is the longest issue comment GitHub accepts.
	MaxComment = 65536
	// MaxCheckOutput is the longest check-run output summary or text.
	MaxCheckOutput = 65535
	// foldLines is the DDL length, in lines, beyond which a block folds
	// into <details>.
	foldLines = 15
	// foldChars is the DDL length, in characters, beyond which a block
	// folds into <details>.
	foldChars = 1500
)

// Marker returns the hidden HTML comment that identifies a comment tern
// wrote, so that a lost reference can be found again by listing comments.
func Marker(kind string) string { return "<!-- tern:" + kind + " -->" }

// PlanMarker identifies the PR's plan comment.
func PlanMarker() string { return Marker("plan") }

// ApplyMarker identifies the comment of apply id.
func ApplyMarker(id int64) string { return Marker(fmt.Sprintf("apply:%d", id)) }

// OutcomeMarker identifies the outcome comment of apply id.
func OutcomeMarker(id int64) string { return Marker(fmt.Sprintf("outcome:%d", id)) }

// UnmergedMarker identifies the "live but not merged" comment written when
// a PR closes; id is the newest completed apply it names.
func UnmergedMarker(id int64) string { return Marker(fmt.Sprintf("unmerged:%d", id)) }

// sqlBlock renders DDL statements in a ```sql fence, folded into <details>
// when long. budget > 0 truncates the DDL to about that many characters.
func sqlBlock(summary string, stmts []string, budget int) string {
	ddl := strings.Join(stmts, ";\n\n")
	if len(stmts) > 0 {
		ddl += ";"
	}
	truncated := 0
	if budget > 0 && len(ddl) > budget {
		cut := budget
		for cut > 0 && !utf8.RuneStart(ddl[cut]) {
			cut--
		}
		truncated = len(ddl) - cut
		ddl = ddl[:cut]
	}
	ddl = strings.ReplaceAll(ddl, "```", "` ` `")
	var b strings.Builder
	fold := truncated > 0 || strings.Count(ddl, "\n") >= foldLines || len(ddl) > foldChars
	if fold {
		fmt.Fprintf(&b, "<details><summary>%s</summary>\n\n", summary)
	}
	b.WriteString("```sql\n")
	b.WriteString(ddl)
	b.WriteString("\n```\n")
	if truncated > 0 {
		fmt.Fprintf(&b, "\n_%d more characters not shown (GitHub limits comment size); run `tern plan` on a checkout for the full DDL._\n", truncated)
	}
	if fold {
		b.WriteString("\n</details>\n")
	}
	return b.String()
}

// fit renders with a shrinking per-block DDL budget until the result is at
// most limit characters, then hard-truncates as a last resort.
func fit(limit int, render func(budget int) string) string {
	s := render(0)
	for budget := 16384; len(s) > limit && budget >= 64; budget /= 2 {
		s = render(budget)
	}
	return clip(s, limit)
}

// clip cuts s to at most limit bytes on a rune boundary, saying so.
func clip(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	const note = "\n\n_(cut to fit GitHub's size limit)_"
	cut := limit - len(note)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + note
}

// code wraps s in backticks for inline code. Backquotes inside s (quoted
// identifiers) stay backquotes, as MySQL reads them: the span is fenced
// with one backtick more than the longest run in s (CommonMark).
func code(s string) string {
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	if longest == 0 {
		return "`" + s + "`"
	}
	fence := strings.Repeat("`", longest+1)
	return fence + " " + s + " " + fence
}

// oneLine collapses whitespace so that an error fits a table cell or title.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", "\\|")
}

// plural returns "1 statement" or "3 statements".
func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}
