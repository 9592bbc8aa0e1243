package fakegithub

import (
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v60/github"
)

func TestInstallationTokenThroughGhinstallation(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 1, headSHA, map[string]string{"a.sql": "x"})
	c := client(t, s, testInst)
	for i := 0; i < 3; i++ { // the transport caches its token
		if _, _, err := c.PullRequests.Get(ctx, "acme", "shop", 1); err != nil {
			t.Fatal(err)
		}
	}
	tokens := 0
	for _, r := range s.Requests() {
		if r.Method == http.MethodPost && r.Path == "/app/installations/77/access_tokens" {
			tokens++
			if r.Status != http.StatusCreated {
				t.Errorf("access_tokens answered %d", r.Status)
			}
		}
	}
	if tokens != 1 {
		t.Errorf("access_tokens called %d times, want 1", tokens)
	}
}

func TestCreateTokenAnswer(t *testing.T) {
	s := newServer(t)
	tok, _, err := appClient(t, s).Apps.CreateInstallationToken(ctx, testInst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok.GetToken()) < 20 || tok.GetToken()[:4] != "ghs_" {
		t.Errorf("token %q does not look like an installation token", tok.GetToken())
	}
	if !tok.GetExpiresAt().After(time.Now()) {
		t.Errorf("token expires at %v, in the past", tok.GetExpiresAt())
	}
	if len(tok.Repositories) != 1 || tok.Repositories[0].GetFullName() != testRepo {
		t.Errorf("repositories %v", tok.Repositories)
	}
}

func TestAppRoutes(t *testing.T) {
	s := newServer(t)
	c := appClient(t, s)
	inst, _, err := c.Apps.GetInstallation(ctx, testInst)
	if err != nil {
		t.Fatal(err)
	}
	if inst.GetID() != testInst || inst.GetAppID() != s.AppID || inst.GetAccount().GetLogin() != "acme" {
		t.Errorf("installation %v", inst)
	}
	found, _, err := c.Apps.FindRepositoryInstallation(ctx, "acme", "shop")
	if err != nil || found.GetID() != testInst {
		t.Errorf("FindRepositoryInstallation = %v, %v", found, err)
	}
	list, _, err := c.Apps.ListInstallations(ctx, nil)
	if err != nil || len(list) != 1 {
		t.Errorf("ListInstallations = %v, %v", list, err)
	}
	if _, _, err := c.Apps.GetInstallation(ctx, 999); status(err) != http.StatusNotFound {
		t.Errorf("unknown installation: %v, want 404", err)
	}
	if _, _, err := c.Apps.CreateInstallationToken(ctx, 999, nil); status(err) != http.StatusNotFound {
		t.Errorf("token for unknown installation: %v, want 404", err)
	}
}

func TestJWTRejections(t *testing.T) {
	s := newServer(t)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	iss := strconv.FormatInt(s.AppID, 10)
	const path = "app/installations/77/access_tokens"
	tests := []struct {
		name string
		auth string
		want int
	}{
		{"valid", "Bearer " + signJWT(t, s.key, map[string]any{"iss": iss, "iat": now - 30, "exp": now + 90}), http.StatusCreated},
		{"numeric iss", "Bearer " + signJWT(t, s.key, map[string]any{"iss": s.AppID, "iat": now - 30, "exp": now + 90}), http.StatusCreated},
		{"missing", "", http.StatusUnauthorized},
		{"garbage", "Bearer not.a.jwt", http.StatusUnauthorized},
		{"other key", "Bearer " + signJWT(t, other, map[string]any{"iss": iss, "iat": now - 30, "exp": now + 90}), http.StatusUnauthorized},
		{"other app", "Bearer " + signJWT(t, s.key, map[string]any{"iss": "1", "iat": now - 30, "exp": now + 90}), http.StatusUnauthorized},
		{"expired", "Bearer " + signJWT(t, s.key, map[string]any{"iss": iss, "iat": now - 700, "exp": now - 100}), http.StatusUnauthorized},
		{"over ten minutes", "Bearer " + signJWT(t, s.key, map[string]any{"iss": iss, "iat": now, "exp": now + 3600}), http.StatusUnauthorized},
		{"no exp", "Bearer " + signJWT(t, s.key, map[string]any{"iss": iss, "iat": now}), http.StatusUnauthorized},
		{"installation token", "token " + installationToken(t, s, testInst), http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, msg := rawDo(t, s, http.MethodPost, path, tt.auth); got != tt.want {
				t.Errorf("status %d (%s), want %d", got, msg, tt.want)
			}
		})
	}
}

