package bot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/store"
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

// findComment returns the id of the bot's comment carrying marker, or 0.
func (b *Bot) findComment(ctx context.Context, gh *github.Client, repo string, pr int, marker string) (int64, error) {
	owner, name := splitRepo(repo)
	opt := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for {
		cs, resp, err := gh.Issues.ListComments(ctx, owner, name, pr, opt)
		if err != nil {
			return 0, fmt.Errorf("list comments of %s#%d: %w", repo, pr, err)
		}
		for _, c := range cs {
			if c.GetUser().GetType() == "Bot" && strings.Contains(c.GetBody(), marker) {
				return c.GetID(), nil
			}
		}
		if resp.NextPage == 0 {
			return 0, nil
		}
		opt.Page = resp.NextPage
	}
}

// upsertComment edits the comment stored under key, or creates it, once
// across processes (see createOnce), and then brings it to body.
func (b *Bot) upsertComment(ctx context.Context, gh *github.Client, repo string, pr int, key, marker, body string) error {
	owner, name := splitRepo(repo)
	sum := sha256.Sum256([]byte(body))
	hash := hex.EncodeToString(sum[:8])
	id, meta, err := b.st.Ref(ctx, repo, key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("read ref %s: %w", key, err)
	}
	if err != nil || id == 0 {
		// Not created yet, or being created by another reporter.
		id, wrote, err := b.createOnce(ctx, gh, repo, pr, key, marker, body, hash)
		if err != nil || wrote {
			return err
		}
		meta = ""
		if _, m, err := b.st.Ref(ctx, repo, key); err == nil {
			meta = m
		}
		if meta == hash {
			return nil
		}
		return b.editComment(ctx, gh, repo, pr, key, id, hash, body)
	}
	if meta == hash {
		return nil // GitHub already shows this text
	}
	err = b.editComment(ctx, gh, repo, pr, key, id, hash, body)
	if !isNotFound(err) {
		return err
	}
	// Deleted on GitHub: post it again.
	c, _, err := gh.Issues.CreateComment(ctx, owner, name, pr, &github.IssueComment{Body: &body})
	if err != nil {
		return fmt.Errorf("comment on %s#%d: %w", repo, pr, err)
	}
	return b.setRef(ctx, repo, key, c.GetID(), hash)
}

// editComment sets comment id's text to body and records its hash.
func (b *Bot) editComment(ctx context.Context, gh *github.Client, repo string, pr int, key string, id int64, hash, body string) error {
	owner, name := splitRepo(repo)
	if _, _, err := gh.Issues.EditComment(ctx, owner, name, id, &github.IssueComment{Body: &body}); err != nil {
		return fmt.Errorf("edit comment %d on %s#%d: %w", id, repo, pr, err)
	}
	return b.setRef(ctx, repo, key, id, hash)
}

// refClaimStale is how long a claim to post a comment may stay unfinished
// before another reporter takes it over (its holder died). It is well
// beyond the GitHub client's timeout of the two calls a post makes.
const refClaimStale = 2 * time.Minute

// refClaimWait bounds how long a reporter waits for another one (another
// process) that is posting the same comment.
const refClaimWait = 20 * time.Second

// postOnce creates the comment stored under key unless it exists already,
// exactly once across processes.
func (b *Bot) postOnce(ctx context.Context, gh *github.Client, repo string, pr int, key, marker, body string) error {
	_, _, err := b.createOnce(ctx, gh, repo, pr, key, marker, body, "")
	return err
}

// createOnce makes sure the comment stored under key exists, creating it
// with body exactly once across processes: a reporter first claims the key
// in the ledger and posts only when it won; one that lost waits for the
// winner's reference. A post that fails drops the claim, so a later report
// retries. It returns the comment's id, and wrote=true when this caller
// posted body (the reference then carries meta).
func (b *Bot) createOnce(ctx context.Context, gh *github.Client, repo string, pr int, key, marker, body, meta string) (id int64, wrote bool, err error) {
	deadline := time.Now().Add(refClaimWait)
	var claim *store.RefClaim
	for claim == nil {
		id, _, err := b.st.Ref(ctx, repo, key)
		switch {
		case err == nil && id != 0:
			return id, false, nil
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return 0, false, fmt.Errorf("read ref %s: %w", key, err)
		}
		if claim, err = b.st.ClaimRef(ctx, repo, key, refClaimStale); err != nil {
			return 0, false, err
		}
		if claim != nil {
			break
		}
		if time.Now().After(deadline) {
			return 0, false, fmt.Errorf("comment %s on %s#%d: another reporter is still posting it", key, repo, pr)
		}
		select {
		case <-ctx.Done():
			return 0, false, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	id, wrote, err = b.postClaimed(ctx, gh, repo, pr, marker, body)
	if err != nil {
		// Let a later report try again; the ledger still says it is due.
		if rerr := b.st.ReleaseRefClaim(context.WithoutCancel(ctx), claim); rerr != nil {
			b.log.Warn("release comment claim", "key", key, "err", rerr)
		}
		return 0, false, err
	}
	if !wrote {
		meta = ""
	}
	return id, wrote, b.setRef(ctx, repo, key, id, meta)
}

// postClaimed posts the comment a claim was won for, unless one with its
// marker is on the PR already (posted by a reporter that died before it
// stored the reference), and returns its id and whether it posted body.
func (b *Bot) postClaimed(ctx context.Context, gh *github.Client, repo string, pr int, marker, body string) (int64, bool, error) {
	id, err := b.findComment(ctx, gh, repo, pr, marker)
	if err != nil || id != 0 {
		return id, false, err
	}
	owner, name := splitRepo(repo)
	c, _, err := gh.Issues.CreateComment(ctx, owner, name, pr, &github.IssueComment{Body: &body})
	if err != nil {
		return 0, false, fmt.Errorf("comment on %s#%d: %w", repo, pr, err)
	}
	return c.GetID(), true, nil
}

func (b *Bot) setRef(ctx context.Context, repo, key string, id int64, meta string) error {
	if err := b.st.SetRef(ctx, repo, key, id, meta); err != nil {
		return fmt.Errorf("store ref %s: %w", key, err)
	}
	return nil
}
