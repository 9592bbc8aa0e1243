package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/store"
)

// The contract tests drive `tern serve` and `tern recover` as a scenario
// writer holding only CONTRACT.md would: signed webhooks in, GitHub's REST
// state (comments, reactions, check runs) and the live schemas out.

const (
	// contractYAML is a tern.yaml promoting shop from staging to production.
	contractYAML = "databases:\n  - name: shop\n    schema_dir: db/shop\n    environments: [staging, production]\n"
	// usersV3 adds a column and an index on top of usersV2.
	usersV3 = "CREATE TABLE users (\n  id BIGINT NOT NULL AUTO_INCREMENT,\n  name VARCHAR(100) NOT NULL,\n  email VARCHAR(255) NOT NULL DEFAULT '',\n  nick VARCHAR(50) NULL,\n  PRIMARY KEY (id)\n);\n"
)

// shopFiles is a PR head's tree: tern.yaml and db/shop/users.sql.
func shopFiles(users string) map[string]string {
	return map[string]string{"tern.yaml": contractYAML, "db/shop/users.sql": users, "README.md": "shop\n"}
}

// sha returns a 40-hex commit id made from n.
func sha(n int) string { return fmt.Sprintf("%040x", 0xc0de0000+n) }

// cworld is a world with a running `tern serve` over two MySQL targets,
// shop/staging and shop/production, each a live schema holding usersV1.
type cworld struct {
	*world
	cfg           string
	srv           *server
	staging, prod *sql.DB
	stagingName   string
}

// newContract starts the scenario. recovery is the config's recovery body
// (indented two spaces per line); lockWait is the targets' lock_wait_timeout.
func newContract(t *testing.T, recovery, lockWait string) *cworld {
	t.Helper()
	return newContractWith(t, recovery, lockWait, "")
}

// newContractWith is newContract with production's DSN replaced by
// prodDSN when it is not empty.
func newContractWith(t *testing.T, recovery, lockWait, prodDSN string) *cworld {
	t.Helper()
	w := newWorld(t)
	staging, stagingName := testdb.Open(t, "e2e_c_staging")
	prod, prodName := testdb.Open(t, "e2e_c_prod")
	for _, db := range []*sql.DB{staging, prod} {
		if _, err := db.Exec(usersV1); err != nil {
			t.Fatal(err)
		}
	}
	w.env["SHOP_STAGING_DSN"] = liveDSN(t, stagingName)
	w.env["SHOP_PRODUCTION_DSN"] = liveDSN(t, prodName)
	if prodDSN != "" {
		w.env["SHOP_PRODUCTION_DSN"] = prodDSN
	}
	targets := fmt.Sprintf(`  - repository: acme/shop
    database: shop
    environment: staging
    mysql:
      dsn: ${SHOP_STAGING_DSN}
      lock_wait_timeout: %[1]s
  - repository: acme/shop
    database: shop
    environment: production
    mysql:
      dsn: ${SHOP_PRODUCTION_DSN}
      lock_wait_timeout: %[1]s`, lockWait)
	cfg := w.config(targets, recovery)
	for _, u := range []struct{ login, role string }{
		{"alice", "write"}, {"maggie", "maintain"}, {"adam", "admin"},
		{"trish", "triage"}, {"mallory", "read"},
	} {
		w.gh.SetPermission(repoName, u.login, u.role)
	}
	c := &cworld{world: w, cfg: cfg, staging: staging, prod: prod, stagingName: stagingName}
	c.srv = w.serve(cfg)
	t.Cleanup(func() { w.noSecrets("tern serve", c.srv.stdout.String()+c.srv.stderr.String()) })
	return c
}

// prEvent delivers a pull_request event for PR n at head and waits until
// it is processed.
func (c *cworld) prEvent(action string, n int, head string) {
	c.t.Helper()
	body, err := fakegithub.PRPayload(action, repoName, n, head, installation)
	if err != nil {
		c.t.Fatal(err)
	}
	c.waitDelivered(c.deliver(c.srv, "pull_request", body))
}

// openPR opens PR n at head with files and delivers "opened". Its base
// commit holds the same tern.yaml and no schema files (see baseOf).
func (c *cworld) openPR(n int, head string, files map[string]string) {
	c.t.Helper()
	c.gh.SetBase(repoName, baseOf(files))
	c.gh.OpenPR(repoName, n, head, files)
	c.prEvent("opened", n, head)
}

// comment posts body on PR n as user (a User), delivers it and waits until
// it is processed; it returns the comment's id.
func (c *cworld) comment(n int, user, body string) int64 {
	c.t.Helper()
	return c.commentAs(n, user, "User", body, nil)
}

// commentAs is comment with the author's type and extra payload edits.
func (c *cworld) commentAs(n int, user, userType, body string, edits map[string]any) int64 {
	c.t.Helper()
	cm := c.gh.AddComment(repoName, n, user, userType, body)
	payload, err := fakegithub.CommentPayload(repoName, n, cm.GetID(), user, userType, body, installation)
	if err != nil {
		c.t.Fatal(err)
	}
	if edits != nil {
		if payload, err = fakegithub.Edit(payload, edits); err != nil {
			c.t.Fatal(err)
		}
	}
	c.waitDelivered(c.deliver(c.srv, "issue_comment", payload))
	return cm.GetID()
}

