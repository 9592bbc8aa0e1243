package bot

import (
	"context"
	"fmt"
	"testing"

	"github.com/ternhq/tern/store"
)

func installationPayload(action string) []byte {
	return []byte(fmt.Sprintf(`{"action":%q,"installation":{"id":%d,"account":{"login":"acme","type":"Organization"},"app_id":1},"sender":{"login":"acme-admin","type":"User"}}`, action, inst))
}

// A suspended installation stops being retried: its waiting apply fails
// with a clear class, its reports are dropped (nothing written to GitHub),
// its client is evicted; unsuspending resumes reporting.
func TestSuspendedInstallationStopsRetries(t *testing.T) {
	h := retryingHarness(t)
	ctx := context.Background()

	h.deliver("installation", installationPayload("suspend"))
	a, err := h.st.LatestApply(ctx, repoName, 2, "shop", "staging")
	if err != nil {
		t.Fatal(err)
	}
	if a.State != store.Failed || a.ErrorClass != store.ClassInstallationSuspended {
		t.Errorf("apply after suspend: %s %q, want failed %s", a.State, a.ErrorClass, store.ClassInstallationSuspended)
	}
	h.bot.mu.Lock()
	_, cached := h.bot.clients[inst]
	h.bot.mu.Unlock()
	if cached {
		t.Error("the suspended installation's client is still cached")
	}
	from := len(h.gh.Requests())
	if err := h.bot.Reporter().Report(ctx, a); err != nil {
		t.Fatal(err)
	}
	if n := writes(h.gh.Requests()[from:]); n != 0 {
		t.Errorf("%d GitHub writes reporting to a suspended installation", n)
	}
	if due, _ := h.st.ReportDue(ctx, 10); len(due) != 0 {
		t.Errorf("%d applies still report-due: dropped reports must not be retried", len(due))
	}

	h.deliver("installation", installationPayload("unsuspend"))
	if err := h.st.SetRef(ctx, repoName, checkKey(sha1, "tern/shop/staging"), 0, ""); err != nil {
		t.Fatal(err) // forget what GitHub shows, so the report writes again
	}
	if err := h.bot.Reporter().Report(ctx, a); err != nil {
		t.Fatal(err)
	}
	if run := h.check(sha1, "tern/shop/staging"); run.GetConclusion() != "failure" {
		t.Errorf("after unsuspend, the staging check is %s %q, want the failure reported", run.GetStatus(), run.GetOutput().GetTitle())
	}
}

// A deleted installation's waiting applies fail as installation_deleted;
// a repository removed from its installation, as repository_removed.
func TestDeletedInstallationAndRemovedRepository(t *testing.T) {
	for _, tc := range []struct {
		event string
		body  []byte
		class string
	}{
		{"installation", installationPayload("deleted"), store.ClassInstallationDeleted},
		{"installation_repositories", []byte(fmt.Sprintf(`{"action":"removed","installation":{"id":%d},"repository_selection":"selected","repositories_added":[],"repositories_removed":[{"id":1,"name":"shop","full_name":%q}],"sender":{"login":"acme-admin"}}`, inst, repoName)), store.ClassRepositoryRemoved},
	} {
		t.Run(tc.class, func(t *testing.T) {
			h := retryingHarness(t)
			ctx := context.Background()
			h.deliver(tc.event, tc.body)
			a, err := h.st.LatestApply(ctx, repoName, 2, "shop", "staging")
			if err != nil {
				t.Fatal(err)
			}
			if a.State != store.Failed || a.ErrorClass != tc.class {
				t.Errorf("apply: %s %q, want failed %s", a.State, a.ErrorClass, tc.class)
			}
		})
	}
}

// retryingHarness is a harness whose PR #2 has a staging apply that
// failed transiently (failed_retryable), as reported.
func retryingHarness(t *testing.T) *harness {
	h := newHarness(t)
	h.openPR(2, sha1, files(usersV2))
	release := holdTable(t, h.staging)
	h.comment(2, "alice", "User", "/tern apply -e staging")
	h.waitCheck(sha1, "tern/shop/staging", "Failed (retrying...)")
	release()
	h.waitFor("retrying apply reported", func() bool {
		a, err := h.st.LatestApply(context.Background(), repoName, 2, "shop", "staging")
		return err == nil && a.State == store.FailedRetryable && a.ReportedVersion == a.Version
	})
	return h
}
