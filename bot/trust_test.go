package bot

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/plan"
)

// planComment returns the PR's plan comment.
func (h *harness) planComment(n int) string {
	for _, c := range h.botComments(n) {
		if strings.Contains(c, "<!-- tern:plan -->") {
			return c
		}
	}
	return ""
}

func (h *harness) noApplies(n int) {
	h.t.Helper()
	if applies, err := h.st.AppliesForPR(context.Background(), repoName, n); err != nil || len(applies) != 0 {
		h.t.Fatalf("%d applies queued (%v), want none", len(applies), err)
	}
}

// A PR's own tern.yaml cannot weaken the policy it is judged by: with the
// base requiring approval and promoting staging before production, a head
// that drops the requirement and lists only production is planned and
// gated under the base's rules, and its plan comment says the change takes
// effect after merge.
func TestPolicyComesFromTheBase(t *testing.T) {
	h := newHarness(t)
	base := ternYAML + "apply_requirements: [approved]\n"
	h.gh.SetBase(repoName, map[string]string{"tern.yaml": base, "db/shop/users.sql": usersV1})
	head := files(usersV2)
	head["tern.yaml"] = "databases:\n  - name: shop\n    schema_dir: db/shop\n    environments: [production]\n" +
		"  - name: crm\n    schema_dir: db/crm\n    environments: [staging]\n"
	head["db/crm/leads.sql"] = "CREATE TABLE leads (id int primary key);\n"
	h.gh.OpenPR(repoName, 2, sha1, head)
	h.deliver("pull_request", mustPayload(t, "opened", 2, sha1))

	pc := h.planComment(2)
	if !strings.Contains(pc, "Policy changes take effect after merge") || !strings.Contains(pc, "`apply_requirements`") || !strings.Contains(pc, "the environments of `shop`") {
		t.Errorf("plan comment does not say the policy change waits for merge:\n%s", pc)
	}
	if !strings.Contains(pc, "database `crm` is added") || h.check(sha1, "tern/crm/staging") != nil {
		t.Errorf("a database the base does not list was planned, or not named as a policy change:\n%s", pc)
	}
	if run := h.check(sha1, "tern/shop/production"); run == nil || !strings.HasPrefix(run.GetOutput().GetTitle(), "Waiting for staging") {
		t.Errorf("production check under the base's order: %+v", run)
	}
	if h.check(sha1, "tern/shop/staging") == nil {
		t.Error("no staging check: the head's environments were used")
	}
	h.comment(2, "alice", "User", "/tern apply -e production")
	if reply := h.lastBotComment(2); !strings.Contains(reply, "requirement `approved` is not met") {
		t.Errorf("apply without approval: %q", reply)
	}
	h.gh.SetPermission(repoName, "bob", "write")
	h.gh.AddReview(repoName, 2, "bob", "APPROVED")
	h.comment(2, "alice", "User", "/tern apply -e production")
	if reply := h.lastBotComment(2); !strings.Contains(reply, "staging") || !strings.Contains(reply, "refused") {
		t.Errorf("production before staging: %q", reply)
	}
	h.noApplies(2)
	if hasColumn(t, h.prod, "users", "email") {
		t.Fatal("production changed")
	}
	// Under the base's policy staging, then production, go through.
	h.comment(2, "alice", "User", "/tern apply -e staging")
	h.waitCheck(sha1, "tern/shop/staging", "Applied")
}

