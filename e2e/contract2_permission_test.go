package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/testdb"
)

// permissionAnswers are the collaborator-permission answers the proxy
// gives instead of the fake's: login -> {role_name, permission}, "" for a
// field GitHub left out.
var permissionAnswers = map[string][2]string{
	"olduser":  {"", "write"},         // an older GitHub Enterprise Server: no role_name
	"deployer": {"deployer", "write"}, // a custom repository role based on write
	"reader":   {"", "read"},
	"auditor":  {"auditor", "read"}, // a custom role based on read
}

// rewritePermission rewrites collaborator-permission answers for the
// logins of permissionAnswers.
func rewritePermission(resp *http.Response) error {
	p := resp.Request.URL.Path
	i := strings.Index(p, "/collaborators/")
	if i < 0 || !strings.HasSuffix(p, "/permission") {
		return nil
	}
	login := strings.TrimSuffix(p[i+len("/collaborators/"):], "/permission")
	ans, ok := permissionAnswers[login]
	if !ok {
		return nil
	}
	old, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	var body map[string]any
	if err := json.Unmarshal(old, &body); err != nil {
		return err
	}
	delete(body, "role_name")
	if ans[0] != "" {
		body["role_name"] = ans[0]
	}
	body["permission"] = ans[1]
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	return nil
}

// Permission (CONTRACT §4) is role_name, falling back to permission where
// role_name is absent: a user whose answer carries only permission write
// may apply, one with only read is refused naming write. A custom
// repository role (role_name none of the five) is judged by the base
// permission GitHub reports beside it.
func TestContract2PermissionFallback(t *testing.T) {
	w := newWorld(t)
	proxy := newRewritingProxy(t, w.gh, "/", rewritePermission)
	staging, stagingName := testdb.Open(t, "e2e_c2_perm")
	if _, err := staging.Exec(usersV1); err != nil {
		t.Fatal(err)
	}
	w.env["SHOP_STAGING_DSN"] = liveDSN(t, stagingName)
	cfg := w.configAt(proxy.srv.URL+"/", "  - {repository: acme/shop, database: shop, environment: staging, mysql: {dsn: \"${SHOP_STAGING_DSN}\"}}", "")
	c := &cworld{world: w, cfg: cfg, staging: staging, stagingName: stagingName}
	c.srv = w.serve(cfg)
	yaml := "databases:\n  - name: shop\n    schema_dir: db/shop\n    environments: [staging]\n"
	for i, tc := range []struct {
		user    string
		allowed bool
	}{
		{"reader", false},
		{"auditor", false},
		{"olduser", true},
		{"deployer", true},
	} {
		func() {
			n := 100 + i
			head := sha(1000 + i)
			c.gh.SetBase(repoName, map[string]string{"tern.yaml": yaml})
			c.gh.OpenPR(repoName, n, head, map[string]string{"tern.yaml": yaml, "db/shop/users.sql": usersV2})
			c.prEvent("opened", n, head)
			c.waitCheck(head, "tern/shop/staging", "Awaiting apply")
			// /tern unlock needs write as much as apply does, and changes
			// nothing here: the PR holds no lock.
			id := c.comment(n, tc.user, "/tern unlock -e staging")
			if !tc.allowed {
				c.waitReactions(id, "confused")
				if reply := c.replyAfter(n, id); !strings.Contains(reply, "write") {
					t.Errorf("refusal of %s does not name write:\n%s", tc.user, reply)
				}
				return
			}
			waitFor(t, tc.user+"'s command answered", func() bool { return c.hasReaction(id, "rocket") || c.hasReaction(id, "confused") })
			if c.hasReaction(id, "confused") {
				t.Errorf("%s (permission write) was refused: %s", tc.user, c.replyAfter(n, id))
			}
		}()
	}
}
