package demo

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/google/go-github/v60/github"
)

// The webhook payloads are built here from go-github's event types rather
// than with fakegithub.PRPayload and CommentPayload: those start from
// fixture files under the module's testdata/, which a tern
// binary run anywhere else does not have. The bot parses deliveries with
// github.ParseWebHook, so these carry every field it reads.

// prPayload is a pull_request webhook payload for action on pull request
// number of repo, whose head is headSHA.
func prPayload(action, repo string, number int, headSHA string, installationID int64) ([]byte, error) {
	r, err := repository(repo)
	if err != nil {
		return nil, err
	}
	url := fmt.Sprintf("https://github.com/%s/pull/%d", repo, number)
	ev := &github.PullRequestEvent{
		Action: github.String(action),
		Number: github.Int(number),
		PullRequest: &github.PullRequest{
			Number:  github.Int(number),
			State:   github.String("open"),
			Title:   github.String(prTitle),
			HTMLURL: github.String(url),
			User:    &github.User{Login: github.String(prAuthor), Type: github.String("User")},
			Head:    &github.PullRequestBranch{SHA: github.String(headSHA), Ref: github.String(fmt.Sprintf("pr-%d", number)), Repo: r},
			Base:    &github.PullRequestBranch{Ref: github.String("main"), Repo: r},
		},
		Repo:         r,
		Sender:       &github.User{Login: github.String(prAuthor), Type: github.String("User")},
		Installation: &github.Installation{ID: github.Int64(installationID)},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("pull_request payload: %w", err)
	}
	return b, nil
}

// commentPayload is an issue_comment "created" webhook payload for comment
// c on pull request number of repo.
func commentPayload(repo string, number int, c *github.IssueComment, installationID int64) ([]byte, error) {
	r, err := repository(repo)
	if err != nil {
		return nil, err
	}
	url := fmt.Sprintf("https://github.com/%s/pull/%d", repo, number)
	ev := &github.IssueCommentEvent{
		Action: github.String("created"),
		Issue: &github.Issue{
			Number:           github.Int(number),
			State:            github.String("open"),
			Title:            github.String(prTitle),
			HTMLURL:          github.String(url),
			PullRequestLinks: &github.PullRequestLinks{HTMLURL: github.String(url)},
		},
		Comment:      c,
		Repo:         r,
		Sender:       c.GetUser(),
		Installation: &github.Installation{ID: github.Int64(installationID)},
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("issue_comment payload: %w", err)
	}
	return b, nil
}

func repository(full string) (*github.Repository, error) {
	owner, name, ok := strings.Cut(full, "/")
	if !ok {
		return nil, fmt.Errorf("repository %q is not owner/name", full)
	}
	return &github.Repository{
		FullName: github.String(full),
		Name:     github.String(name),
		Owner:    &github.User{Login: github.String(owner), Type: github.String("Organization")},
	}, nil
}

// deliveryState reads how the bot left a stored webhook delivery: its
// state ("pending", "done" or "failed") and last error. The store has no
// accessor for one delivery, so this reads the ledger's table directly.
func deliveryState(ctx context.Context, db *sql.DB, id string) (state, lastErr string, err error) {
	err = db.QueryRowContext(ctx, "SELECT state, last_error FROM tern_deliveries WHERE id = ?", id).Scan(&state, &lastErr)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("read delivery %s: %w", id, err)
	}
	return state, lastErr, nil
}