func mustPayload(t *testing.T, action string, n int, sha string) []byte {
	t.Helper()
	body, err := fakegithub.PRPayload(action, repoName, n, sha, inst)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// The PR that adds tern.yaml (none on its base) is planned, says it is
// plan only, and its apply is refused.
func TestNoBaseConfigPlansButNeverApplies(t *testing.T) {
	h := newHarness(t)
	h.gh.SetBase(repoName, map[string]string{"README.md": "before tern"})
	h.gh.OpenPR(repoName, 2, sha1, files(usersV2))
	h.deliver("pull_request", mustPayload(t, "opened", 2, sha1))
	pc := h.planComment(2)
	if !strings.Contains(pc, "Plan only") || !strings.Contains(norm(pc), "add column email") || strings.Contains(pc, "/tern apply") {
		t.Errorf("plan comment of the PR adding tern.yaml:\n%s", pc)
	}
	// Nor does its check run suggest an apply that would be refused.
	run := h.waitCheck(sha1, "tern/shop/staging", "Awaiting apply")
	if out := run.GetOutput(); strings.Contains(out.GetSummary(), "/tern apply") || !strings.Contains(out.GetSummary(), "has no `tern.yaml`") {
		t.Errorf("check run of the PR adding tern.yaml: %q\n%s", out.GetTitle(), out.GetSummary())
	}
	h.comment(2, "alice", "User", "/tern apply -e staging")
	if reply := h.lastBotComment(2); !strings.Contains(reply, "refused") || !strings.Contains(reply, "has no `tern.yaml`") {
		t.Errorf("apply from the PR adding tern.yaml: %q", reply)
	}
	h.noApplies(2)
	if hasColumn(t, h.staging, "users", "email") {
		t.Error("staging changed")
	}
}

// `approved` counts only the latest review of reviewers with write access
// or more, on the head commit; a change request blocks; the refusal says
// whose approval is missing or who asked for changes.
func TestApprovedCountsWriteReviewersOnTheHead(t *testing.T) {
	h := newHarness(t)
	h.gh.SetPermission(repoName, "bob", "write")
	h.gh.SetPermission(repoName, "carol", "admin")
	f := files(usersV2)
	f["tern.yaml"] = ternYAML + "apply_requirements: [approved]\n"
	h.openPR(2, sha1, f)
	apply := func() string {
		h.comment(2, "alice", "User", "/tern apply -e staging")
		return h.lastBotComment(2)
	}

	h.gh.AddReview(repoName, 2, "mallory", "APPROVED") // read access
	if r := apply(); !strings.Contains(r, "not met") || !strings.Contains(r, "@mallory's approval does not count (read access") {
		t.Errorf("read-access approval: %q", r)
	}
	h.gh.AddReview(repoName, 2, "bob", "APPROVED")
	h.gh.Push(repoName, 2, sha2, f)
	h.deliver("pull_request", mustPayload(t, "synchronize", 2, sha2))
	if r := apply(); !strings.Contains(r, "not met") || !strings.Contains(r, "@bob approved an earlier commit `1111111`") {
		t.Errorf("approval of an earlier commit: %q", r)
	}
	h.gh.AddReview(repoName, 2, "bob", "APPROVED")
	h.gh.AddReview(repoName, 2, "carol", "CHANGES_REQUESTED")
	h.gh.AddReview(repoName, 2, "carol", "COMMENTED") // a comment does not lift it
	if r := apply(); !strings.Contains(r, "not met") || !strings.Contains(r, "@carol requested changes") {
		t.Errorf("change request: %q", r)
	}
	h.noApplies(2)
	h.gh.AddReview(repoName, 2, "carol", "APPROVED")
	apply()
	h.waitCheck(sha2, "tern/shop/staging", "Applied")
}

// A schema_dir of more than 1,000 entries is read whole (the contents API
// would list only the first 1,000 and drop the rest).
func TestSchemaDirPastContentsLimit(t *testing.T) {
	h := newHarness(t)
	f := files(usersV2)
	for i := 0; i < 1000; i++ {
		f[fmt.Sprintf("db/shop/a%04d.md", i)] = "notes\n"
	}
	h.openPR(2, sha1, f)
	if pc := h.planComment(2); !strings.Contains(norm(pc), "add column email") {
		t.Errorf("users.sql, entry 1,001 of db/shop, was not planned:\n%s", pc)
	}
}

// Whether a PR touches schema is decided from the base and head trees: a
// schema change past the 3,000 files the PR files list returns is planned,
// not waved through with a green `tern` check.
func TestSchemaChangePastPRFilesLimit(t *testing.T) {
	h := newHarness(t)
	f := files(usersV2)
	for i := 0; i < 3000; i++ {
		f[fmt.Sprintf("aa/f%04d.txt", i)] = "x\n"
	}
	h.openPR(2, sha1, f)
	if run := h.check(sha1, "tern/shop/staging"); run == nil || !strings.HasPrefix(run.GetOutput().GetTitle(), "Awaiting apply") {
		t.Errorf("staging check of a 3,003-file PR: %+v", run)
	}
	if run := h.check(sha1, "tern"); run == nil || run.GetConclusion() == "success" {
		t.Errorf("tern check passed a schema change: %+v", run)
	}
}

// A tree GitHub answers truncated fails the plan rather than planning on
// part of it; symbolic links and submodules in a schema_dir are refused by
// name.
func TestSchemaDirRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(h *harness, f map[string]string)
		want  []string
	}{
		{"truncated", func(h *harness, f map[string]string) {
			for i := 0; i < 12; i++ {
				f[fmt.Sprintf("db/shop/t%02d.sql", i)] = fmt.Sprintf("CREATE TABLE t%02d (id int primary key);\n", i)
			}
			h.gh.SetTreeLimit(10)
		}, []string{"truncated", "db/shop"}},
		{"symlink and submodule", func(h *harness, f map[string]string) {}, []string{"db/shop/evil.sql (symbolic link)", "db/shop/vendor (submodule)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			f := files(usersV2)
			tc.setup(h, f)
			h.gh.SetBase(repoName, baseOf(f))
			h.gh.OpenPR(repoName, 2, sha1, f)
			if tc.name != "truncated" {
				h.gh.AddSymlink(repoName, sha1, "db/shop/evil.sql", "/etc/passwd")
				h.gh.AddSubmodule(repoName, sha1, "db/shop/vendor", sha3)
			}
			h.deliver("pull_request", mustPayload(t, "opened", 2, sha1))
			run := h.check(sha1, "tern/shop/staging")
			if run == nil || run.GetConclusion() != "failure" || !strings.HasPrefix(run.GetOutput().GetTitle(), "Plan failed") {
				t.Fatalf("staging check: %+v", run)
			}
			pc := h.planComment(2)
			for _, w := range tc.want {
				if !strings.Contains(pc, w) {
					t.Errorf("plan comment lacks %q:\n%s", w, pc)
				}
			}
		})
	}
}

