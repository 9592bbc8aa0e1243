package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/store"
)

// While the DDL runs (here: waits on a metadata lock) the environment's
// run is in_progress `Applying` and tern does not pass (CONTRACT §5); the
// same run is completed in place as `Applied`.
func TestContract2ApplyingInProgress(t *testing.T) {
	c := newContract(t, fmt.Sprintf(fastRecovery, 3), "60s")
	head := sha(1100)
	c.openPR(110, head, shopFiles(usersV2))
	c.waitCheck(head, "tern/shop/staging", "Awaiting apply")
	release := holdTable(t, c.staging, "users")
	c.comment(110, "alice", "/tern apply -e staging")
	run := c.waitCheck(head, "tern/shop/staging", "Applying")
	if run.GetStatus() != "in_progress" || run.GetConclusion() != "" {
		t.Errorf("applying run is %s/%s, want in_progress", run.GetStatus(), run.GetConclusion())
	}
	if agg := c.check(head, "tern"); agg.GetConclusion() == "success" {
		t.Error("tern passes while staging is applying")
	}
	release()
	done := c.waitCheck(head, "tern/shop/staging", "Applied")
	c.wantCheck(head, "tern/shop/staging", "completed", "success", "Applied")
	if done.GetID() != run.GetID() {
		t.Errorf("Applied is run %d, want the Applying run %d completed in place", done.GetID(), run.GetID())
	}
}

// `/tern retry -e ENV` on a failed_retryable apply runs it now, without
// waiting for its next retry time (CONTRACT §4): the same apply, its next
// attempt, `Applied`, and the `applied after 2 attempts` comment.
func TestContract2RetryNow(t *testing.T) {
	c := newContract(t, "  interval: 0s\n  lease: 1m\n  max_attempts: 3\n  backoff_base: 1h\n  backoff_max: 2h", "1s")
	head := sha(1110)
	c.openPR(111, head, shopFiles(usersV2))
	c.waitCheck(head, "tern/shop/staging", "Awaiting apply")
	release := holdTable(t, c.staging, "users")
	c.comment(111, "alice", "/tern apply -e staging")
	c.waitCheck(head, "tern/shop/staging", "Failed (retrying...)")
	first := c.waitApplyState(111, "staging", store.FailedRetryable)
	release()

	id := c.comment(111, "mallory", "/tern retry -e staging")
	c.waitReactions(id, "confused")
	if got := c.latestApply(111, "staging"); got.State != store.FailedRetryable || got.Attempt != 1 {
		t.Fatalf("a read user's retry moved the apply: %s attempt %d", got.State, got.Attempt)
	}

	id = c.comment(111, "alice", "/tern retry -e staging")
	c.waitReactions(id, "eyes", "rocket")
	c.waitCheck(head, "tern/shop/staging", "Applied")
	c.wantCheck(head, "tern/shop/staging", "completed", "success", "Applied")
	a := c.latestApply(111, "staging")
	if a.ID != first.ID || a.State != store.Completed || a.Attempt != 2 {
		t.Errorf("after /tern retry: apply %d %s attempt %d, want apply %d completed on attempt 2", a.ID, a.State, a.Attempt, first.ID)
	}
	waitFor(t, "the outcome comment", func() bool { return len(c.botCommentsWith(111, "applied after 2 attempts")) == 1 })
}

// Two databases in tern.yaml (CONTRACT §3-§5): one run per (database,
// environment); `-d` applies only the database named; tern passes only
// when both are applied.
func TestContract2TwoDatabases(t *testing.T) {
	w := newWorld(t)
	shop, shopName := testdb.Open(t, "e2e_c2_shop")
	billing, billingName := testdb.Open(t, "e2e_c2_billing")
	if _, err := shop.Exec(usersV1); err != nil {
		t.Fatal(err)
	}
	if _, err := billing.Exec("CREATE TABLE invoices (id BIGINT NOT NULL PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	w.env["SHOP_DSN"] = liveDSN(t, shopName)
	w.env["BILLING_DSN"] = liveDSN(t, billingName)
	cfg := w.config(`  - {repository: acme/shop, database: shop, environment: staging, mysql: {dsn: "${SHOP_DSN}"}}
  - {repository: acme/shop, database: billing, environment: staging, mysql: {dsn: "${BILLING_DSN}"}}`,
		fmt.Sprintf(fastRecovery, 3))
	w.gh.SetPermission(repoName, "alice", "write")
	c := &cworld{world: w, cfg: cfg, staging: shop, stagingName: shopName}
	c.srv = w.serve(cfg)

	yaml := "databases:\n  - name: shop\n    schema_dir: db/shop\n    environments: [staging]\n  - name: billing\n    schema_dir: db/billing\n    environments: [staging]\n"
	head := sha(1120)
	c.openPR(112, head, map[string]string{
		"tern.yaml": yaml, "db/shop/users.sql": usersV2,
		"db/billing/invoices.sql": "CREATE TABLE invoices (id BIGINT NOT NULL PRIMARY KEY, total DECIMAL(10,2) NOT NULL DEFAULT 0);\n",
	})
	c.waitCheck(head, "tern/billing/staging", "Awaiting apply")
	c.wantCheck(head, "tern/shop/staging", "completed", "action_required", "Awaiting apply")
	plan := c.botComments(112)
	if len(plan) != 1 || !strings.Contains(plan[0].GetBody(), "total") || !strings.Contains(plan[0].GetBody(), "email") {
		t.Errorf("want one plan comment showing both databases: %v", bodies(plan))
	}

	id := c.comment(112, "alice", "/tern apply -e staging -d billing")
	c.waitReactions(id, "eyes", "rocket")
	c.waitCheck(head, "tern/billing/staging", "Applied")
	if columnCount(t, billing, "invoices", "total") != 1 {
		t.Error("billing lacks invoices.total")
	}
	if columnCount(t, shop, "users", "email") != 0 {
		t.Error("-d billing changed shop")
	}
	c.wantCheck(head, "tern/shop/staging", "completed", "action_required", "Awaiting apply")
	if agg := c.check(head, "tern"); agg.GetConclusion() == "success" {
		t.Error("tern passes with shop not applied")
	}
	if applies, _ := c.st.AppliesForPR(context.Background(), repoName, 112); len(applies) != 1 || applies[0].Database != "billing" {
		t.Errorf("applies after -d billing: %+v, want billing's only", applies)
	}

	c.comment(112, "alice", "/tern apply -e staging")
	c.waitCheck(head, "tern/shop/staging", "Applied")
	if columnCount(t, shop, "users", "email") != 1 {
		t.Error("shop lacks users.email")
	}
	waitFor(t, "the tern check to pass", func() bool { return c.check(head, "tern").GetConclusion() == "success" })
}
