package demo

import (
	"fmt"
	"io"
	"regexp"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/internal/redact"
)

// printer writes the story to the terminal. Every line passes through
// redact, so no secret the demo knows of can reach the output.
type printer struct {
	w       io.Writer
	secrets []string
	err     error
}

func (p *printer) printf(format string, a ...any) {
	if p.err != nil {
		return
	}
	_, p.err = io.WriteString(p.w, p.redact(fmt.Sprintf(format, a...)))
}

// redact replaces every known secret in s.
func (p *printer) redact(s string) string {
	return redact.String(s, redact.Secrets(p.secrets))
}

// heading starts step n of the story.
func (p *printer) heading(n int, title string) {
	p.printf("== %d. %s\n\n", n, title)
}

// prView is what a person looking at the pull request has seen so far:
// it prints comments that are new or were edited since the last look, and
// the check runs as GitHub shows them.
type prView struct {
	p     *printer
	gh    ghView
	repo  string
	pr    int
	shown map[int64]string // comment id -> body last printed
}

// ghView is the part of the fake GitHub the view reads.
type ghView interface {
	Comments(repo string, number int) []*github.IssueComment
	CheckRuns(repo, sha string) []*github.CheckRun
	Reactions(repo string, commentID int64) []string
}

// news prints the comments posted or edited since the last call.
func (v *prView) news() {
	for _, c := range v.gh.Comments(v.repo, v.pr) {
		body := c.GetBody()
		prev, seen := v.shown[c.GetID()]
		switch {
		case !seen:
			v.comment(c, "commented")
		case prev != body:
			v.comment(c, "edited a comment")
		}
		v.shown[c.GetID()] = body
	}
}

// all prints every comment, oldest first.
func (v *prView) all() {
	for _, c := range v.gh.Comments(v.repo, v.pr) {
		v.comment(c, "commented")
		v.shown[c.GetID()] = c.GetBody()
	}
}

var reactionGlyph = map[string]string{"eyes": "👀", "rocket": "🚀", "confused": "😕", "+1": "👍", "-1": "👎", "heart": "❤️", "hooray": "🎉", "laugh": "😄"}

func (v *prView) comment(c *github.IssueComment, verb string) {
	who := c.GetUser().GetLogin()
	body := renderMarkdown(c.GetBody())
	reacts := ""
	for _, r := range v.gh.Reactions(v.repo, c.GetID()) {
		g := reactionGlyph[r]
		if g == "" {
			g = ":" + r + ":"
		}
		reacts += " " + g
	}
	if !strings.Contains(body, "\n") && c.GetUser().GetType() != "Bot" {
		// A command: one line, as the person typed it.
		if reacts != "" {
			reacts = "   " + strings.TrimSpace(reacts)
		}
		v.p.printf("  @%s %s:  %s%s\n\n", who, verb, body, reacts)
		return
	}
	v.p.printf("  @%s %s:\n", who, verb)
	for _, l := range strings.Split(body, "\n") {
		if l == "" {
			v.p.printf("  │\n")
			continue
		}
		v.p.printf("  │ %s\n", l)
	}
	if reacts != "" {
		v.p.printf("  reactions:%s\n", reacts)
	}
	v.p.printf("\n")
}

var (
	htmlComment = regexp.MustCompile(`(?s)<!--.*?-->`)
	htmlTag     = regexp.MustCompile(`</?(details|summary)>`)
	blankRuns   = regexp.MustCompile(`\n{3,}`)
)

// renderMarkdown turns a comment's markdown into what reads well in a
// terminal: hidden markers and <details> tags go, the rest stays as is.
func renderMarkdown(s string) string {
	s = htmlComment.ReplaceAllString(s, "")
	s = htmlTag.ReplaceAllString(s, "")
	s = blankRuns.ReplaceAllString(s, "\n\n")
	return strings.Trim(s, "\n ")
}

// checks prints the newest check run of each name on sha, as GitHub's
// checks list shows them: per-environment runs first, the `tern` run last.
func (v *prView) checks(sha string) {
	runs := latestRuns(v.gh.CheckRuns(v.repo, sha))
	v.p.printf("  Checks on %s:\n", short(sha))
	for _, r := range runs {
		v.p.printf("    %s %-22s %-16s %s\n", checkGlyph(r), r.GetName(), checkState(r), r.GetOutput().GetTitle())
	}
	v.p.printf("\n")
}

// latestRuns keeps the newest run of each name, in the order names first
// appeared, with the aggregate `tern` run last.
func latestRuns(all []*github.CheckRun) []*github.CheckRun {
	var order []string
	latest := map[string]*github.CheckRun{}
	for _, r := range all {
		if _, ok := latest[r.GetName()]; !ok {
			order = append(order, r.GetName())
		}
		latest[r.GetName()] = r
	}
	var out []*github.CheckRun
	var agg *github.CheckRun
	for _, n := range order {
		if n == "tern" {
			agg = latest[n]
			continue
		}
		out = append(out, latest[n])
	}
	if agg != nil {
		out = append(out, agg)
	}
	return out
}

// checkState is a run's conclusion when it is completed, else its status.
func checkState(r *github.CheckRun) string {
	if r.GetStatus() == "completed" {
		return r.GetConclusion()
	}
	return r.GetStatus()
}

func checkGlyph(r *github.CheckRun) string {
	switch checkState(r) {
	case "success":
		return "✅"
	case "failure", "cancelled", "timed_out":
		return "❌"
	case "action_required":
		return "🟡"
	default:
		return "⏳"
	}
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
