package bot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/report"
	"github.com/ternhq/tern/store"
)

// Keys of the GitHub references kept in the ledger.
func checkKey(sha, name string) string         { return "check/" + sha + "/" + name }
func checkListKey(sha string) string           { return "checks/" + sha }
func planCommentKey(pr int) string             { return fmt.Sprintf("pr/%d/plan", pr) }
func applyCommentKey(id int64) string          { return fmt.Sprintf("apply/%d/comment", id) }
func outcomeCommentKey(id int64) string        { return fmt.Sprintf("apply/%d/outcome", id) }
func unmergedKey(pr int, applyID int64) string { return fmt.Sprintf("pr/%d/unmerged/%d", pr, applyID) }
func shaPRKey(sha string) string               { return "sha/" + sha }

// runMeta is what the ledger remembers of the newest run of a check name
// on a commit: enough to update it in place, leave it alone when nothing
// changed, never reopen it once completed, and compute the aggregate.
type runMeta struct {
	Status, Conclusion, Hash, Title string
}

func (m runMeta) String() string {
	t := m.Title
	if len(t) > 120 {
		t = t[:120]
	}
	return strings.Join([]string{m.Status, m.Conclusion, m.Hash, t}, "|")
}

func parseRunMeta(s string) runMeta {
	p := strings.SplitN(s, "|", 4)
	for len(p) < 4 {
		p = append(p, "")
	}
	return runMeta{Status: p[0], Conclusion: p[1], Hash: p[2], Title: p[3]}
}

func checkHash(c report.Check) string {
	h := sha256.New()
	for _, s := range []string{c.Status, c.Conclusion, c.Title, c.Summary, c.Text, fmt.Sprint(c.Retry)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// currentRun returns the stored state of the newest run of name on sha.
func (b *Bot) currentRun(ctx context.Context, repo, sha, name string) (int64, runMeta, bool, error) {
	id, meta, err := b.st.Ref(ctx, repo, checkKey(sha, name))
	if errors.Is(err, store.ErrNotFound) {
		return 0, runMeta{}, false, nil
	}
	if err != nil {
		return 0, runMeta{}, false, fmt.Errorf("read check ref: %w", err)
	}
	return id, parseRunMeta(meta), true, nil
}

// setCheck brings the run of c.Name on sha to c: nothing when it already
// shows c, an update in place while it is in progress, and a new run of the
// same name once it is completed (a completed run is never reopened).
func (b *Bot) setCheck(ctx context.Context, gh *github.Client, repo, sha string, c report.Check) error {
	owner, name := splitRepo(repo)
	id, cur, found, err := b.currentRun(ctx, repo, sha, c.Name)
	if err != nil {
		return err
	}
	hash := checkHash(c)
	if found && cur.Hash == hash {
		return nil
	}
	output := &github.CheckRunOutput{Title: github.String(c.Title), Summary: github.String(c.Summary)}
	if c.Text != "" {
		output.Text = github.String(c.Text)
	}
	var actions []*github.CheckRunAction
	if c.Retry && c.Completed() {
		actions = []*github.CheckRunAction{{Label: "Retry now", Description: "Start a fresh apply", Identifier: report.RetryAction}}
	}
	var conclusion *string
	if c.Completed() {
		conclusion = github.String(c.Conclusion)
	}
	var details *string
	if u := b.detailsURL(ctx, repo, sha, c.Name); u != "" {
		details = &u
	}
	now := github.Timestamp{Time: b.now()}
	var completedAt *github.Timestamp
	if c.Completed() {
		completedAt = &now
	}
	if found && id != 0 && cur.Status != report.StatusCompleted {
		_, _, err := gh.Checks.UpdateCheckRun(ctx, owner, name, id, github.UpdateCheckRunOptions{
			Name: c.Name, Status: github.String(c.Status), Conclusion: conclusion, CompletedAt: completedAt,
			Output: output, Actions: actions, DetailsURL: details,
		})
		if err == nil {
			return b.setRef(ctx, repo, checkKey(sha, c.Name), id, runMeta{c.Status, c.Conclusion, hash, c.Title}.String())
		}
		if !isNotFound(err) {
			return fmt.Errorf("update check run %s on %s: %w", c.Name, repo, err)
		}
	}
	run, err := b.createCheckRun(ctx, gh, owner, name, github.CreateCheckRunOptions{
		Name: c.Name, HeadSHA: sha, Status: github.String(c.Status), Conclusion: conclusion,
		StartedAt: &now, CompletedAt: completedAt, Output: output, Actions: actions, DetailsURL: details,
	})
	if err != nil {
		return fmt.Errorf("create check run %s on %s: %w", c.Name, repo, err)
	}
	return b.setRef(ctx, repo, checkKey(sha, c.Name), run.GetID(), runMeta{c.Status, c.Conclusion, hash, c.Title}.String())
}

// checkNames returns the per-environment check names known for sha, in
// tern.yaml order.
func (b *Bot) checkNames(ctx context.Context, repo, sha string) ([]string, error) {
	_, meta, err := b.st.Ref(ctx, repo, checkListKey(sha))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read check list: %w", err)
	}
	if meta == "" {
		return nil, nil
	}
	return strings.Split(meta, ","), nil
}

// updateAggregate recomputes the `tern` check of sha from the newest run
// of every per-environment check.
func (b *Bot) updateAggregate(ctx context.Context, gh *github.Client, repo, sha string, extra ...string) error {
	names, err := b.checkNames(ctx, repo, sha)
	if err != nil {
		return err
	}
	for _, n := range extra {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	var runs []report.CheckState
	for _, n := range names {
		_, m, found, err := b.currentRun(ctx, repo, sha, n)
		if err != nil {
			return err
		}
		if !found {
			// Not reported yet: it blocks like a run awaiting action.
			m = runMeta{Status: report.StatusCompleted, Conclusion: report.ConclusionActionRequired, Title: "Not planned yet"}
		}
		runs = append(runs, report.CheckState{Name: n, Status: m.Status, Conclusion: m.Conclusion, Title: m.Title})
	}
	return b.setCheck(ctx, gh, repo, sha, report.AggregateCheck(runs))
}
