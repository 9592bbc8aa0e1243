package bot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-github/v60/github"
)

// Every create tern makes on GitHub (a check run, a comment) carries a
// token of its own: a check run's external_id, a comment's hidden marker.
// A create whose answer was lost (a 5xx from a proxy, a dropped
// connection) may have been performed, so it is not sent again blindly:
// the guard looks for the token first and adopts what it finds.

// answerLost reports whether err leaves it unknown if GitHub performed the
// request: no answer, or a 5xx. A 4xx (a rate limit included) performed
// nothing.
func answerLost(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var rl *github.RateLimitError
	var abuse *github.AbuseRateLimitError
	if errors.As(err, &rl) || errors.As(err, &abuse) {
		return false
	}
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode >= 500
	}
	return true
}

// createToken returns a fresh token for one create.
func createToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// createCheckRun creates a check run, once even when the answer is lost.
func (b *Bot) createCheckRun(ctx context.Context, gh *github.Client, owner, name string, opts github.CreateCheckRunOptions) (*github.CheckRun, error) {
	token := "tern-" + createToken()
	opts.ExternalID = &token
	run, _, err := gh.Checks.CreateCheckRun(ctx, owner, name, opts)
	if err == nil || !answerLost(err) {
		return run, err
	}
	list := &github.ListCheckRunsOptions{CheckName: &opts.Name, Filter: github.String("all"), ListOptions: github.ListOptions{PerPage: 100}}
	res, _, lerr := gh.Checks.ListCheckRunsForRef(ctx, owner, name, opts.HeadSHA, list)
	if lerr != nil {
		return nil, fmt.Errorf("%w (and listing check runs to find it: %v)", err, lerr)
	}
	for _, r := range res.CheckRuns {
		if r.GetExternalID() == token {
			b.log.Info("check run created though its answer was lost; adopted", "check", opts.Name, "id", r.GetID())
			return r, nil
		}
	}
	return nil, err
}

// replyMarker is the hidden token of a one-off reply.
func replyMarker(token string) string { return "<!-- tern:reply:" + token + " -->" }

// createComment posts body on the PR, once even when the answer is lost:
// marker (a hidden comment in body that only this comment carries) is
// looked for among the App's comments before giving up.
func (b *Bot) createComment(ctx context.Context, gh *github.Client, repo string, pr int, marker, body string) (int64, error) {
	owner, name := splitRepo(repo)
	c, _, err := gh.Issues.CreateComment(ctx, owner, name, pr, &github.IssueComment{Body: &body})
	if err == nil {
		return c.GetID(), nil
	}
	err = fmt.Errorf("comment on %s#%d: %w", repo, pr, err)
	if !answerLost(err) || !strings.Contains(body, marker) {
		return 0, err
	}
	id, ferr := b.findComment(ctx, gh, repo, pr, marker)
	if ferr != nil || id == 0 {
		return 0, err
	}
	b.log.Info("comment posted though its answer was lost; adopted", "repo", repo, "pr", pr, "comment", id)
	return id, nil
}
