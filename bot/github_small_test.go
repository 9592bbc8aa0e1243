package bot

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/report"
)

func TestUploadURLFor(t *testing.T) {
	for api, want := range map[string]string{
		"https://api.github.com/":             "https://uploads.github.com/",
		"https://ghe.example.com/api/v3/":     "https://ghe.example.com/api/uploads/",
		"https://ghe.example.com/sub/api/v3/": "https://ghe.example.com/sub/api/uploads/",
		"http://127.0.0.1:4242/":              "http://127.0.0.1:4242/",
	} {
		u, err := url.Parse(api)
		if err != nil {
			t.Fatal(err)
		}
		if got := uploadURLFor(u).String(); got != want {
			t.Errorf("uploadURLFor(%s) = %s, want %s", api, got, want)
		}
	}
	for api, want := range map[string]string{
		"https://api.github.com/":         "https://github.com/",
		"https://ghe.example.com/api/v3/": "https://ghe.example.com/",
	} {
		u, _ := url.Parse(api)
		if got := webURLFor(u); got != want {
			t.Errorf("webURLFor(%s) = %s, want %s", api, got, want)
		}
	}
}

// contentReads counts the reads of repository files (contents, trees,
// blobs) since request from.
func contentReads(gh *fakegithub.Server, from int) int {
	n := 0
	for _, r := range gh.Requests()[from:] {
		if r.Method == "GET" && (strings.Contains(r.Path, "/contents/") || strings.Contains(r.Path, "/git/trees/") || strings.Contains(r.Path, "/git/blobs/")) {
			n++
		}
	}
	return n
}

// "Re-run all checks" (check_suite rerequested) on tern's suite plans the
// PR again; another App's suite is left alone.
func TestCheckSuiteRerequestedReplans(t *testing.T) {
	h := newHarness(t)
	h.openPR(2, sha1, files(usersV2))
	suite := func(appID int64) []byte {
		return []byte(fmt.Sprintf(`{"action":"rerequested","check_suite":{"id":9,"head_sha":%q,"head_branch":"feature","status":"completed","app":{"id":%d,"slug":"x"},"pull_requests":[{"number":2,"head":{"sha":%q},"base":{"ref":"main"}}]},
"repository":{"id":1,"name":"shop","full_name":%q,"owner":{"login":"acme"}},"sender":{"login":"alice","type":"User"},"installation":{"id":%d}}`,
			sha1, appID, sha1, repoName, inst))
	}
	from := len(h.gh.Requests())
	h.deliver("check_suite", suite(h.gh.AppID+1))
	if n := contentReads(h.gh, from); n != 0 {
		t.Errorf("another App's suite re-run read %d files", n)
	}
	from = len(h.gh.Requests())
	h.deliver("check_suite", suite(h.gh.AppID))
	if n := contentReads(h.gh, from); n == 0 {
		t.Error("Re-run all checks did not plan again")
	}
	if run := h.check(sha1, "tern/shop/staging"); !strings.HasPrefix(run.GetOutput().GetTitle(), "Awaiting apply") {
		t.Errorf("staging check after the re-plan: %q", run.GetOutput().GetTitle())
	}
}

// A PR edited to another base is planned again; another edit is not.
func TestEditedBaseReplans(t *testing.T) {
	h := newHarness(t)
	h.openPR(2, sha1, files(usersV2))
	for _, tc := range []struct {
		change string
		replan bool
	}{
		{"changes.title.from", false},
		{"changes.base.ref.from", true},
	} {
		body, err := fakegithub.PRPayload("opened", repoName, 2, sha1, inst)
		if err != nil {
			t.Fatal(err)
		}
		if body, err = fakegithub.Edit(body, map[string]any{"action": "edited", tc.change: "old"}); err != nil {
			t.Fatal(err)
		}
		from := len(h.gh.Requests())
		h.deliver("pull_request", body)
		if got := contentReads(h.gh, from) > 0; got != tc.replan {
			t.Errorf("edited with %s: re-planned %v, want %v", tc.change, got, tc.replan)
		}
	}
}

// A comment carrying tern's marker but written by another App's bot is not
// adopted: tern posts its own plan comment and leaves the other alone.
func TestMarkerOnlyFromThisApp(t *testing.T) {
	h := newHarness(t)
	h.gh.OpenPR(repoName, 2, sha1, files(usersV2))
	body := report.PlanMarker() + "\nnot tern's"
	h.gh.AddComment(repoName, 2, "impostor[bot]", "Bot", body)
	h.openPR(2, sha1, files(usersV2))
	var mine, theirs int
	for _, c := range h.gh.Comments(repoName, 2) {
		switch c.GetUser().GetLogin() {
		case "impostor[bot]":
			theirs++
			if c.GetBody() != body {
				t.Errorf("the impostor's comment was edited:\n%s", c.GetBody())
			}
		case fakegithub.BotLogin:
			if strings.Contains(c.GetBody(), report.PlanMarker()) {
				mine++
			}
		}
	}
	if mine != 1 || theirs != 1 {
		t.Errorf("plan comments: tern's %d, impostor's %d; want 1 and 1", mine, theirs)
	}
}

// "mergeable": null (GitHub still computing) is asked again before tern
// refuses: two null answers, then true, and the apply goes ahead.
func TestMergeableNullAskedAgain(t *testing.T) {
	h := newHarness(t)
	f := files(usersV2)
	f["tern.yaml"] = ternYAML + "apply_requirements: [mergeable]\n"
	h.openPR(2, sha1, f)
	h.gh.SetMergeableAfter(repoName, 2, 2, true)
	from := len(h.gh.Requests())
	id := h.comment(2, "alice", "User", "/tern apply -e staging")
	h.waitCheck(sha1, "tern/shop/staging", "Applied")
	assertReactions(t, h.gh, id, "eyes", "rocket")
	reads := 0
	for _, r := range h.gh.Requests()[from:] {
		if r.Method == "GET" && r.Path == "/repos/acme/shop/pulls/2" {
			reads++
		}
	}
	if reads < 3 {
		t.Errorf("%d reads of the pull request, want the two null answers asked again", reads)
	}
}

// A per-environment check run's Details link leads to the PR's apply
// comment once there is an apply.
func TestCheckDetailsURLIsApplyComment(t *testing.T) {
	h := newHarness(t)
	h.openPR(2, sha1, files(usersV2))
	h.comment(2, "alice", "User", "/tern apply -e staging")
	h.waitReported(2, "staging")
	run := h.check(sha1, "tern/shop/staging")
	var want string
	for _, c := range h.gh.Comments(repoName, 2) {
		if strings.Contains(c.GetBody(), "<!-- tern:apply:") {
			want = c.GetHTMLURL()
		}
	}
	if want == "" || run.GetDetailsURL() != want {
		t.Errorf("staging check details_url %q, want the apply comment %q", run.GetDetailsURL(), want)
	}
}
