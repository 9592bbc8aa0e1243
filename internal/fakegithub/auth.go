package fakegithub

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"
)

const (
	docAuth   = "https://docs.github.com/rest"
	docTokens = "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app"
)

// credentials returns the token from the Authorization header ("token X" or
// "Bearer X"), or "".
func credentials(r *http.Request) string {
	h := r.Header.Get("Authorization")
	for _, p := range []string{"token ", "Bearer ", "bearer "} {
		if strings.HasPrefix(h, p) {
			return strings.TrimSpace(h[len(p):])
		}
	}
	return ""
}

func looksLikeJWT(tok string) bool { return strings.Count(tok, ".") == 2 }

// verifyJWT checks an App JWT as GitHub does: RS256 signed by the App key,
// iss = AppID, exp in the future and at most 10 minutes after iat.
func (s *Server) verifyJWT(tok string) error {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return errors.New("not a JWT")
	}
	var header struct {
		Alg string `json:"alg"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return err
	}
	if header.Alg != "RS256" {
		return fmt.Errorf("alg %q is not RS256", header.Alg)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&s.key.PublicKey, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	var claims struct {
		Iss json.RawMessage `json:"iss"`
		Iat *float64        `json:"iat"`
		Exp *float64        `json:"exp"`
	}
	if err := decodeSegment(parts[1], &claims); err != nil {
		return err
	}
	if strings.Trim(string(claims.Iss), `"`) != strconv.FormatInt(s.AppID, 10) {
		return fmt.Errorf("'Issuer' claim ('iss') %s is not this App", claims.Iss)
	}
	if claims.Exp == nil || claims.Iat == nil {
		return errors.New("'Expiration time' and 'Issued at' claims are required")
	}
	now := float64(time.Now().Unix())
	if *claims.Exp <= now {
		return errors.New("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires")
	}
	if *claims.Iat > now+60 {
		return errors.New("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued")
	}
	if *claims.Exp-*claims.Iat > 600 {
		return errors.New("'Expiration time' claim ('exp') is too far in the future")
	}
	return nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return fmt.Errorf("segment: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("segment: %w", err)
	}
	return nil
}

// appAuth answers 401 and reports false unless the request carries a valid
// App JWT.
func (s *Server) appAuth(w http.ResponseWriter, r *http.Request) bool {
	tok := credentials(r)
	if tok == "" {
		writeError(w, http.StatusUnauthorized, "A JSON web token could not be decoded", docAuth)
		return false
	}
	if err := s.verifyJWT(tok); err != nil {
		writeError(w, http.StatusUnauthorized, "A JSON web token could not be decoded", docAuth)
		return false
	}
	return true
}

// repoAuth resolves {owner}/{repo} for an installation token, answering
// 401 for missing, unknown or expired credentials, 403 for an App JWT, and
// 404 where the token's installation does not cover the repository. s.mu
// must be held.
func (s *Server) repoAuth(w http.ResponseWriter, r *http.Request) (*repo, bool) {
	tok := credentials(r)
	if tok == "" {
		writeError(w, http.StatusUnauthorized, "Requires authentication", docAuth)
		return nil, false
	}
	t, ok := s.tokens[tok]
	if !ok || time.Now().After(t.expires) {
		if looksLikeJWT(tok) && s.verifyJWT(tok) == nil {
			writeError(w, http.StatusForbidden, "Resource not accessible by integration", docAuth)
			return nil, false
		}
		writeError(w, http.StatusUnauthorized, "Bad credentials", docAuth)
		return nil, false
	}
	k := repoKey(r.PathValue("owner") + "/" + r.PathValue("repo"))
	rp, ok := s.repos[k]
	if !ok || rp.installationID != t.installationID || (t.repos != nil && !t.repos[k]) {
		writeError(w, http.StatusNotFound, "Not Found", docRoot)
		return nil, false
	}
	return rp, true
}

// withRepo wraps a repository route: it takes the lock and authenticates.
func (s *Server) withRepo(h func(http.ResponseWriter, *http.Request, *repo)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		rp, ok := s.repoAuth(w, r)
		if !ok {
			return
		}
		h(w, r, rp)
	}
}

// withApp wraps an App route: it takes the lock and checks the App JWT.
func (s *Server) withApp(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.appAuth(w, r) {
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		h(w, r)
	}
}

