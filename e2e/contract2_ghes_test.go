package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/internal/testdb"
)

// ghesProxy serves the fake GitHub under a prefix (/api/v3/, as GitHub
// Enterprise Server serves its REST API), remembers every path asked for,
// and lets a test rewrite answers.
type ghesProxy struct {
	srv   *httptest.Server
	mu    sync.Mutex
	paths []string
}

func newGHESProxy(t *testing.T, gh *fakegithub.Server) *ghesProxy {
	t.Helper()
	return newRewritingProxy(t, gh, "/api/v3/", nil)
}

// newRewritingProxy serves gh under prefix; modify, when not nil, may
// rewrite each answer.
func newRewritingProxy(t *testing.T, gh *fakegithub.Server, prefix string, modify func(*http.Response) error) *ghesProxy {
	t.Helper()
	target, err := url.Parse(gh.URL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ModifyResponse = modify
	p := &ghesProxy{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.paths = append(p.paths, r.URL.Path)
		p.mu.Unlock()
		rest, ok := strings.CutPrefix(r.URL.Path, prefix)
		if !ok {
			http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
			return
		}
		r.URL.Path, r.URL.RawPath = "/"+rest, ""
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *ghesProxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.paths...)
}

// A GitHub Enterprise Server api_url (`http://HOST/api/v3/`, CONTRACT §2):
// every REST call, the App's token exchange included, goes under the
// prefix; webhooks are processed, check runs and comments made, and an
// apply runs.
func TestContract2GitHubEnterpriseServerAPIURL(t *testing.T) {
	w := newWorld(t)
	proxy := newGHESProxy(t, w.gh)
	staging, stagingName := testdb.Open(t, "e2e_c2_ghes")
	if _, err := staging.Exec(usersV1); err != nil {
		t.Fatal(err)
	}
	w.env["SHOP_STAGING_DSN"] = liveDSN(t, stagingName)
	w.gh.SetPermission(repoName, "alice", "write")
	cfg := w.configAt(proxy.srv.URL+"/api/v3/", "  - {repository: acme/shop, database: shop, environment: staging, mysql: {dsn: \"${SHOP_STAGING_DSN}\"}}", "")
	c := &cworld{world: w, cfg: cfg, staging: staging, stagingName: stagingName}
	c.srv = w.serve(cfg)
	yaml := "databases:\n  - name: shop\n    schema_dir: db/shop\n    environments: [staging]\n"
	head := sha(960)
	c.gh.SetBase(repoName, map[string]string{"tern.yaml": yaml})
	c.gh.OpenPR(repoName, 98, head, map[string]string{"tern.yaml": yaml, "db/shop/users.sql": usersV2})
	c.prEvent("opened", 98, head)
	c.waitCheck(head, "tern/shop/staging", "Awaiting apply")
	if len(c.botComments(98)) != 1 {
		t.Errorf("no plan comment through the GHES URL")
	}
	id := c.comment(98, "alice", "/tern apply -e staging")
	c.waitReactions(id, "eyes", "rocket")
	c.waitCheck(head, "tern/shop/staging", "Applied")
	waitFor(t, "the tern check to pass", func() bool { return c.check(head, "tern").GetConclusion() == "success" })
	if columnCount(t, staging, "users", "email") != 1 {
		t.Error("staging lacks users.email")
	}

	paths := proxy.seen()
	var token, checks bool
	for _, p := range paths {
		if !strings.HasPrefix(p, "/api/v3/") {
			t.Errorf("tern called %s, outside the GHES API prefix /api/v3/", p)
		}
		token = token || strings.HasPrefix(p, "/api/v3/app/installations/") && strings.HasSuffix(p, "/access_tokens")
		checks = checks || strings.HasPrefix(p, "/api/v3/repos/acme/shop/check-runs")
	}
	if !token || !checks {
		t.Errorf("through the GHES prefix: token exchange %v, check runs %v; paths: %v", token, checks, paths)
	}
	if n := len(c.gh.Requests()); n != len(paths) {
		t.Errorf("the fake GitHub got %d requests, the GHES prefix %d: some went around it", n, len(paths))
	}
}

// `tern demo` as the built binary, on the test server named by
// TERN_DEMO_DSN (CONTRACT §1): exit 0; the output shows the transient
// fault as `Failed (retrying...)`, then `Applied`, and in the last list of
// check runs every check is `success`.
func TestContract2DemoBinary(t *testing.T) {
	cmd := exec.Command(ternBin, "demo")
	w := &world{t: t, env: map[string]string{}}
	cmd.Env = w.environ("TERN_DEMO_DSN=" + testdb.ServerDSN())
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("tern demo: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	s := string(out)
	retrying := strings.Index(s, "Failed (retrying...)")
	applied := strings.LastIndex(s, "Applied")
	if retrying < 0 || applied < retrying {
		t.Fatalf("demo output lacks `Failed (retrying...)` followed by `Applied`:\n%s", s)
	}
	last := strings.LastIndex(s, "Checks on ")
	if last < 0 {
		t.Fatalf("demo output shows no check runs:\n%s", s)
	}
	var runs int
	for _, l := range strings.Split(s[last:], "\n")[1:] {
		f := strings.Fields(l)
		if len(f) < 3 || !strings.HasPrefix(f[1], "tern") {
			break
		}
		runs++
		if f[2] != "success" {
			t.Errorf("at the end of the demo check %s is %s, want success", f[1], f[2])
		}
	}
	if runs != 3 {
		t.Errorf("the demo's last check list has %d runs, want tern/shop/staging, tern/shop/production and tern:\n%s", runs, s[last:])
	}
	for _, secret := range []string{"pscale_tkn_", "whsec_", "PRIVATE KEY"} {
		if strings.Contains(s, secret) {
			t.Errorf("the demo printed a secret (%s...)", secret)
		}
	}
}
