package fakegithub

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v60/github"
)

const (
	testRepo = "acme/shop"
	testInst = int64(77)
	headSHA  = "1111111111111111111111111111111111111111"
)

// newServer starts a fake GitHub with testRepo installed under testInst.
func newServer(t *testing.T) *Server {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.AddInstallation(testRepo, testInst)
	return s
}

// appsTransport returns ghinstallation's App (JWT) transport for s.
func appsTransport(t *testing.T, s *Server) *ghinstallation.AppsTransport {
	t.Helper()
	atr, err := ghinstallation.NewAppsTransport(http.DefaultTransport, s.AppID, s.PrivateKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	atr.BaseURL = s.URL
	return atr
}

// client returns a go-github client authenticated as installation inst,
// exactly as tern builds it.
func client(t *testing.T, s *Server, inst int64) *github.Client {
	t.Helper()
	itr := ghinstallation.NewFromAppsTransport(appsTransport(t, s), inst)
	itr.BaseURL = s.URL
	return withBase(t, s, github.NewClient(&http.Client{Transport: itr}))
}

// appClient returns a go-github client authenticated with App JWTs.
func appClient(t *testing.T, s *Server) *github.Client {
	t.Helper()
	return withBase(t, s, github.NewClient(&http.Client{Transport: appsTransport(t, s)}))
}

func withBase(t *testing.T, s *Server, c *github.Client) *github.Client {
	t.Helper()
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	c.BaseURL = u
	return c
}

// status returns the HTTP status of a go-github error, or 0.
func status(err error) int {
	var er *github.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return er.Response.StatusCode
	}
	return 0
}

func TestSmoke(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 7, headSHA, map[string]string{"tern.yaml": "databases: []\n"})
	c := client(t, s, testInst)
	pr, _, err := c.PullRequests.Get(context.Background(), "acme", "shop", 7)
	if err != nil {
		t.Fatal(err)
	}
	if pr.GetHead().GetSHA() != headSHA {
		t.Fatalf("head sha %q", pr.GetHead().GetSHA())
	}
}
