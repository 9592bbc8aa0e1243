package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/fakeps"
	"github.com/ternhq/tern/store"
)

// Production on PlanetScale (CONTRACT §2 `planetscale:` target) through
// `tern serve`: staging (MySQL) is applied, then `/tern apply -e
// production` goes through one deploy request and ends `Applied`, with
// the change live on the main branch and the tern check passing. A
// transient PlanetScale fault after the deploy request exists (a 422
// "unprocessable" or a 503 on the deploy call) leaves production `Failed
// (retrying...)`; one `tern recover` pass finishes it, `Applied`, without
// a second deploy request. The service token appears nowhere.
func TestContract2PlanetScaleProduction(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int // fault on the deploy call; 0 for none
	}{
		{"clean", 0},
		{"unprocessable then recover", 422},
		{"unavailable then recover", 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ps := newContractPS(t, fmt.Sprintf(fastRecovery, 3))
			head := sha(800 + tc.status)
			c.openPR(80, head, shopFiles(usersV2))
			c.waitCheck(head, "tern/shop/production", "Waiting for staging")
			c.wantCheck(head, "tern/shop/staging", "completed", "action_required", "Awaiting apply")

			c.comment(80, "alice", "/tern apply -e staging")
			c.waitCheck(head, "tern/shop/staging", "Applied")
			c.waitCheck(head, "tern/shop/production", "Awaiting apply")
			c.wantCheck(head, "tern/shop/production", "completed", "action_required", "Awaiting apply")
			if columnCount(t, c.prod, "users", "email") != 0 {
				t.Fatal("PlanetScale main changed before its apply")
			}

			if tc.status != 0 {
				ps.FailNext(fakeps.RouteDeploy, tc.status, 1)
			}
			id := c.comment(80, "alice", "/tern apply -e production")
			c.waitReactions(id, "eyes")
			if tc.status != 0 {
				run := c.waitCheck(head, "tern/shop/production", "Failed (retrying...)")
				if !retryingTitle(1, 3).MatchString(run.GetOutput().GetTitle()) || run.GetStatus() != "in_progress" {
					t.Errorf("retrying run %s %q, want in_progress %q", run.GetStatus(), run.GetOutput().GetTitle(), "Failed (retrying...) attempt 1/3, next retry ~HH:MM UTC")
				}
				c.waitApplyState(80, "production", store.FailedRetryable)
				if columnCount(t, c.prod, "users", "email") != 0 {
					t.Fatal("PlanetScale main changed though the deploy call failed")
				}
				if n := ps.DeployRequestsCreated(); n != 1 {
					t.Fatalf("%d deploy requests before the retry, want 1", n)
				}
				c.waitDue(80, "production")
				stdout, sum := c.recoverPass(c.cfg)
				c.noPSToken("tern recover", stdout)
				if sum != (summary{Recovered: 1}) {
					t.Errorf("recover summary %+v, want recovered=1\n%s", sum, stdout)
				}
			}
			c.waitCheck(head, "tern/shop/production", "Applied")
			c.wantCheck(head, "tern/shop/production", "completed", "success", "Applied")
			c.waitReactions(id, "eyes", "rocket")
			if columnCount(t, c.prod, "users", "email") != 1 {
				t.Error("PlanetScale main lacks users.email after Applied")
			}
			if n := ps.DeployRequestsCreated(); n != 1 {
				t.Errorf("%d deploy requests created for one apply, want 1", n)
			}
			if n := ps.Deploys(); n != 1 {
				t.Errorf("%d deploys for one apply, want 1", n)
			}
			waitFor(t, "the tern check to pass", func() bool { return c.check(head, "tern").GetConclusion() == "success" })
			if a := c.latestApply(80, "production"); a.State != store.Completed {
				t.Errorf("production apply %s, want completed", a.State)
			}
			if tc.status != 0 {
				waitFor(t, "the outcome comment", func() bool { return len(c.botCommentsWith(80, "applied after 2 attempts")) == 1 })
			}
			for _, cm := range c.botComments(80) {
				if strings.Contains(cm.GetBody(), psToken) {
					t.Errorf("a comment shows the PlanetScale service token:\n%s", cm.GetBody())
				}
			}
			for _, r := range c.gh.CheckRuns(repoName, head) {
				if o := r.GetOutput(); strings.Contains(o.GetTitle()+o.GetSummary()+o.GetText(), psToken) {
					t.Errorf("check run %s shows the PlanetScale service token", r.GetName())
				}
			}
			if r := c.gh.ReopenedRuns(); len(r) != 0 {
				t.Errorf("completed check runs reopened: %+v", r)
			}
			if tc.status != 0 {
				return
			}
			// Closed unmerged: the changes live on PlanetScale's main
			// branch (production) and on staging are named, with the DDL.
			all := c.botComments(80)
			last := all[len(all)-1].GetID()
			c.gh.ClosePR(repoName, 80, false)
			c.prEvent("closed", 80, head)
			waitFor(t, "the comment about live, unmerged changes", func() bool {
				for _, cm := range c.botCommentsAfter(80, last) {
					b := cm.GetBody()
					if strings.Contains(b, "production") && strings.Contains(b, "staging") &&
						strings.Contains(strings.ToLower(b), "add column") && !strings.Contains(b, "/tern apply") {
						return true
					}
				}
				return false
			})
			if l, _ := c.st.LocksForPR(context.Background(), repoName, 80); len(l) != 0 {
				t.Errorf("closed #80 still holds %+v", l)
			}
		})
	}
}
