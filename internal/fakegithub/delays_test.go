package fakegithub

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"
)

// A held request reaches the server's state only when released: a request
// sent later overtakes it.
func TestHoldNext(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 7, headSHA, nil)
	c := client(t, s, testInst)
	if _, _, err := c.PullRequests.Get(ctx, "acme", "shop", 7); err != nil { // fetch the token first
		t.Fatal(err)
	}
	h := s.HoldNext(http.MethodPost, "/repos/acme/shop/issues/*/comments")
	t.Cleanup(h.Release)
	done := make(chan error, 1)
	go func() {
		_, _, err := c.Issues.CreateComment(ctx, "acme", "shop", 7, &github.IssueComment{Body: github.String("first")})
		done <- err
	}()
	<-h.Arrived()
	if _, _, err := c.Issues.CreateComment(ctx, "acme", "shop", 7, &github.IssueComment{Body: github.String("second")}); err != nil {
		t.Fatal(err)
	}
	if cs := s.Comments(testRepo, 7); len(cs) != 1 || cs[0].GetBody() != "second" {
		t.Fatalf("while the first is held: %d comments", len(cs))
	}
	h.Release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cs := s.Comments(testRepo, 7)
	if len(cs) != 2 || cs[1].GetBody() != "first" {
		t.Fatalf("after release: %d comments, want second then first", len(cs))
	}
}

// A slow answer changes GitHub at once: a client that gives up waiting has
// still posted its comment.
func TestSetLatencyChangesStateBeforeAnswering(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 7, headSHA, nil)
	c := client(t, s, testInst)
	if _, _, err := c.PullRequests.Get(ctx, "acme", "shop", 7); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	s.SetLatency(func(method, p string) time.Duration {
		if method == http.MethodPost {
			<-release // an answer slower than the client's patience
		}
		return 0
	})
	defer s.SetLatency(nil)
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, _, err := c.Issues.CreateComment(cctx, "acme", "shop", 7, &github.IssueComment{Body: github.String("late")})
		done <- err
	}()
	for len(s.Comments(testRepo, 7)) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("client: %v, want it to have given up", err)
	}
	close(release)
	if cs := s.Comments(testRepo, 7); len(cs) != 1 || cs[0].GetBody() != "late" {
		t.Errorf("comments %v", cs)
	}
}