func (s *Server) installationObj(id int64) *github.Installation {
	inst := &github.Installation{
		ID:                  github.Int64(id),
		AppID:               github.Int64(s.AppID),
		AppSlug:             github.String("tern"),
		TargetType:          github.String("Organization"),
		RepositorySelection: github.String("selected"),
		AccessTokensURL:     github.String(fmt.Sprintf("%sapp/installations/%d/access_tokens", s.URL, id)),
	}
	if repos := s.installations[id]; len(repos) > 0 {
		owner, _, _ := strings.Cut(s.repos[repos[0]].fullName, "/")
		inst.Account = &github.User{Login: github.String(owner), Type: github.String("Organization")}
	}
	return inst
}

func (s *Server) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	repos, ok := s.installations[id]
	if err != nil || !ok {
		writeError(w, http.StatusNotFound, "Not Found", docTokens)
		return
	}
	var opts github.InstallationTokenOptions
	if err := json.NewDecoder(r.Body).Decode(&opts); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "Problems parsing JSON", docTokens)
		return
	}
	t := token{installationID: id, expires: time.Now().Add(time.Hour)}
	if len(opts.Repositories) > 0 || len(opts.RepositoryIDs) > 0 {
		t.repos = map[string]bool{}
		for _, name := range opts.Repositories {
			found := false
			for _, k := range repos {
				rp := s.repos[k]
				if _, n, _ := strings.Cut(rp.fullName, "/"); strings.EqualFold(n, name) {
					t.repos[k], found = true, true
				}
			}
			if !found {
				writeValidation(w, docTokens, "Installation", "repositories", "invalid", "There is at least one repository that does not exist or is not accessible to the parent installation.")
				return
			}
		}
		for _, rid := range opts.RepositoryIDs {
			found := false
			for _, k := range repos {
				if s.repos[k].id == rid {
					t.repos[k], found = true, true
				}
			}
			if !found {
				writeValidation(w, docTokens, "Installation", "repository_ids", "invalid", "There is at least one repository that does not exist or is not accessible to the parent installation.")
				return
			}
		}
	}
	raw := make([]byte, 27)
	if _, err := rand.Read(raw); err != nil {
		writeError(w, http.StatusInternalServerError, "Server Error", docRoot)
		return
	}
	secret := "ghs_" + base64.RawURLEncoding.EncodeToString(raw)
	s.tokens[secret] = t
	out := &github.InstallationToken{
		Token:     github.String(secret),
		ExpiresAt: &github.Timestamp{Time: t.expires.UTC().Truncate(time.Second)},
		Permissions: &github.InstallationPermissions{
			Checks: github.String("write"), Contents: github.String("read"),
			Issues: github.String("write"), PullRequests: github.String("write"),
			Metadata: github.String("read"),
		},
	}
	for _, k := range repos {
		if t.repos == nil || t.repos[k] {
			rp := s.repos[k]
			out.Repositories = append(out.Repositories, &github.Repository{ID: github.Int64(rp.id), FullName: github.String(rp.fullName)})
		}
	}
	writeJSON(w, http.StatusCreated, out)
}

func (s *Server) handleGetInstallation(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if _, ok := s.installations[id]; err != nil || !ok {
		writeError(w, http.StatusNotFound, "Not Found", docRoot)
		return
	}
	writeJSON(w, http.StatusOK, s.installationObj(id))
}

func (s *Server) handleListInstallations(w http.ResponseWriter, r *http.Request) {
	ids := make([]int64, 0, len(s.installations))
	for id := range s.installations {
		ids = append(ids, id)
	}
	sortInt64(ids)
	out := make([]*github.Installation, 0, len(ids))
	for _, id := range ids {
		out = append(out, s.installationObj(id))
	}
	writeJSON(w, http.StatusOK, paginate(w, r, out))
}

func (s *Server) handleRepoInstallation(w http.ResponseWriter, r *http.Request) {
	rp, ok := s.repos[repoKey(r.PathValue("owner")+"/"+r.PathValue("repo"))]
	if !ok || rp.installationID == 0 {
		writeError(w, http.StatusNotFound, "Not Found", docRoot)
		return
	}
	writeJSON(w, http.StatusOK, s.installationObj(rp.installationID))
}

func (s *Server) handleGetApp(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, &github.App{ID: github.Int64(s.AppID), Slug: github.String("tern"), Name: github.String("tern")})
}
