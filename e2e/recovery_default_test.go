package e2e

import (
	"testing"

	"github.com/ternhq/tern/store"
)

// A server config that says nothing about recovery.interval gets the
// default of 30s (CONTRACT §2): `tern serve` retries a transient failure by
// itself, with no `tern recover` and no cron.
func TestServeRetriesByDefault(t *testing.T) {
	c := newContract(t, "  lease: 1m\n  max_attempts: 4\n  backoff_base: 1s\n  backoff_max: 1s", "1s")
	head := sha(520)
	c.openPR(52, head, shopFiles(usersV2))
	c.waitCheck(head, "tern/shop/staging", "Awaiting apply")
	release := holdTable(t, c.staging, "users")
	c.comment(52, "alice", "/tern apply -e staging")
	c.waitCheck(head, "tern/shop/staging", "Failed (retrying...)")
	c.waitApplyState(52, "staging", store.FailedRetryable)
	release()
	c.waitCheck(head, "tern/shop/staging", "Applied")
	if a := c.latestApply(52, "staging"); a.State != store.Completed || a.Attempt != 2 {
		t.Errorf("apply %s after %d attempts, want completed after 2", a.State, a.Attempt)
	}
	if columnCount(t, c.staging, "users", "email") != 1 {
		t.Error("staging lacks users.email after the retry")
	}
}
