package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strings"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/plan"
)

// prInfo is what tern needs to know about a pull request.
type prInfo struct {
	Owner, Name    string
	Repo           string // owner/name
	Number         int
	HeadSHA        string
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
		InstallationID: inst, State: p.GetState(), Merged: p.GetMerged(), Mergeable: p.Mergeable}, nil
}

func isNotFound(err error) bool {
	var er *github.ErrorResponse
	return errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound
}

// errNoRepoConfig is returned when the head commit has no tern.yaml.
var errNoRepoConfig = errors.New("no " + config.RepoFile + " at the repository root")

// readRepoConfig reads and parses tern.yaml at the PR head. A parse error
// is returned as *repoConfigError so it can be shown on the PR.
func (b *Bot) readRepoConfig(ctx context.Context, gh *github.Client, pr *prInfo) (*config.Repo, error) {
	data, err := b.readFile(ctx, gh, pr, config.RepoFile)
	if err != nil {
		if isNotFound(err) {
			return nil, errNoRepoConfig
		}
		return nil, err
	}
	rc, err := config.ParseRepo(data)
	if err != nil {
		return nil, &repoConfigError{err}
	}
	return rc, nil
}

type repoConfigError struct{ err error }

func (e *repoConfigError) Error() string { return e.err.Error() }
func (e *repoConfigError) Unwrap() error { return e.err }

func (b *Bot) readFile(ctx context.Context, gh *github.Client, pr *prInfo, p string) ([]byte, error) {
	fc, _, _, err := gh.Repositories.GetContents(ctx, pr.Owner, pr.Name, p, &github.RepositoryContentGetOptions{Ref: pr.HeadSHA})
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", p, pr.HeadSHA, err)
	}
	if fc == nil {
		return nil, fmt.Errorf("read %s at %s: it is a directory", p, pr.HeadSHA)
	}
	s, err := fc.GetContent()
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", p, pr.HeadSHA, err)
	}
	return []byte(s), nil
}

// readSchemaFiles reads every *.sql file under dir, recursively, at the PR
// head. A missing directory gives no files (the planner refuses that).
func (b *Bot) readSchemaFiles(ctx context.Context, gh *github.Client, pr *prInfo, dir string) ([]plan.File, error) {
	var files []plan.File
	var walk func(d string, depth int) error
	walk = func(d string, depth int) error {
		if depth > 16 {
			return fmt.Errorf("read %s: directories nested too deep", d)
		}
		_, entries, _, err := gh.Repositories.GetContents(ctx, pr.Owner, pr.Name, d, &github.RepositoryContentGetOptions{Ref: pr.HeadSHA})
		if err != nil {
			if isNotFound(err) && depth == 0 {
				return nil
			}
			return fmt.Errorf("list %s at %s: %w", d, pr.HeadSHA, err)
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].GetPath() < entries[j].GetPath() })
		for _, e := range entries {
			p := e.GetPath()
			if p == "" {
				p = path.Join(d, e.GetName())
			}
			switch e.GetType() {
			case "dir":
				if err := walk(p, depth+1); err != nil {
					return err
				}
			case "file":
				if !strings.HasSuffix(p, ".sql") {
					continue
				}
				data, err := b.readFile(ctx, gh, pr, p)
				if err != nil {
					return err
				}
				files = append(files, plan.File{Path: p, Data: data})
			}
		}
		return nil
	}
	if err := walk(dir, 0); err != nil {
		return nil, err
	}
	return files, nil
}

// touchesSchema reports whether the PR changes tern.yaml or a schema file.
func (b *Bot) touchesSchema(ctx context.Context, gh *github.Client, pr *prInfo, rc *config.Repo) (bool, error) {
	opt := &github.ListOptions{PerPage: 100}
	for {
		files, resp, err := gh.PullRequests.ListFiles(ctx, pr.Owner, pr.Name, pr.Number, opt)
		if err != nil {
			return false, fmt.Errorf("list files of %s#%d: %w", pr.Repo, pr.Number, err)
		}
		for _, f := range files {
			for _, name := range []string{f.GetFilename(), f.GetPreviousFilename()} {
				if name == "" {
					continue
				}
				if name == config.RepoFile {
					return true, nil
				}
				for _, db := range rc.Databases {
					if strings.HasSuffix(name, ".sql") && strings.HasPrefix(name, db.SchemaDirClean()+"/") {
						return true, nil
					}
				}
			}
		}
		if resp.NextPage == 0 {
			return false, nil
		}
		opt.Page = resp.NextPage
	}
}

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

// approved reports whether the PR has an approving review and no
// outstanding change request (each reviewer's latest decisive review
// counts).
func (b *Bot) approved(ctx context.Context, gh *github.Client, pr *prInfo) (bool, error) {
	latest := map[string]string{}
	opt := &github.ListOptions{PerPage: 100}
	for {
		rs, resp, err := gh.PullRequests.ListReviews(ctx, pr.Owner, pr.Name, pr.Number, opt)
		if err != nil {
			return false, fmt.Errorf("list reviews of %s#%d: %w", pr.Repo, pr.Number, err)
		}
		for _, r := range rs {
			switch st := r.GetState(); st {
			case "APPROVED", "CHANGES_REQUESTED", "DISMISSED":
				latest[r.GetUser().GetLogin()] = st
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	ok := false
	for _, st := range latest {
		switch st {
		case "CHANGES_REQUESTED":
			return false, nil
		case "APPROVED":
			ok = true
		}
	}
	return ok, nil
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
func (b *Bot) reply(ctx context.Context, gh *github.Client, pr *prInfo, body string) error {
	if _, _, err := gh.Issues.CreateComment(ctx, pr.Owner, pr.Name, pr.Number, &github.IssueComment{Body: &body}); err != nil {
		return fmt.Errorf("comment on %s#%d: %w", pr.Repo, pr.Number, err)
	}
	return nil
}
