package fakegithub

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
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

var ctx = context.Background()

// signJWT signs claims with the App key of s, as an App would.
func signJWT(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// rawDo sends one request with the given Authorization header value and
// returns its status and decoded error message.
func rawDo(t *testing.T, s *Server, method, path, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Message          string `json:"message"`
		DocumentationURL string `json:"documentation_url"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	if resp.StatusCode >= 400 && (e.Message == "" || e.DocumentationURL == "") {
		t.Errorf("%s %s: error body lacks message or documentation_url: %+v", method, path, e)
	}
	return resp.StatusCode, e.Message
}

// installationToken returns a fresh installation token for inst.
func installationToken(t *testing.T, s *Server, inst int64) string {
	t.Helper()
	tok, _, err := appClient(t, s).Apps.CreateInstallationToken(ctx, inst, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tok.GetToken()
}

func asErr(err error, target any) bool { return err != nil && errors.As(err, target) }
