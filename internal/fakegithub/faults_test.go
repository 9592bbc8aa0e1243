package fakegithub

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/google/go-github/v60/github"
)

func TestFailNext(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 7, headSHA, nil)
	c := client(t, s, testInst)
	create := func() error {
		_, _, err := c.Issues.CreateComment(ctx, "acme", "shop", 7, &github.IssueComment{Body: github.String("x")})
		return err
	}
	if err := create(); err != nil { // fetch the token first
		t.Fatal(err)
	}
	s.FailNext(http.MethodPost, "/repos/acme/shop/issues/*/comments", http.StatusBadGateway, 2)
	s.FailNext(http.MethodGet, "/repos/acme/shop/pulls/*", http.StatusInternalServerError, 1)

	for i := 0; i < 2; i++ {
		if err := create(); status(err) != http.StatusBadGateway {
			t.Errorf("attempt %d: %v, want 502", i, err)
		}
	}
	if err := create(); err != nil {
		t.Errorf("after the faults ran out: %v", err)
	}
	if got := len(s.Comments(testRepo, 7)); got != 2 {
		t.Errorf("failed requests stored comments: %d, want 2", got)
	}
	// The other fault is still armed and only for its route.
	if _, _, err := c.PullRequests.ListFiles(ctx, "acme", "shop", 7, nil); err != nil {
		t.Errorf("files route hit by the pulls/* fault: %v", err)
	}
	if _, _, err := c.PullRequests.Get(ctx, "acme", "shop", 7); status(err) != http.StatusInternalServerError {
		t.Errorf("pull: %v, want 500", err)
	}
	if _, _, err := c.PullRequests.Get(ctx, "acme", "shop", 7); err != nil {
		t.Errorf("pull after fault: %v", err)
	}

	s.FailNext("", "/repos/acme/shop/check-runs", http.StatusTooManyRequests, 1)
	_, resp, err := c.Checks.CreateCheckRun(ctx, "acme", "shop", github.CreateCheckRunOptions{Name: "n", HeadSHA: headSHA})
	if resp == nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || err == nil {
		t.Errorf("429: %v %v", resp, err)
	}
	if len(s.CheckRuns(testRepo, headSHA)) != 0 {
		t.Error("a faulted create stored a run")
	}
}

func TestRequestsLog(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 7, headSHA, nil)
	c := client(t, s, testInst)
	if _, _, err := c.Issues.CreateComment(ctx, "acme", "shop", 7, &github.IssueComment{Body: github.String("hello")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.PullRequests.Get(ctx, "acme", "shop", 99); err == nil {
		t.Fatal("want 404")
	}
	var got []string
	for _, r := range s.Requests() {
		got = append(got, fmt.Sprintf("%s %s %d", r.Method, r.Path, r.Status))
	}
	want := []string{
		"POST /app/installations/77/access_tokens 201",
		"POST /repos/acme/shop/issues/7/comments 201",
		"GET /repos/acme/shop/pulls/99 404",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("log %v, want %v", got, want)
	}
	if b := string(s.Requests()[1].Body); b != "{\"body\":\"hello\"}\n" {
		t.Errorf("logged body %q", b)
	}
}

// TestConcurrentUse drives every kind of write and read from many goroutines;
// run with -race.
func TestConcurrentUse(t *testing.T) {
	s := newServer(t)
	const workers, each = 8, 10
	for i := 0; i < workers; i++ {
		s.OpenPR(testRepo, i+1, fmt.Sprintf("%040d", i+1), map[string]string{"f.sql": fmt.Sprint(i)})
	}
	c := client(t, s, testInst)
	var wg sync.WaitGroup
	errs := make(chan error, workers*each*4)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(n int) {
			defer wg.Done()
			sha := fmt.Sprintf("%040d", n)
			for i := 0; i < each; i++ {
				cm, _, err := c.Issues.CreateComment(ctx, "acme", "shop", n, &github.IssueComment{Body: github.String(fmt.Sprint(i))})
				if err != nil {
					errs <- err
					continue
				}
				if _, _, err := c.Reactions.CreateIssueCommentReaction(ctx, "acme", "shop", cm.GetID(), "eyes"); err != nil {
					errs <- err
				}
				if _, _, err := c.Checks.CreateCheckRun(ctx, "acme", "shop", github.CreateCheckRunOptions{Name: fmt.Sprint("run", i), HeadSHA: sha}); err != nil {
					errs <- err
				}
				s.AddComment(testRepo, n, "alice", "User", "human")
				_ = s.Comments(testRepo, n)
				_ = s.CheckRuns(testRepo, sha)
				_ = s.Requests()
			}
		}(w + 1)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ids := map[int64]bool{}
	for n := 1; n <= workers; n++ {
		cs := s.Comments(testRepo, n)
		if len(cs) != 2*each {
			t.Errorf("PR %d: %d comments, want %d", n, len(cs), 2*each)
		}
		for _, cm := range cs {
			if ids[cm.GetID()] {
				t.Errorf("comment id %d given twice", cm.GetID())
			}
			ids[cm.GetID()] = true
		}
		if runs := s.CheckRuns(testRepo, fmt.Sprintf("%040d", n)); len(runs) != each {
			t.Errorf("PR %d: %d runs", n, len(runs))
		}
	}
}
