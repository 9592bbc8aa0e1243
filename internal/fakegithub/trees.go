package fakegithub

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/google/go-github/v60/github"
)

// GitHub's documented limits on reading a repository, which the fake
// enforces so that tests see them.
const (
	// MaxContentsEntries is the most entries the contents API lists for one
	// directory; the rest are left out without a word.
	MaxContentsEntries = 1000
	// MaxContentsFileSize is the largest file the contents API returns with
	// its content; a larger one comes with encoding "none" and no content.
	MaxContentsFileSize = 1 << 20
	// MaxPullFiles is the most files the pull request files list returns.
	MaxPullFiles = 3000
	// MaxTreeEntries is the most entries a git trees answer holds; a larger
	// tree is answered with the first ones and "truncated": true (the fake
	// counts entries only; GitHub also stops at 7 MB). SetTreeLimit lowers
	// it for a test.
	MaxTreeEntries = 100000
)

// Git modes of tree entries other than a regular file (100644).
const (
	modeFile      = "100644"
	modeTree      = "040000"
	modeSymlink   = "120000"
	modeSubmodule = "160000"
)

// SetBase commits files (the whole tree) on the default branch "main" and
// returns the new commit's SHA. Pull requests opened afterwards have it as
// their base commit; those opened before keep theirs.
func (s *Server) SetBase(repo string, files map[string]string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(repo)
	h := sha1.New()
	fmt.Fprintf(h, "base %s %s\x00", r.refs["main"], treeSHA(copyFiles(files), ""))
	sha := hex.EncodeToString(h.Sum(nil))
	r.setTree(sha, files)
	r.refs["main"] = sha
	return sha
}

// SetForkHead makes pull request number a pull request from the fork fork
// ("owner/name"): its head branch and repository are the fork's. The head
// commit stays readable through repo, as on GitHub.
func (s *Server) SetForkHead(repo string, number int, fork string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustPull(s.repoLocked(repo), number).headRepo = fork
}

// AddSymlink makes path in commit sha of repo a symbolic link to target
// (git mode 120000).
func (s *Server) AddSymlink(repo, sha, path, target string) {
	s.addSpecial(repo, sha, path, target, modeSymlink)
}

// AddSubmodule makes path in commit sha of repo a submodule at commit
// (git mode 160000).
func (s *Server) AddSubmodule(repo, sha, path, commit string) {
	s.addSpecial(repo, sha, path, commit, modeSubmodule)
}

func (s *Server) addSpecial(repo, sha, path, content, mode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repoLocked(repo)
	files, ok := r.trees[sha]
	if !ok {
		panic(fmt.Sprintf("fakegithub: %s has no commit %s", repo, sha))
	}
	files[path] = content
	if r.modes[sha] == nil {
		r.modes[sha] = map[string]string{}
	}
	r.modes[sha][path] = mode
	delete(r.indexes, sha)
}

// SetTreeLimit makes git trees answers hold at most n entries (then
// "truncated": true), instead of MaxTreeEntries; n <= 0 restores it.
func (s *Server) SetTreeLimit(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.treeLimit = n
}

// setTree stores files as the whole tree of commit sha.
func (rp *repo) setTree(sha string, files map[string]string) {
	rp.trees[sha] = copyFiles(files)
	delete(rp.modes, sha)
	delete(rp.indexes, sha)
}

// headBranch is the head of pull request p: in rp, or in its fork.
func (s *Server) headBranch(rp *repo, p *pull, repoObj *github.Repository) *github.PullRequestBranch {
	if p.headRepo == "" {
		owner, _, _ := strings.Cut(rp.fullName, "/")
		return &github.PullRequestBranch{
			Label: github.String(owner + ":" + p.headRef), Ref: github.String(p.headRef),
			SHA: github.String(p.headSHA), Repo: repoObj,
		}
	}
	owner, name, _ := strings.Cut(p.headRepo, "/")
	fork := &github.Repository{
		ID: github.Int64(rp.id + 500000), Name: github.String(name), FullName: github.String(p.headRepo),
		Owner: &github.User{Login: github.String(owner)}, Fork: github.Bool(true), Private: github.Bool(false),
		DefaultBranch: github.String("main"), HTMLURL: github.String("https://github.com/" + p.headRepo),
	}
	return &github.PullRequestBranch{
		Label: github.String(owner + ":" + p.headRef), Ref: github.String(p.headRef),
		SHA: github.String(p.headSHA), Repo: fork, User: &github.User{Login: github.String(owner)},
	}
}

// resolveRef maps a branch name or commit SHA to a commit SHA with a tree.
func (rp *repo) resolveRef(ref string) (string, bool) {
	if ref == "" {
		ref = "main"
	}
	ref = strings.TrimPrefix(strings.TrimPrefix(ref, "refs/heads/"), "heads/")
	if sha, ok := rp.refs[ref]; ok {
		return sha, true
	}
	if _, ok := rp.trees[ref]; ok {
		return ref, true
	}
	return "", false
}