// botComments returns the bodies of the App's comments on PR n, oldest first.
func (c *cworld) botComments(n int) []*github.IssueComment {
	var out []*github.IssueComment
	for _, cm := range c.gh.Comments(repoName, n) {
		if cm.GetUser().GetLogin() == fakegithub.BotLogin {
			out = append(out, cm)
		}
	}
	return out
}

// botCommentsWith returns the App's comments on PR n that contain s.
func (c *cworld) botCommentsWith(n int, s string) []*github.IssueComment {
	var out []*github.IssueComment
	for _, cm := range c.botComments(n) {
		if strings.Contains(cm.GetBody(), s) {
			out = append(out, cm)
		}
	}
	return out
}

// replyAfter waits for the App's first comment on PR n created after the
// comment id (a reply to it) and returns its body.
func (c *cworld) replyAfter(n int, id int64) string {
	c.t.Helper()
	var body string
	waitFor(c.t, fmt.Sprintf("a reply to comment %d", id), func() bool {
		for _, cm := range c.botComments(n) {
			if cm.GetID() > id {
				body = cm.GetBody()
				return true
			}
		}
		return false
	})
	return body
}

// check returns the newest check run named name on head (nil if none).
func (c *cworld) check(head, name string) *github.CheckRun {
	return c.gh.LatestCheckRun(repoName, head, name)
}

// waitCheck waits until the newest run named name on head has a title
// beginning with prefix, and returns it.
func (c *cworld) waitCheck(head, name, prefix string) *github.CheckRun {
	c.t.Helper()
	var run *github.CheckRun
	waitFor(c.t, fmt.Sprintf("check %s on %.7s titled %q...", name, head, prefix), func() bool {
		run = c.check(head, name)
		return run != nil && strings.HasPrefix(run.GetOutput().GetTitle(), prefix)
	})
	return run
}

// wantCheck fails the test unless the newest run named name on head has
// the status, conclusion and title prefix of CONTRACT §5's table.
func (c *cworld) wantCheck(head, name, status, conclusion, prefix string) {
	c.t.Helper()
	run := c.check(head, name)
	if run == nil {
		c.t.Errorf("no check run %s on %.7s, want %s/%s %q", name, head, status, conclusion, prefix)
		return
	}
	if run.GetStatus() != status || run.GetConclusion() != conclusion || !strings.HasPrefix(run.GetOutput().GetTitle(), prefix) {
		c.t.Errorf("check %s on %.7s is %s/%s %q, want %s/%s %q...", name, head,
			run.GetStatus(), run.GetConclusion(), run.GetOutput().GetTitle(), status, conclusion, prefix)
	}
}

// waitReactions waits until comment id carries every one of want.
func (c *cworld) waitReactions(id int64, want ...string) {
	c.t.Helper()
	waitFor(c.t, fmt.Sprintf("reactions %v on comment %d", want, id), func() bool {
		got := c.gh.Reactions(repoName, id)
		for _, w := range want {
			found := false
			for _, g := range got {
				found = found || g == w
			}
			if !found {
				return false
			}
		}
		return true
	})
}

// latestApply returns PR n's newest apply to shop/env.
func (c *cworld) latestApply(n int, env string) *store.Apply {
	c.t.Helper()
	a, err := c.st.LatestApply(context.Background(), repoName, n, "shop", env)
	if err != nil {
		c.t.Fatalf("latest apply of #%d to %s: %v", n, env, err)
	}
	return a
}

// waitApplyState waits until PR n's newest apply to env is in state.
func (c *cworld) waitApplyState(n int, env string, state store.State) *store.Apply {
	c.t.Helper()
	var a *store.Apply
	waitFor(c.t, fmt.Sprintf("#%d's apply to %s %s", n, env, state), func() bool {
		got, err := c.st.LatestApply(context.Background(), repoName, n, "shop", env)
		if err != nil {
			return false
		}
		a = got
		return a.State == state
	})
	return a
}

// holdTable holds a metadata lock on table in db until the returned func
// is called (once; later calls do nothing).
func holdTable(t *testing.T, db *sql.DB, table string) func() {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("SELECT * FROM " + table); err != nil {
		t.Fatal(err)
	}
	done := false
	release := func() {
		if !done {
			done = true
			tx.Rollback()
		}
	}
	t.Cleanup(release)
	return release
}

// waitDue waits until PR n's newest apply to env is due for a retry.
func (c *cworld) waitDue(n int, env string) {
	c.t.Helper()
	waitFor(c.t, "the retry to fall due", func() bool {
		a := c.latestApply(n, env)
		return a.NextAttemptAt.IsZero() || !time.Now().Before(a.NextAttemptAt)
	})
}

// baseOf is the base tree for a PR whose head tree is files: the same
// tern.yaml (none when files has none) and no schema files, as in a
// repository where tern is set up and the PR brings the schema change.
func baseOf(files map[string]string) map[string]string {
	if y, ok := files["tern.yaml"]; ok {
		return map[string]string{"tern.yaml": y}
	}
	return map[string]string{}
}
