package fakegithub

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

// AddInstallation installs the App on repo ("owner/name") under
// installationID; tokens of that installation may then reach the repo.
func (s *Server) AddInstallation(repo string, installationID int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(repo)
	if r.installationID != 0 {
		old := s.installations[r.installationID]
		for i, k := range old {
			if k == repoKey(repo) {
				s.installations[r.installationID] = append(old[:i:i], old[i+1:]...)
				break
			}
		}
	}
	r.installationID = installationID
	s.installations[installationID] = append(s.installations[installationID], repoKey(repo))
}

// OpenPR opens pull request number on repo with head commit headSHA whose
// tree holds exactly files (path -> content). Every given file counts as
// changed (status "added"). Opening a number again reopens it with the new
// head and files.
func (s *Server) OpenPR(repo string, number int, headSHA string, files map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(repo)
	now := time.Now().UTC().Truncate(time.Second)
	p := &pull{
		number:  number,
		headSHA: headSHA,
		headRef: fmt.Sprintf("pr-%d", number),
		baseSHA: r.refs["main"],
		state:   "open",
		author:  "contributor",
		created: now,
		updated: now,
	}
	if old, ok := r.pulls[number]; ok {
		p.reviews, p.mergeable, p.author, p.created, p.headRepo = old.reviews, old.mergeable, old.author, old.created, old.headRepo
	}
	p.files = diffFiles(nil, files)
	r.pulls[number] = p
	r.issues[number] = true
	r.setTree(headSHA, files)
	r.refs[p.headRef] = headSHA
}

// Push moves pull request number to the new head commit headSHA whose tree
// holds exactly files (the whole tree, not only what changed). The PR's
// changed files become those added, modified or removed relative to the
// previous head. Push on a PR that was never opened panics.
func (s *Server) Push(repo string, number int, headSHA string, files map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(repo)
	p, ok := r.pulls[number]
	if !ok {
		panic(fmt.Sprintf("fakegithub: Push to %s#%d, which was never opened", repo, number))
	}
	p.files = diffFiles(r.trees[p.headSHA], files)
	p.headSHA = headSHA
	p.updated = time.Now().UTC().Truncate(time.Second)
	r.setTree(headSHA, files)
	r.refs[p.headRef] = headSHA
}

// SetPermission gives user a role on repo: admin, maintain, write, triage,
// read or none. Users never set have none.
func (s *Server) SetPermission(repo, user, role string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repoLocked(repo).perms[strings.ToLower(user)] = role
}

// AddReview records a review by user on pull request number with state
// APPROVED, CHANGES_REQUESTED or COMMENTED, against the current head.
func (s *Server) AddReview(repo string, number int, user, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(repo)
	p := s.mustPull(r, number)
	id := s.id()
	p.reviews = append(p.reviews, &github.PullRequestReview{
		ID:          github.Int64(id),
		NodeID:      github.String(fmt.Sprintf("PRR_%d", id)),
		User:        userObj(user, "User"),
		State:       github.String(state),
		CommitID:    github.String(p.headSHA),
		SubmittedAt: &github.Timestamp{Time: time.Now().UTC().Truncate(time.Second)},
		HTMLURL:     github.String(fmt.Sprintf("https://github.com/%s/pull/%d#pullrequestreview-%d", r.fullName, number, id)),
	})
}

// SetMergeable sets what the pull request's "mergeable" field says (it is
// null, "not yet computed", until set).
func (s *Server) SetMergeable(repo string, number int, mergeable bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustPull(s.repoLocked(repo), number)
	p.mergeable = github.Bool(mergeable)
}

// ClosePR closes pull request number, merged or not.
func (s *Server) ClosePR(repo string, number int, merged bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustPull(s.repoLocked(repo), number)
	p.state = "closed"
	p.merged = merged
	p.updated = time.Now().UTC().Truncate(time.Second)
}

// AddComment records a comment by user (userType "User" or "Bot") on issue
// or pull request number, as if made on github.com, and returns it for
// building webhook payloads. A number that is not a PR becomes a plain issue.
func (s *Server) AddComment(repo string, number int, user, userType, body string) *github.IssueComment {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(repo)
	r.issues[number] = true
	c := s.newCommentLocked(r, number, userObj(user, userType), body)
	return clone(c)
}

// Comments returns the comments on issue or pull request number, oldest first.
func (s *Server) Comments(repo string, number int) []*github.IssueComment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*github.IssueComment
	if r, ok := s.repos[repoKey(repo)]; ok {
		for _, c := range r.comments {
			if c.issue == number {
				out = append(out, clone(c.c))
			}
		}
	}
	return out
}