// entry is one direct child of a directory in a commit's tree.
type entry struct {
	name, path, mode, sha string
	size                  int
}

// gitType is the entry's type in the git trees API.
func (e entry) gitType() string {
	switch e.mode {
	case modeTree:
		return "tree"
	case modeSubmodule:
		return "commit"
	}
	return "blob"
}

// contentsType is the entry's type in the contents API.
func (e entry) contentsType() string {
	switch e.mode {
	case modeTree:
		return "dir"
	case modeSubmodule:
		return "submodule"
	case modeSymlink:
		return "symlink"
	}
	return "file"
}

// treeIndex is a commit's trees: each directory's children and SHA.
type treeIndex struct {
	children map[string][]entry // directory ("" the root) -> its entries, by name
	dirSHA   map[string]string  // directory -> tree SHA
	byTree   map[string]string  // tree SHA -> directory
	byBlob   map[string]string  // blob SHA -> a path holding it
	files    map[string]string
	modes    map[string]string
}

// index returns commit sha's trees, building them once. ok is false when
// the commit is unknown.
func (rp *repo) index(sha string) (*treeIndex, bool) {
	if ix, ok := rp.indexes[sha]; ok {
		return ix, true
	}
	files, ok := rp.trees[sha]
	if !ok {
		return nil, false
	}
	ix := buildIndex(files, rp.modes[sha])
	rp.indexes[sha] = ix
	return ix, true
}

func buildIndex(files, modes map[string]string) *treeIndex {
	ix := &treeIndex{children: map[string][]entry{"": nil}, dirSHA: map[string]string{}, byTree: map[string]string{},
		byBlob: map[string]string{}, files: files, modes: modes}
	type leaf struct{ rel, mode, sha string }
	below := map[string][]leaf{"": nil}
	seen := map[string]bool{}
	for p, c := range files {
		mode := modes[p]
		if mode == "" {
			mode = modeFile
		}
		sha := c
		if mode != modeSubmodule {
			sha = BlobSHA(c)
			ix.byBlob[sha] = p
		}
		parts := strings.Split(p, "/")
		for i := range parts {
			dir := strings.Join(parts[:i], "/")
			below[dir] = append(below[dir], leaf{strings.Join(parts[i:], "/"), mode, sha})
			child := strings.Join(parts[:i+1], "/")
			if seen[child] {
				continue
			}
			seen[child] = true
			e := entry{name: parts[i], path: child, mode: modeTree}
			if i == len(parts)-1 {
				e.mode, e.sha, e.size = mode, sha, len(c)
			}
			ix.children[dir] = append(ix.children[dir], e)
		}
	}
	for dir, ls := range below {
		sort.Slice(ls, func(i, j int) bool { return ls[i].rel < ls[j].rel })
		h := sha1.New()
		fmt.Fprintf(h, "tree %s\x00", dir)
		for _, l := range ls {
			fmt.Fprintf(h, "%s\x00%s %s\n", l.rel, l.mode, l.sha)
		}
		sha := hex.EncodeToString(h.Sum(nil))
		ix.dirSHA[dir], ix.byTree[sha] = sha, dir
	}
	for _, es := range ix.children {
		for i := range es {
			if es[i].mode == modeTree {
				es[i].sha = ix.dirSHA[es[i].path]
			}
		}
		sort.Slice(es, func(i, j int) bool { return es[i].name < es[j].name })
	}
	return ix
}

// treeSHA is the tree SHA of directory dir of files (regular files only).
func treeSHA(files map[string]string, dir string) string {
	return buildIndex(files, nil).dirSHA[dir]
}

// wrap64 encodes content as GitHub does: base64 in lines of 60 characters.
func wrap64(content string) string {
	enc := base64.StdEncoding.EncodeToString([]byte(content))
	var b strings.Builder
	for len(enc) > 60 {
		b.WriteString(enc[:60])
		b.WriteByte('\n')
		enc = enc[60:]
	}
	b.WriteString(enc)
	b.WriteByte('\n')
	return b.String()
}

