package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/config"
)

// prInfo is what tern needs to know about a pull request.
type prInfo struct {
	Owner, Name    string
	Repo           string // owner/name
	Number         int
	HeadSHA        string
	BaseSHA        string // the base commit GitHub reports; policy is read there
	BaseRef        string // the base branch
	HeadRepo       string // owner/name the head lives in (a fork's, for a fork PR)
	InstallationID int64
	State          string // open, closed
	Merged         bool
	Mergeable      *bool
}

func splitRepo(full string) (owner, name string) {
	owner, name, _ = strings.Cut(full, "/")
	return owner, name
}

// getPR reads a pull request.
func (b *Bot) getPR(ctx context.Context, gh *github.Client, repo string, n int, inst int64) (*prInfo, error) {
	owner, name := splitRepo(repo)
	p, _, err := gh.PullRequests.Get(ctx, owner, name, n)
	if err != nil {
		return nil, fmt.Errorf("get pull request %s#%d: %w", repo, n, err)
	}
	return &prInfo{Owner: owner, Name: name, Repo: repo, Number: n, HeadSHA: p.GetHead().GetSHA(),
		BaseSHA: p.GetBase().GetSHA(), BaseRef: p.GetBase().GetRef(), HeadRepo: p.GetHead().GetRepo().GetFullName(),
		InstallationID: inst, State: p.GetState(), Merged: p.GetMerged(), Mergeable: p.Mergeable}, nil
}

func isNotFound(err error) bool {
	var er *github.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound
}

// errNoRepoConfig is returned when neither the base nor the head commit
// has a tern.yaml.
var errNoRepoConfig = errors.New("no " + config.RepoFile + " at the repository root")

type repoConfigError struct{ err error }

func (e *repoConfigError) Error() string { return e.err.Error() }
func (e *repoConfigError) Unwrap() error { return e.err }

// permission returns the user's role on the repository: the
// collaborator-permission API's role_name, falling back to permission
// where role_name is absent or names a custom role (whose base role
// permission reports).
func (b *Bot) permission(ctx context.Context, gh *github.Client, pr *prInfo, user string) (string, error) {
	req, err := gh.NewRequest(http.MethodGet, fmt.Sprintf("repos/%s/%s/collaborators/%s/permission", pr.Owner, pr.Name, user), nil)
	if err != nil {
		return "", err
	}
	var out struct {
		Permission string `json:"permission"`
		RoleName   string `json:"role_name"`
	}
	if _, err := gh.Do(ctx, req, &out); err != nil {
		if isNotFound(err) {
			return "none", nil
		}
		return "", fmt.Errorf("permission of %s on %s: %w", user, pr.Repo, err)
	}
	switch out.RoleName {
	case "admin", "maintain", "write", "triage", "read":
		return out.RoleName, nil
	}
	// role_name is absent (older GitHub Enterprise Server) or names a
	// custom repository role: permission is the base role it grants.
	return out.Permission, nil
}

// canWrite reports whether a role may change schemas.
func canWrite(role string) bool {
	switch role {
	case "admin", "maintain", "write":
		return true
	}
	return false
}

// approved reports whether the PR is approved, and when it is not, says
// why in words for the refusal. Each reviewer's latest review that decides
// (APPROVED, CHANGES_REQUESTED or DISMISSED; comments do not) counts, and
// only for reviewers with write access or more: an approval counts when
// it was given on the head commit, and a change request blocks whatever
// commit it was given on, as on GitHub, until its author approves or it
// is dismissed.
func (b *Bot) approved(ctx context.Context, gh *github.Client, pr *prInfo) (bool, string, error) {
	type review struct{ state, commit string }
	latest := map[string]review{}
	opt := &github.ListOptions{PerPage: 100}
	for {
		rs, resp, err := gh.PullRequests.ListReviews(ctx, pr.Owner, pr.Name, pr.Number, opt)
		if err != nil {
			return false, "", fmt.Errorf("list reviews of %s#%d: %w", pr.Repo, pr.Number, err)
		}
		for _, r := range rs {
			switch st := r.GetState(); st {
			case "APPROVED", "CHANGES_REQUESTED", "DISMISSED":
				latest[r.GetUser().GetLogin()] = review{st, r.GetCommitID()}
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	logins := make([]string, 0, len(latest))
	for l := range latest {
		logins = append(logins, l)
	}
	sort.Strings(logins)
	var approvers, blockers, discounted []string
	for _, login := range logins {
		r := latest[login]
		if r.state == "DISMISSED" {
			continue
		}
		role, err := b.permission(ctx, gh, pr, login)
		if err != nil {
			return false, "", err
		}
		switch {
		case !canWrite(role):
			if r.state == "APPROVED" {
				discounted = append(discounted, fmt.Sprintf("@%s's approval does not count (%s access; write or more is needed)", login, role))
			}
		case r.state == "CHANGES_REQUESTED":
			blockers = append(blockers, "@"+login)
		case r.commit != pr.HeadSHA:
			discounted = append(discounted, fmt.Sprintf("@%s approved an earlier commit `%s`", login, short(r.commit)))
		default:
			approvers = append(approvers, "@"+login)
		}
	}
	if len(blockers) > 0 {
		return false, fmt.Sprintf("%s requested changes.", strings.Join(blockers, ", ")), nil
	}
	if len(approvers) > 0 {
		return true, "", nil
	}
	detail := fmt.Sprintf("no approving review of the head commit `%s` by someone with write access.", short(pr.HeadSHA))
	if len(discounted) > 0 {
		detail += " (" + strings.Join(discounted, "; ") + ".)"
	}
	return false, detail, nil
}

// react adds a reaction to a comment; failures are logged, not fatal.
func (b *Bot) react(ctx context.Context, gh *github.Client, pr *prInfo, commentID int64, content string) {
	if commentID == 0 {
		return
	}
	if _, _, err := gh.Reactions.CreateIssueCommentReaction(ctx, pr.Owner, pr.Name, commentID, content); err != nil {
		b.log.Warn("add reaction", "repo", pr.Repo, "comment", commentID, "reaction", content, "err", err)
	}
}

// reply posts a new comment on the PR.
// It carries a hidden marker of its own, so a post whose answer was lost
// is found instead of posted twice.
func (b *Bot) reply(ctx context.Context, gh *github.Client, pr *prInfo, body string) error {
	marker := replyMarker(createToken())
	_, err := b.createComment(ctx, gh, pr.Repo, pr.Number, marker, body+"\n\n"+marker)
	return err
}
