package fakegithub

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"
)

// The fake keeps GitHub's limits on reading a repository: the contents API
// lists 1,000 entries per directory and gives files over 1 MB without
// content, the PR files list stops at 3,000, and a tree over the limit is
// answered truncated.
func TestRepositoryReadLimits(t *testing.T) {
	s := newServer(t)
	files := map[string]string{"big.sql": strings.Repeat("x", MaxContentsFileSize+1)}
	for i := 0; i < 3100; i++ {
		files[fmt.Sprintf("db/t%04d.sql", i)] = fmt.Sprintf("CREATE TABLE t%04d (id int);\n", i)
	}
	s.OpenPR(testRepo, 1, headSHA, files)
	c := client(t, s, testInst)
	at := &github.RepositoryContentGetOptions{Ref: headSHA}

	_, dir, _, err := c.Repositories.GetContents(ctx, "acme", "shop", "db", at)
	if err != nil || len(dir) != MaxContentsEntries {
		t.Errorf("contents listed %d entries (%v), want %d", len(dir), err, MaxContentsEntries)
	}
	f, _, _, err := c.Repositories.GetContents(ctx, "acme", "shop", "big.sql", at)
	if err != nil {
		t.Fatal(err)
	}
	if f.GetEncoding() != "none" || f.GetSize() != MaxContentsFileSize+1 {
		t.Errorf("big file: encoding %q size %d", f.GetEncoding(), f.GetSize())
	}
	if _, err := f.GetContent(); err == nil {
		t.Error("go-github decoded a file that came without content")
	}

	n := 0
	opt := &github.ListOptions{PerPage: 100}
	for {
		fs, resp, err := c.PullRequests.ListFiles(ctx, "acme", "shop", 1, opt)
		if err != nil {
			t.Fatal(err)
		}
		n += len(fs)
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	if n != MaxPullFiles {
		t.Errorf("PR files list gave %d files, want %d", n, MaxPullFiles)
	}

	tree, _, err := c.Git.GetTree(ctx, "acme", "shop", headSHA, true)
	if err != nil || tree.GetTruncated() || len(tree.Entries) != 3102 {
		t.Fatalf("whole tree: %d entries, truncated %v, %v", len(tree.Entries), tree.GetTruncated(), err)
	}
	s.SetTreeLimit(500)
	tree, _, err = c.Git.GetTree(ctx, "acme", "shop", headSHA, true)
	if err != nil || !tree.GetTruncated() || len(tree.Entries) != 500 {
		t.Errorf("limited tree: %d entries, truncated %v, %v", len(tree.Entries), tree.GetTruncated(), err)
	}
	s.SetTreeLimit(0)
	// A big file is whole through the blobs API.
	for _, e := range tree.Entries {
		if e.GetPath() == "big.sql" {
			raw, _, err := c.Git.GetBlobRaw(ctx, "acme", "shop", e.GetSHA())
			if err != nil || len(raw) != MaxContentsFileSize+1 {
				t.Errorf("raw blob: %d bytes, %v", len(raw), err)
			}
		}
	}
}

// Trees name subtrees by SHA (readable on their own), and show symlinks
// and submodules with git's modes and types.
func TestTreesModesAndSubtrees(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 1, headSHA, treeFiles)
	s.AddSymlink(testRepo, headSHA, "db/shop/link.sql", "/etc/passwd")
	s.AddSubmodule(testRepo, headSHA, "db/shop/vendor", "9999999999999999999999999999999999999999")
	c := client(t, s, testInst)
	root, _, err := c.Git.GetTree(ctx, "acme", "shop", headSHA, false)
	if err != nil {
		t.Fatal(err)
	}
	var db string
	for _, e := range root.Entries {
		if e.GetPath() == "db" {
			db = e.GetSHA()
			if e.GetType() != "tree" || e.GetMode() != "040000" {
				t.Errorf("db entry %s %s", e.GetType(), e.GetMode())
			}
		}
	}
	sub, _, err := c.Git.GetTree(ctx, "acme", "shop", db, true)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range sub.Entries {
		got[e.GetPath()] = e.GetType() + " " + e.GetMode()
	}
	for p, want := range map[string]string{
		"shop": "tree 040000", "shop/users.sql": "blob 100644", "shop/more/extra.sql": "blob 100644",
		"shop/link.sql": "blob 120000", "shop/vendor": "commit 160000",
	} {
		if got[p] != want {
			t.Errorf("%s: %q, want %q", p, got[p], want)
		}
	}
	// The same directory in two commits has one SHA when its files are the same.
	s.OpenPR(testRepo, 2, head2, treeFiles)
	r2, _, _ := c.Git.GetTree(ctx, "acme", "shop", head2, false)
	for _, e := range r2.Entries {
		if e.GetPath() == "db" && e.GetSHA() == db {
			t.Error("db has the same SHA although head has a symlink and a submodule more")
		}
		if e.GetPath() == "tern.yaml" && e.GetSHA() != BlobSHA(treeFiles["tern.yaml"]) {
			t.Error("tern.yaml blob SHA differs")
		}
	}
}

// SetBase moves the default branch; a PR opened afterwards has it as base.
// A fork PR's head repository is the fork.
func TestSetBaseAndForkHead(t *testing.T) {
	s := newServer(t)
	base := s.SetBase(testRepo, map[string]string{"tern.yaml": "x"})
	s.OpenPR(testRepo, 1, headSHA, treeFiles)
	s.SetForkHead(testRepo, 1, "mallory/shop")
	c := client(t, s, testInst)
	pr, _, err := c.PullRequests.Get(ctx, "acme", "shop", 1)
	if err != nil {
		t.Fatal(err)
	}
	if pr.GetBase().GetSHA() != base || pr.GetHead().GetRepo().GetFullName() != "mallory/shop" || !pr.GetHead().GetRepo().GetFork() ||
		pr.GetBase().GetRepo().GetFullName() != testRepo {
		t.Errorf("base %s head repo %s", pr.GetBase().GetSHA(), pr.GetHead().GetRepo().GetFullName())
	}
	f, _, _, err := c.Repositories.GetContents(ctx, "acme", "shop", "tern.yaml", &github.RepositoryContentGetOptions{Ref: base})
	if got, _ := f.GetContent(); err != nil || got != "x" {
		t.Errorf("base tern.yaml %q, %v", got, err)
	}
}