// handleContents serves the contents API with its limits: a directory lists
// at most MaxContentsEntries entries, and a file over MaxContentsFileSize
// comes with encoding "none" and no content.
func (s *Server) handleContents(w http.ResponseWriter, r *http.Request, rp *repo) {
	ref := r.URL.Query().Get("ref")
	sha, ok := rp.resolveRef(ref)
	if !ok {
		writeError(w, http.StatusNotFound, "No commit found for the ref "+ref, docContents)
		return
	}
	ix, _ := rp.index(sha)
	p := strings.Trim(r.PathValue("path"), "/")
	q := "?ref=" + url.QueryEscape(sha)
	if c, ok := ix.files[p]; ok && p != "" {
		name := p[strings.LastIndex(p, "/")+1:]
		e := entry{name: name, path: p, mode: ix.modes[p]}
		if e.mode == "" {
			e.mode = modeFile
		}
		rc := &github.RepositoryContent{
			Type: github.String(e.contentsType()), Size: github.Int(len(c)),
			Name: github.String(name), Path: github.String(p),
			SHA:         github.String(BlobSHA(c)),
			URL:         github.String(fmt.Sprintf("%srepos/%s/contents/%s%s", s.URL, rp.fullName, p, q)),
			HTMLURL:     github.String(fmt.Sprintf("https://github.com/%s/blob/%s/%s", rp.fullName, sha, p)),
			DownloadURL: github.String(fmt.Sprintf("https://raw.githubusercontent.com/%s/%s/%s", rp.fullName, sha, p)),
		}
		switch {
		case e.mode == modeSymlink:
			rc.Target = github.String(c)
		case e.mode == modeSubmodule:
			rc.SHA, rc.Size, rc.SubmoduleGitURL = github.String(c), github.Int(0), github.String("https://github.com/"+rp.fullName+"-sub.git")
		case len(c) > MaxContentsFileSize:
			rc.Encoding, rc.Content = github.String("none"), github.String("")
		default:
			rc.Encoding, rc.Content = github.String("base64"), github.String(wrap64(c))
		}
		writeJSON(w, http.StatusOK, rc)
		return
	}
	es, isDir := ix.children[p]
	if p != "" && !isDir {
		writeError(w, http.StatusNotFound, "Not Found", docContents)
		return
	}
	out := []*github.RepositoryContent{}
	for _, e := range es[:min(len(es), MaxContentsEntries)] {
		out = append(out, &github.RepositoryContent{
			Type: github.String(e.contentsType()), Name: github.String(e.name), Path: github.String(e.path),
			SHA: github.String(e.sha), Size: github.Int(e.size),
			URL:     github.String(fmt.Sprintf("%srepos/%s/contents/%s%s", s.URL, rp.fullName, e.path, q)),
			HTMLURL: github.String(fmt.Sprintf("https://github.com/%s/tree/%s/%s", rp.fullName, sha, e.path)),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

// findTree resolves a commit SHA, branch or tree SHA to a commit's trees
// and the directory it names.
func (rp *repo) findTree(id string) (*treeIndex, string, bool) {
	if sha, ok := rp.resolveRef(id); ok {
		ix, _ := rp.index(sha)
		return ix, "", true
	}
	for sha := range rp.trees {
		ix, _ := rp.index(sha)
		if dir, ok := ix.byTree[id]; ok {
			return ix, dir, true
		}
	}
	return nil, "", false
}

// handleTree serves the git trees API in go-github's shapes, recursive or
// not, truncated past the tree limit.
func (s *Server) handleTree(w http.ResponseWriter, r *http.Request, rp *repo) {
	ix, dir, ok := rp.findTree(r.PathValue("sha"))
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found", docTrees)
		return
	}
	limit := s.treeLimit
	if limit <= 0 {
		limit = MaxTreeEntries
	}
	recursive := r.URL.Query().Get("recursive") != ""
	entries := []*github.TreeEntry{}
	truncated := false
	var walk func(d, rel string)
	walk = func(d, rel string) {
		for _, e := range ix.children[d] {
			if len(entries) == limit {
				truncated = true
				return
			}
			p := e.name
			if rel != "" {
				p = rel + "/" + e.name
			}
			te := &github.TreeEntry{Path: github.String(p), SHA: github.String(e.sha), Type: github.String(e.gitType()), Mode: github.String(e.mode)}
			if e.gitType() == "blob" {
				te.Size = github.Int(e.size)
				te.URL = github.String(fmt.Sprintf("%srepos/%s/git/blobs/%s", s.URL, rp.fullName, e.sha))
			} else if e.mode == modeTree {
				te.URL = github.String(fmt.Sprintf("%srepos/%s/git/trees/%s", s.URL, rp.fullName, e.sha))
			}
			entries = append(entries, te)
			if e.mode == modeTree && recursive {
				walk(e.path, p)
			}
		}
	}
	walk(dir, "")
	writeJSON(w, http.StatusOK, &github.Tree{SHA: github.String(ix.dirSHA[dir]), Entries: entries, Truncated: github.Bool(truncated)})
}

// handleBlob serves the git blobs API: base64 JSON, or the raw bytes for
// the raw media type.
func (s *Server) handleBlob(w http.ResponseWriter, r *http.Request, rp *repo) {
	sha := r.PathValue("sha")
	for commit := range rp.trees {
		ix, _ := rp.index(commit)
		p, ok := ix.byBlob[sha]
		if !ok {
			continue
		}
		c := ix.files[p]
		if strings.Contains(r.Header.Get("Accept"), "raw") {
			w.Header().Set("Content-Type", "application/vnd.github.raw")
			_, _ = w.Write([]byte(c))
			return
		}
		writeJSON(w, http.StatusOK, &github.Blob{
			SHA: github.String(sha), Size: github.Int(len(c)), Encoding: github.String("base64"),
			Content: github.String(wrap64(c)),
			URL:     github.String(fmt.Sprintf("%srepos/%s/git/blobs/%s", s.URL, rp.fullName, sha)),
		})
		return
	}
	writeError(w, http.StatusNotFound, "Not Found", docBlobs)
}
