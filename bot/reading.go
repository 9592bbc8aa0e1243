package bot

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/plan"
)

// commitReader reads one commit of a repository through the git trees and
// blobs APIs. Unlike the contents API, these have no 1,000-entry listing
// limit nor 1 MB file limit; a tree GitHub cannot list whole answers
// "truncated", which is an error here, never a partial read.
type commitReader struct {
	gh          *github.Client
	owner, name string
	sha         string     // the commit
	blobs       *blobCache // may be nil

	mu    sync.Mutex
	trees map[string]*github.Tree // non-recursive trees by SHA
}

func newCommitReader(gh *github.Client, pr *prInfo, sha string, blobs *blobCache) *commitReader {
	return &commitReader{gh: gh, owner: pr.Owner, name: pr.Name, sha: sha, blobs: blobs, trees: map[string]*github.Tree{}}
}

// tree returns the non-recursive tree id (a commit or tree SHA).
func (c *commitReader) tree(ctx context.Context, id string) (*github.Tree, error) {
	c.mu.Lock()
	t, ok := c.trees[id]
	c.mu.Unlock()
	if ok {
		return t, nil
	}
	t, _, err := c.gh.Git.GetTree(ctx, c.owner, c.name, id, false)
	if err != nil {
		return nil, fmt.Errorf("read tree %s of %s/%s: %w", short(id), c.owner, c.name, err)
	}
	if t.GetTruncated() {
		return nil, fmt.Errorf("read tree %s of %s/%s: GitHub truncated the answer; refusing to read part of it", short(id), c.owner, c.name)
	}
	c.mu.Lock()
	c.trees[id] = t
	c.mu.Unlock()
	return t, nil
}

// entry finds the tree entry at p (a path from the repository root) in the
// commit; ok is false when nothing is there.
func (c *commitReader) entry(ctx context.Context, p string) (e *github.TreeEntry, ok bool, err error) {
	parts := strings.Split(path.Clean(p), "/")
	cur := c.sha
	for i, part := range parts {
		t, err := c.tree(ctx, cur)
		if err != nil {
			return nil, false, err
		}
		var found *github.TreeEntry
		for _, te := range t.Entries {
			if te.GetPath() == part {
				found = te
				break
			}
		}
		if found == nil {
			return nil, false, nil
		}
		if i == len(parts)-1 {
			return found, true, nil
		}
		if found.GetType() != "tree" {
			return nil, false, nil
		}
		cur = found.GetSHA()
	}
	return nil, false, nil
}

// objectSHA returns the type and object id at p in the commit ("" when
// there is none): a blob's for a file, a tree's for a directory.
func (c *commitReader) objectSHA(ctx context.Context, p string) (string, error) {
	e, ok, err := c.entry(ctx, p)
	if err != nil || !ok {
		return "", err
	}
	return e.GetType() + " " + e.GetSHA(), nil
}

// errNotFound is a file the commit does not have.
var errNotFound = errors.New("not found")

// readFile reads the file at p; errNotFound when there is none.
func (c *commitReader) readFile(ctx context.Context, p string) ([]byte, error) {
	e, ok, err := c.entry(ctx, p)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("read %s at %s: %w", p, short(c.sha), errNotFound)
	}
	if e.GetType() != "blob" || e.GetMode() == "120000" {
		return nil, fmt.Errorf("read %s at %s: it is not a regular file", p, short(c.sha))
	}
	return c.blob(ctx, p, e.GetSHA())
}

func (c *commitReader) blob(ctx context.Context, p, sha string) ([]byte, error) {
	key := c.owner + "/" + c.name + "\x00" + sha
	if data, ok := c.blobs.get(key); ok {
		return data, nil
	}
	data, _, err := c.gh.Git.GetBlobRaw(ctx, c.owner, c.name, sha)
	if err != nil {
		return nil, fmt.Errorf("read %s at %s: %w", p, short(c.sha), err)
	}
	c.blobs.put(key, data)
	return data, nil
}

// blobCache keeps blobs by repository and object id. A blob's id is the
// hash of its content, so an entry never goes stale: a re-plan at a new
// head, or the plan an apply makes right after the one shown, reads only
// the blobs that changed instead of one API call per schema file.
type blobCache struct {
	mu    sync.Mutex
	max   int // bytes
	size  int
	data  map[string][]byte
	order []string // oldest first, for eviction
}

func newBlobCache(maxBytes int) *blobCache {
	return &blobCache{max: maxBytes, data: map[string][]byte{}}
}

func (bc *blobCache) get(key string) ([]byte, bool) {
	if bc == nil {
		return nil, false
	}
	bc.mu.Lock()
	defer bc.mu.Unlock()
	d, ok := bc.data[key]
	return d, ok
}

func (bc *blobCache) put(key string, d []byte) {
	if bc == nil || len(d) > bc.max/4 {
		return
	}
	bc.mu.Lock()
	defer bc.mu.Unlock()
	if _, ok := bc.data[key]; ok {
		return
	}
	for bc.size+len(d) > bc.max && len(bc.order) > 0 {
		old := bc.order[0]
		bc.order = bc.order[1:]
		bc.size -= len(bc.data[old])
		delete(bc.data, old)
	}
	bc.data[key] = d
	bc.order = append(bc.order, key)
	bc.size += len(d)
}