// A schema file over 1 MB (which the contents API returns without content)
// is read whole through the blobs API.
func TestSchemaFileOverOneMB(t *testing.T) {
	h := newHarness(t)
	big := "-- " + strings.Repeat("x", fakegithub.MaxContentsFileSize) + "\n" + usersV2
	f := map[string]string{"tern.yaml": ternYAML, "db/shop/users.sql": big}
	h.gh.OpenPR(repoName, 2, sha1, f)
	gh, err := h.bot.client(inst)
	if err != nil {
		t.Fatal(err)
	}
	pr := &prInfo{Owner: "acme", Name: "shop", Repo: repoName, Number: 2, HeadSHA: sha1}
	got, err := newCommitReader(gh, pr, sha1, nil).schemaFiles(context.Background(), "db/shop", plan.Limits{MaxFileBytes: 2 << 20})
	if err != nil || len(got) != 1 || string(got[0].Data) != big {
		t.Fatalf("read %d files (%v), want db/shop/users.sql whole", len(got), err)
	}
}

// A tern.yaml that is a symbolic link is shown as a config error, not
// followed.
func TestTernYAMLSymlinkRefused(t *testing.T) {
	h := newHarness(t)
	h.gh.SetBase(repoName, map[string]string{"tern.yaml": ternYAML})
	h.gh.OpenPR(repoName, 2, sha1, map[string]string{"db/shop/users.sql": usersV2})
	h.gh.AddSymlink(repoName, sha1, "tern.yaml", "/etc/passwd")
	h.deliver("pull_request", mustPayload(t, "opened", 2, sha1))
	if pc := h.planComment(2); !strings.Contains(pc, "tern.yaml must be a regular file (it is a symbolic link)") {
		t.Errorf("plan comment:\n%s", pc)
	}
}

// Blobs are content-addressed, so a re-plan reads only the blobs that
// changed: one API call per changed file, not per schema file.
func TestReplanReadsOnlyChangedBlobs(t *testing.T) {
	h := newHarness(t)
	f := files(usersV2)
	for i := 0; i < 20; i++ {
		f[fmt.Sprintf("db/shop/t%02d.sql", i)] = fmt.Sprintf("CREATE TABLE t%02d (id int primary key);\n", i)
	}
	blobCalls := func() int {
		n := 0
		for _, r := range h.gh.Requests() {
			if strings.Contains(r.Path, "/git/blobs/") {
				n++
			}
		}
		return n
	}
	h.openPR(2, sha1, f)
	first := blobCalls()
	if first < 21 {
		t.Fatalf("%d blob reads for 21 schema files and tern.yaml", first)
	}
	h.comment(2, "alice", "User", "/tern plan")
	if n := blobCalls() - first; n != 0 {
		t.Errorf("re-plan of the same head read %d blobs, want 0", n)
	}
	f["db/shop/t00.sql"] = "CREATE TABLE t00 (id bigint primary key);\n"
	h.gh.Push(repoName, 2, sha2, f)
	before := blobCalls()
	h.deliver("pull_request", mustPayload(t, "synchronize", 2, sha2))
	if n := blobCalls() - before; n != 1 {
		t.Errorf("re-plan after one file changed read %d blobs, want 1", n)
	}
}

// tern.yaml's lint: is policy: a head that turns a check off is still
// judged by the base's lint, and its plan comment names the change.
func TestLintPolicyComesFromTheBase(t *testing.T) {
	h := newHarness(t)
	h.gh.SetBase(repoName, map[string]string{"tern.yaml": ternYAML, "db/shop/users.sql": usersV1})
	head := files(usersV2)
	head["tern.yaml"] = ternYAML + "lint:\n  checks:\n    drop-column: off\n    lossy-column-change: off\n"
	head["db/shop/users.sql"] = "CREATE TABLE users (id bigint NOT NULL PRIMARY KEY);\n"
	h.gh.OpenPR(repoName, 3, sha1, head)
	h.deliver("pull_request", mustPayload(t, "opened", 3, sha1))
	pc := h.planComment(3)
	if !strings.Contains(pc, "`lint`") || !strings.Contains(pc, "⛔ unsafe") || !strings.Contains(pc, "(`drop-column`)") {
		t.Errorf("plan comment: the head's lint was used, or the change is not named:\n%s", pc)
	}
}