func TestRepoAuthRejections(t *testing.T) {
	s := newServer(t)
	s.AddInstallation("other/repo", 88)
	s.OpenPR(testRepo, 1, headSHA, map[string]string{"a": "b"})
	s.OpenPR("other/repo", 1, headSHA, map[string]string{"a": "b"})
	now := time.Now().Unix()
	jwt := signJWT(t, s.key, map[string]any{"iss": strconv.FormatInt(s.AppID, 10), "iat": now - 30, "exp": now + 90})
	tok := installationToken(t, s, testInst)
	tests := []struct {
		name, path, auth string
		want             int
	}{
		{"own repo", "repos/acme/shop/pulls/1", "token " + tok, http.StatusOK},
		{"bearer form", "repos/acme/shop/pulls/1", "Bearer " + tok, http.StatusOK},
		{"case-insensitive repo", "repos/ACME/Shop/pulls/1", "token " + tok, http.StatusOK},
		{"missing", "repos/acme/shop/pulls/1", "", http.StatusUnauthorized},
		{"bad token", "repos/acme/shop/pulls/1", "token ghs_nope", http.StatusUnauthorized},
		{"app jwt", "repos/acme/shop/pulls/1", "Bearer " + jwt, http.StatusForbidden},
		{"other installation", "repos/other/repo/pulls/1", "token " + tok, http.StatusNotFound},
		{"unknown repo", "repos/nobody/nothing/pulls/1", "token " + tok, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, msg := rawDo(t, s, http.MethodGet, tt.path, tt.auth); got != tt.want {
				t.Errorf("status %d (%s), want %d", got, msg, tt.want)
			}
		})
	}
}

func TestTokenRestrictedToRepositories(t *testing.T) {
	s := newServer(t)
	s.AddInstallation("acme/other", testInst)
	s.OpenPR(testRepo, 1, headSHA, map[string]string{"a": "b"})
	s.OpenPR("acme/other", 1, headSHA, map[string]string{"a": "b"})
	app := appClient(t, s)
	tok, _, err := app.Apps.CreateInstallationToken(ctx, testInst, &github.InstallationTokenOptions{Repositories: []string{"shop"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := rawDo(t, s, http.MethodGet, "repos/acme/shop/pulls/1", "token "+tok.GetToken()); got != http.StatusOK {
		t.Errorf("named repo: %d", got)
	}
	if got, _ := rawDo(t, s, http.MethodGet, "repos/acme/other/pulls/1", "token "+tok.GetToken()); got != http.StatusNotFound {
		t.Errorf("repo outside the token: %d, want 404", got)
	}
	_, _, err = app.Apps.CreateInstallationToken(ctx, testInst, &github.InstallationTokenOptions{Repositories: []string{"elsewhere"}})
	if status(err) != http.StatusUnprocessableEntity {
		t.Errorf("token for a repo outside the installation: %v, want 422", err)
	}
}

func TestGhinstallationSurfacesUnknownInstallation(t *testing.T) {
	s := newServer(t)
	c := client(t, s, 999)
	_, _, err := c.PullRequests.Get(ctx, "acme", "shop", 1)
	var he *ghinstallation.HTTPError
	if !errors.As(err, &he) || he.Response == nil || he.Response.StatusCode != http.StatusNotFound {
		t.Errorf("err = %v, want ghinstallation 404", err)
	}
}
