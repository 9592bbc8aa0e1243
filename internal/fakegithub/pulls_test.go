package fakegithub

import (
	"fmt"
	"net/http"
	"sort"
	"testing"

	"github.com/google/go-github/v60/github"
)

const head2 = "2222222222222222222222222222222222222222"

func TestGetPull(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 7, headSHA, map[string]string{"tern.yaml": "x"})
	c := client(t, s, testInst)
	get := func() *github.PullRequest {
		t.Helper()
		pr, _, err := c.PullRequests.Get(ctx, "acme", "shop", 7)
		if err != nil {
			t.Fatal(err)
		}
		return pr
	}
	pr := get()
	if pr.GetNumber() != 7 || pr.GetState() != "open" || pr.GetMerged() || pr.Mergeable != nil ||
		pr.GetHead().GetSHA() != headSHA || pr.GetHead().GetRef() != "pr-7" || pr.GetBase().GetRef() != "main" ||
		pr.GetUser().GetLogin() == "" || pr.GetHead().GetRepo().GetFullName() != testRepo {
		t.Errorf("opened PR: %+v", pr)
	}
	s.SetMergeable(testRepo, 7, false)
	if pr := get(); pr.Mergeable == nil || pr.GetMergeable() || pr.GetMergeableState() != "dirty" {
		t.Errorf("unmergeable: mergeable=%v state=%q", pr.Mergeable, pr.GetMergeableState())
	}
	s.SetMergeable(testRepo, 7, true)
	if pr := get(); !pr.GetMergeable() || pr.GetMergeableState() != "clean" {
		t.Errorf("mergeable: mergeable=%v state=%q", pr.Mergeable, pr.GetMergeableState())
	}
	s.Push(testRepo, 7, head2, map[string]string{"tern.yaml": "y"})
	if pr := get(); pr.GetHead().GetSHA() != head2 {
		t.Errorf("after push head %q", pr.GetHead().GetSHA())
	}
	s.ClosePR(testRepo, 7, true)
	if pr := get(); pr.GetState() != "closed" || !pr.GetMerged() || pr.MergedAt == nil {
		t.Errorf("merged: state=%q merged=%v", pr.GetState(), pr.GetMerged())
	}
	s.OpenPR(testRepo, 8, headSHA, nil)
	s.ClosePR(testRepo, 8, false)
	pr8, _, err := c.PullRequests.Get(ctx, "acme", "shop", 8)
	if err != nil || pr8.GetState() != "closed" || pr8.GetMerged() || pr8.MergedAt != nil {
		t.Errorf("closed unmerged: %v %v", pr8, err)
	}
	if _, _, err := c.PullRequests.Get(ctx, "acme", "shop", 99); status(err) != http.StatusNotFound {
		t.Errorf("unknown PR: %v, want 404", err)
	}
}

// allFiles lists a PR's files following go-github's pagination.
func allFiles(t *testing.T, c *github.Client, number, perPage int) ([]*github.CommitFile, int) {
	t.Helper()
	var out []*github.CommitFile
	pages := 0
	opts := &github.ListOptions{PerPage: perPage}
	for {
		fs, resp, err := c.PullRequests.ListFiles(ctx, "acme", "shop", number, opts)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		out = append(out, fs...)
		if resp.NextPage == 0 {
			return out, pages
		}
		opts.Page = resp.NextPage
	}
}

func TestPullFilesPaged(t *testing.T) {
	s := newServer(t)
	files := map[string]string{}
	for i := 0; i < 75; i++ {
		files[fmt.Sprintf("db/shop/t%02d.sql", i)] = fmt.Sprintf("CREATE TABLE t%d (id int);\n", i)
	}
	s.OpenPR(testRepo, 3, headSHA, files)
	c := client(t, s, testInst)
	for _, tt := range []struct{ perPage, pages int }{{0, 3}, {30, 3}, {100, 1}, {10, 8}} {
		got, pages := allFiles(t, c, 3, tt.perPage)
		if len(got) != 75 || pages != tt.pages {
			t.Errorf("per_page %d: %d files in %d pages, want 75 in %d", tt.perPage, len(got), pages, tt.pages)
		}
		seen := map[string]bool{}
		for _, f := range got {
			if f.GetStatus() != "added" || f.GetAdditions() != 1 || seen[f.GetFilename()] {
				t.Errorf("file %v", f)
			}
			seen[f.GetFilename()] = true
		}
	}
}

func TestPushChangedFiles(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 4, headSHA, map[string]string{
		"tern.yaml": "a", "db/shop/users.sql": "u1", "db/shop/orders.sql": "o1", "README.md": "r",
	})
	s.Push(testRepo, 4, head2, map[string]string{
		"tern.yaml": "a", "db/shop/users.sql": "u2", "db/shop/items.sql": "i1", "README.md": "r",
	})
	files, _ := allFiles(t, client(t, s, testInst), 4, 0)
	var got []string
	for _, f := range files {
		got = append(got, f.GetStatus()+" "+f.GetFilename())
	}
	sort.Strings(got)
	want := []string{"added db/shop/items.sql", "modified db/shop/users.sql", "removed db/shop/orders.sql"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("changed files %v, want %v", got, want)
	}
}

func TestReviews(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 5, headSHA, nil)
	s.AddReview(testRepo, 5, "alice", "APPROVED")
	s.AddReview(testRepo, 5, "bob", "CHANGES_REQUESTED")
	rs, _, err := client(t, s, testInst).PullRequests.ListReviews(ctx, "acme", "shop", 5, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].GetUser().GetLogin() != "alice" || rs[0].GetState() != "APPROVED" ||
		rs[1].GetState() != "CHANGES_REQUESTED" || rs[0].GetCommitID() != headSHA || rs[0].GetID() == rs[1].GetID() {
		t.Errorf("reviews %v", rs)
	}
}