// CheckRuns returns every check run on commit sha, in creation order.
func (s *Server) CheckRuns(repo, sha string) []*github.CheckRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*github.CheckRun
	if r, ok := s.repos[repoKey(repo)]; ok {
		for _, cr := range r.checkRuns {
			if cr.GetHeadSHA() == sha {
				out = append(out, clone(cr))
			}
		}
	}
	return out
}

// LatestCheckRun returns the newest check run named name on commit sha (the
// one GitHub shows), or nil.
func (s *Server) LatestCheckRun(repo, sha, name string) *github.CheckRun {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.repos[repoKey(repo)]
	if !ok {
		return nil
	}
	for i := len(r.checkRuns) - 1; i >= 0; i-- {
		if cr := r.checkRuns[i]; cr.GetHeadSHA() == sha && cr.GetName() == name {
			return clone(cr)
		}
	}
	return nil
}

// Reactions returns the contents of the reactions on comment commentID,
// oldest first, e.g. ["eyes", "rocket"].
func (s *Server) Reactions(repo string, commentID int64) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	if r, ok := s.repos[repoKey(repo)]; ok {
		for _, re := range r.reactions[commentID] {
			out = append(out, re.content)
		}
	}
	return out
}

func (s *Server) mustPull(r *repo, number int) *pull {
	p, ok := r.pulls[number]
	if !ok {
		panic(fmt.Sprintf("fakegithub: %s#%d is not an open pull request; call OpenPR first", r.fullName, number))
	}
	return p
}

// newCommentLocked stores a new comment. s.mu must be held.
func (s *Server) newCommentLocked(r *repo, number int, user *github.User, body string) *github.IssueComment {
	id := s.id()
	now := &github.Timestamp{Time: time.Now().UTC().Truncate(time.Second)}
	c := &github.IssueComment{
		ID:                github.Int64(id),
		NodeID:            github.String(fmt.Sprintf("IC_%d", id)),
		Body:              github.String(body),
		User:              user,
		CreatedAt:         now,
		UpdatedAt:         now,
		AuthorAssociation: github.String("NONE"),
		URL:               github.String(fmt.Sprintf("%srepos/%s/issues/comments/%d", s.URL, r.fullName, id)),
		HTMLURL:           github.String(fmt.Sprintf("https://github.com/%s/pull/%d#issuecomment-%d", r.fullName, number, id)),
		IssueURL:          github.String(fmt.Sprintf("%srepos/%s/issues/%d", s.URL, r.fullName, number)),
	}
	r.comments = append(r.comments, &comment{issue: number, c: c})
	return c
}

func userObj(login, typ string) *github.User {
	if typ == "" {
		typ = "User"
	}
	return &github.User{Login: github.String(login), Type: github.String(typ), ID: github.Int64(int64(len(login))*7919 + 1)}
}

func copyFiles(files map[string]string) map[string]string {
	out := make(map[string]string, len(files))
	for k, v := range files {
		out[strings.TrimPrefix(k, "/")] = v
	}
	return out
}

// diffFiles lists the files changed between two trees, sorted by path.
func diffFiles(old, cur map[string]string) []*github.CommitFile {
	var out []*github.CommitFile
	for p, c := range cur {
		p = strings.TrimPrefix(p, "/")
		o, had := old[p]
		switch {
		case !had:
			out = append(out, commitFile(p, "added", c, lines(c), 0))
		case o != c:
			out = append(out, commitFile(p, "modified", c, lines(c), lines(o)))
		}
	}
	for p, o := range old {
		if _, ok := cur[p]; !ok {
			if _, ok := cur["/"+p]; !ok {
				out = append(out, commitFile(p, "removed", "", 0, lines(o)))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetFilename() < out[j].GetFilename() })
	return out
}

func commitFile(p, status, content string, add, del int) *github.CommitFile {
	f := &github.CommitFile{
		Filename:  github.String(p),
		Status:    github.String(status),
		Additions: github.Int(add),
		Deletions: github.Int(del),
		Changes:   github.Int(add + del),
	}
	if status != "removed" {
		f.SHA = github.String(BlobSHA(content))
	}
	return f
}

func lines(s string) int {
	if s == "" {
		return 0
	}
	n := strings.Count(s, "\n")
	if !strings.HasSuffix(s, "\n") {
		n++
	}
	return n
}

// CheckRunActions returns the action buttons check run id carries (go-github's
// CheckRun has no field for them).
func (s *Server) CheckRunActions(repo string, id int64) []*github.CheckRunAction {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.repos[repoKey(repo)]; ok {
		return clone(r.runActions[id])
	}
	return nil
}