// blobWorkers bounds the blob reads of one schema_dir in flight at once.
const blobWorkers = 8

// schemaFiles reads every *.sql file under dir, recursively. A missing
// directory is an error that says so. Symbolic links and
// submodules anywhere under dir are refused by name: what they point at is
// not in the commit's schema_dir. Files over limits are refused from the
// sizes the tree lists, before any is downloaded.
func (c *commitReader) schemaFiles(ctx context.Context, dir string, limits plan.Limits) ([]plan.File, error) {
	e, ok, err := c.entry(ctx, dir)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("schema_dir %s does not exist at %s (check its spelling in tern.yaml)", dir, short(c.sha))
	}
	if e.GetType() != "tree" {
		return nil, fmt.Errorf("schema_dir %s at %s is a %s, not a directory", dir, short(c.sha), kindOf(e))
	}
	t, _, err := c.gh.Git.GetTree(ctx, c.owner, c.name, e.GetSHA(), true)
	if err != nil {
		return nil, fmt.Errorf("read tree of %s at %s: %w", dir, short(c.sha), err)
	}
	if t.GetTruncated() {
		return nil, fmt.Errorf("%s at %s holds more entries than GitHub lists in one tree (the answer was truncated): refusing to plan on part of it; split the schema_dir", dir, short(c.sha))
	}
	var special []string
	type want struct{ path, sha string }
	var (
		wants []want
		sizes []plan.FileSize
	)
	for _, te := range t.Entries {
		p := dir + "/" + te.GetPath()
		switch {
		case te.GetMode() == "120000", te.GetType() == "commit":
			special = append(special, p+" ("+kindOf(te)+")")
		case te.GetType() == "blob" && strings.HasSuffix(p, ".sql"):
			wants = append(wants, want{p, te.GetSHA()})
			sizes = append(sizes, plan.FileSize{Path: p, Size: int64(te.GetSize())})
		}
	}
	if len(special) > 0 {
		sort.Strings(special)
		return nil, fmt.Errorf("schema_dir %s may hold only regular files and folders: %s", dir, strings.Join(special, ", "))
	}
	// The tree lists each blob's size: refuse what is over the limits
	// before downloading any of it. Parse measures the content again.
	if err := limits.CheckSizes(sizes); err != nil {
		return nil, err
	}
	sort.Slice(wants, func(i, j int) bool { return wants[i].path < wants[j].path })
	files := make([]plan.File, len(wants))
	errs := make([]error, len(wants))
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(blobWorkers, len(wants)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				data, err := c.blob(ctx, wants[i].path, wants[i].sha)
				files[i], errs[i] = plan.File{Path: wants[i].path, Data: data}, err
			}
		}()
	}
	for i := range wants {
		next <- i
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return files, nil
}

// maxRepoConfigSize bounds the tern.yaml tern reads (a PR author writes
// the head's).
const maxRepoConfigSize = 1 << 20

// readRepoConfigAt reads and parses tern.yaml at the commit c reads:
// errNoRepoConfig when there is none, *repoConfigError when it does not
// parse.
func readRepoConfigAt(ctx context.Context, c *commitReader) (*config.Repo, error) {
	e, ok, err := c.entry(ctx, config.RepoFile)
	if err != nil {
		return nil, err
	}
	if ok && (e.GetType() != "blob" || e.GetMode() == "120000") {
		return nil, &repoConfigError{fmt.Errorf("%s must be a regular file (it is a %s)", config.RepoFile, kindOf(e))}
	}
	if ok && e.GetSize() > maxRepoConfigSize {
		return nil, &repoConfigError{fmt.Errorf("%s: %d bytes; at most %d are read", config.RepoFile, e.GetSize(), maxRepoConfigSize)}
	}
	data, err := c.readFile(ctx, config.RepoFile)
	if errors.Is(err, errNotFound) {
		return nil, errNoRepoConfig
	}
	if err != nil {
		return nil, err
	}
	rc, err := config.ParseRepo(data)
	if err != nil {
		return nil, &repoConfigError{err}
	}
	return rc, nil
}

// touchesSchema reports whether the PR changes tern.yaml or a schema_dir
// of either side's tern.yaml, comparing the object ids of the base and the
// head commit (never the PR's files list, which stops at 3,000 files).
func touchesSchema(ctx context.Context, base, head *commitReader, configs ...*config.Repo) (bool, error) {
	paths := []string{config.RepoFile}
	for _, rc := range configs {
		if rc == nil {
			continue
		}
		for _, db := range rc.Databases {
			paths = append(paths, db.SchemaDirClean())
		}
	}
	for _, p := range paths {
		b, err := base.objectSHA(ctx, p)
		if err != nil {
			return false, err
		}
		h, err := head.objectSHA(ctx, p)
		if err != nil {
			return false, err
		}
		if b != h {
			return true, nil
		}
	}
	return false, nil
}

// kindOf names what a tree entry is, for messages.
func kindOf(e *github.TreeEntry) string {
	switch {
	case e.GetMode() == "120000":
		return "symbolic link"
	case e.GetType() == "commit":
		return "submodule"
	case e.GetType() == "tree":
		return "directory"
	}
	return "file"
}

// short abbreviates a commit SHA for messages.
func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
