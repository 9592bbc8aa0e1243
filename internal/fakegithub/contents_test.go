package fakegithub

import (
	"net/http"
	"testing"

	"github.com/google/go-github/v60/github"
)

var treeFiles = map[string]string{
	"tern.yaml":              "databases:\n  - name: shop\n",
	"db/shop/users.sql":      "CREATE TABLE users (id int);\n",
	"db/shop/orders.sql":     "CREATE TABLE orders (id int);\n",
	"db/shop/more/extra.sql": "CREATE TABLE extra (id int);\n",
}

func TestContents(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 1, headSHA, treeFiles)
	s.Push(testRepo, 1, head2, map[string]string{"tern.yaml": "changed\n"})
	c := client(t, s, testInst)
	at := func(ref string) *github.RepositoryContentGetOptions {
		return &github.RepositoryContentGetOptions{Ref: ref}
	}

	f, dir, _, err := c.Repositories.GetContents(ctx, "acme", "shop", "db/shop/users.sql", at(headSHA))
	if err != nil || dir != nil {
		t.Fatalf("file: %v %v", dir, err)
	}
	if body, err := f.GetContent(); err != nil || body != treeFiles["db/shop/users.sql"] || f.GetSHA() != BlobSHA(body) {
		t.Errorf("file content %q, %v", body, err)
	}
	// A long file survives GitHub's line-wrapped base64.
	long := ""
	for i := 0; i < 200; i++ {
		long += "CREATE TABLE wrapped_lines_for_base64 (id int);\n"
	}
	s.OpenPR(testRepo, 2, "3333333333333333333333333333333333333333", map[string]string{"big.sql": long})
	if f, _, _, err := c.Repositories.GetContents(ctx, "acme", "shop", "big.sql", at("3333333333333333333333333333333333333333")); err != nil {
		t.Error(err)
	} else if got, _ := f.GetContent(); got != long {
		t.Errorf("long file lost bytes: %d vs %d", len(got), len(long))
	}

	_, dir, _, err = c.Repositories.GetContents(ctx, "acme", "shop", "db/shop", at(headSHA))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"more": "dir", "orders.sql": "file", "users.sql": "file"}
	if len(dir) != len(want) {
		t.Errorf("listing %v", dir)
	}
	for _, e := range dir {
		if want[e.GetName()] != e.GetType() || e.GetPath() != "db/shop/"+e.GetName() {
			t.Errorf("entry %s %s %s", e.GetType(), e.GetName(), e.GetPath())
		}
	}
	if _, root, _, err := c.Repositories.GetContents(ctx, "acme", "shop", "", at(headSHA)); err != nil || len(root) != 2 {
		t.Errorf("root listing %v, %v", root, err)
	}
	// The PR's branch name resolves to the newest head.
	if f, _, _, err := c.Repositories.GetContents(ctx, "acme", "shop", "tern.yaml", at("pr-1")); err != nil {
		t.Error(err)
	} else if got, _ := f.GetContent(); got != "changed\n" {
		t.Errorf("at branch: %q", got)
	}
	// The old head keeps its tree.
	if f, _, _, err := c.Repositories.GetContents(ctx, "acme", "shop", "tern.yaml", at(headSHA)); err != nil {
		t.Error(err)
	} else if got, _ := f.GetContent(); got != treeFiles["tern.yaml"] {
		t.Errorf("old head: %q", got)
	}

	for _, tt := range []struct{ path, ref string }{
		{"db/shop/users.sql", head2}, // removed by the push
		{"nope.sql", headSHA},
		{"db/sho", headSHA},
		{"tern.yaml", "ffffffffffffffffffffffffffffffffffffffff"},
		{"tern.yaml", ""}, // the default branch is empty
	} {
		if _, _, _, err := c.Repositories.GetContents(ctx, "acme", "shop", tt.path, at(tt.ref)); status(err) != http.StatusNotFound {
			t.Errorf("%s at %q: %v, want 404", tt.path, tt.ref, err)
		}
	}
}

func TestBlobSHAIsGits(t *testing.T) {
	// git hash-object of an empty file and of "hello\n".
	for content, want := range map[string]string{
		"":        "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391",
		"hello\n": "ce013625030ba8dba906f756967f9e9ca394464a",
	} {
		if got := BlobSHA(content); got != want {
			t.Errorf("BlobSHA(%q) = %s, want %s", content, got, want)
		}
	}
}

func TestTreesAndBlobs(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 1, headSHA, treeFiles)
	c := client(t, s, testInst)

	tree, _, err := c.Git.GetTree(ctx, "acme", "shop", headSHA, true)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range tree.Entries {
		got[e.GetPath()] = e.GetType()
	}
	want := map[string]string{
		"tern.yaml": "blob", "db": "tree", "db/shop": "tree", "db/shop/users.sql": "blob",
		"db/shop/orders.sql": "blob", "db/shop/more": "tree", "db/shop/more/extra.sql": "blob",
	}
	if len(got) != len(want) {
		t.Errorf("recursive tree %v, want %v", got, want)
	}
	for p, typ := range want {
		if got[p] != typ {
			t.Errorf("%s: %q, want %q", p, got[p], typ)
		}
	}

	top, _, err := c.Git.GetTree(ctx, "acme", "shop", headSHA, false)
	if err != nil || len(top.Entries) != 2 {
		t.Fatalf("top-level tree %v, %v", top, err)
	}
	var dbSHA string
	for _, e := range top.Entries {
		if e.GetPath() == "db" {
			dbSHA = e.GetSHA()
		}
	}
	sub, _, err := c.Git.GetTree(ctx, "acme", "shop", dbSHA, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(sub.Entries) != 5 || sub.GetSHA() != dbSHA {
		t.Errorf("subtree by sha: %d entries, sha %s", len(sub.Entries), sub.GetSHA())
	}

	var usersSHA string
	for _, e := range tree.Entries {
		if e.GetPath() == "db/shop/users.sql" {
			usersSHA = e.GetSHA()
		}
	}
	blob, _, err := c.Git.GetBlob(ctx, "acme", "shop", usersSHA)
	if err != nil {
		t.Fatal(err)
	}
	if blob.GetEncoding() != "base64" || blob.GetSize() != len(treeFiles["db/shop/users.sql"]) {
		t.Errorf("blob %v", blob)
	}
	raw, _, err := c.Git.GetBlobRaw(ctx, "acme", "shop", usersSHA)
	if err != nil || string(raw) != treeFiles["db/shop/users.sql"] {
		t.Errorf("raw blob %q, %v", raw, err)
	}
	if _, _, err := c.Git.GetBlob(ctx, "acme", "shop", "deadbeef"); status(err) != http.StatusNotFound {
		t.Errorf("unknown blob: %v, want 404", err)
	}
	if _, _, err := c.Git.GetTree(ctx, "acme", "shop", "deadbeef", true); status(err) != http.StatusNotFound {
		t.Errorf("unknown tree: %v, want 404", err)
	}
}
