package fakegithub

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"
)

func str(s string) *string { return github.String(s) }

func output(title, summary string) *github.CheckRunOutput {
	return &github.CheckRunOutput{Title: str(title), Summary: str(summary)}
}

func TestCheckRunLifecycle(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 7, headSHA, nil)
	c := client(t, s, testInst)

	run, resp, err := c.Checks.CreateCheckRun(ctx, "acme", "shop", github.CreateCheckRunOptions{
		Name: "tern/shop/staging", HeadSHA: headSHA, Status: str("in_progress"), Output: output("Applying", "..."),
	})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated || run.GetStatus() != "in_progress" || run.Conclusion != nil ||
		run.StartedAt == nil || run.GetApp().GetID() != s.AppID || run.GetOutput().GetTitle() != "Applying" {
		t.Errorf("created %+v", run)
	}
	done, _, err := c.Checks.UpdateCheckRun(ctx, "acme", "shop", run.GetID(), github.UpdateCheckRunOptions{
		Name: "tern/shop/staging", Status: str("completed"), Conclusion: str("success"), Output: output("Applied", "1 statement"),
		Actions: []*github.CheckRunAction{{Label: "Retry now", Description: "Retry this apply", Identifier: "retry"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if done.GetStatus() != "completed" || done.GetConclusion() != "success" || done.CompletedAt == nil || done.GetOutput().GetTitle() != "Applied" {
		t.Errorf("updated %+v", done)
	}
	if a := s.CheckRunActions(testRepo, run.GetID()); len(a) != 1 || a[0].Identifier != "retry" {
		t.Errorf("actions %v", a)
	}
	got, _, err := c.Checks.GetCheckRun(ctx, "acme", "shop", run.GetID())
	if err != nil || got.GetConclusion() != "success" || got.GetName() != "tern/shop/staging" {
		t.Errorf("get %v %v", got, err)
	}
	// A later state is a new run with the same name.
	if _, _, err := c.Checks.CreateCheckRun(ctx, "acme", "shop", github.CreateCheckRunOptions{
		Name: "tern/shop/staging", HeadSHA: headSHA, Status: str("completed"), Conclusion: str("failure"), Output: output("Failed", "x"),
	}); err != nil {
		t.Fatal(err)
	}
	if runs := s.CheckRuns(testRepo, headSHA); len(runs) != 2 || runs[0].GetID() != run.GetID() {
		t.Errorf("CheckRuns() %d runs", len(runs))
	}
	if l := s.LatestCheckRun(testRepo, headSHA, "tern/shop/staging"); l.GetConclusion() != "failure" {
		t.Errorf("latest %v", l)
	}
	if l := s.LatestCheckRun(testRepo, headSHA, "tern/shop/production"); l != nil {
		t.Errorf("latest of an absent name %v", l)
	}
	if len(s.ReopenedRuns()) != 0 {
		t.Errorf("reopened %v", s.ReopenedRuns())
	}
}

func TestCheckRunReopenIsRecorded(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 7, headSHA, nil)
	c := client(t, s, testInst)
	run, _, err := c.Checks.CreateCheckRun(ctx, "acme", "shop", github.CreateCheckRunOptions{
		Name: "tern", HeadSHA: headSHA, Status: str("completed"), Conclusion: str("success"),
	})
	if err != nil {
		t.Fatal(err)
	}
	again, _, err := c.Checks.UpdateCheckRun(ctx, "acme", "shop", run.GetID(), github.UpdateCheckRunOptions{Status: str("in_progress")})
	if err != nil {
		t.Fatalf("GitHub accepts reopening: %v", err)
	}
	if again.GetStatus() != "in_progress" || again.Conclusion != nil || again.GetName() != "tern" {
		t.Errorf("reopened run %+v", again)
	}
	r := s.ReopenedRuns()
	if len(r) != 1 || r[0].ID != run.GetID() || r[0].Name != "tern" || r[0].NewStatus != "in_progress" || r[0].Repo != testRepo {
		t.Errorf("ReopenedRuns() = %+v", r)
	}
}

func TestCheckRunRejections(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 7, headSHA, nil)
	c := client(t, s, testInst)
	existing, _, err := c.Checks.CreateCheckRun(ctx, "acme", "shop", github.CreateCheckRunOptions{Name: "tern", HeadSHA: headSHA, Status: str("in_progress")})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", MaxCheckRunText+1)
	atLimit := strings.Repeat("x", MaxCheckRunText)
	action := func(label string) *github.CheckRunAction {
		return &github.CheckRunAction{Label: label, Description: "d", Identifier: "i"}
	}
	completed := str("completed")
	tests := []struct {
		name string
		opts github.CreateCheckRunOptions
		want int
	}{
		{"minimal", github.CreateCheckRunOptions{Name: "n"}, 0},
		{"output at limit", github.CreateCheckRunOptions{Name: "n", Output: &github.CheckRunOutput{Title: str(atLimit), Summary: str(atLimit), Text: str(atLimit)}}, 0},
		{"three actions", github.CreateCheckRunOptions{Name: "n", Status: completed, Conclusion: str("failure"), Actions: []*github.CheckRunAction{action("a"), action("b"), action("c")}}, 0},
		{"every conclusion is fine with completed", github.CreateCheckRunOptions{Name: "n", Status: completed, Conclusion: str("action_required")}, 0},
		{"title too long", github.CreateCheckRunOptions{Name: "n", Output: output(long, "s")}, http.StatusUnprocessableEntity},
		{"summary too long", github.CreateCheckRunOptions{Name: "n", Output: output("t", long)}, http.StatusUnprocessableEntity},
		{"text too long", github.CreateCheckRunOptions{Name: "n", Output: &github.CheckRunOutput{Title: str("t"), Summary: str("s"), Text: str(long)}}, http.StatusUnprocessableEntity},
		{"output without summary", github.CreateCheckRunOptions{Name: "n", Output: &github.CheckRunOutput{Title: str("t")}}, http.StatusUnprocessableEntity},
		{"four actions", github.CreateCheckRunOptions{Name: "n", Actions: []*github.CheckRunAction{action("a"), action("b"), action("c"), action("d")}}, http.StatusUnprocessableEntity},
		{"action label over 20", github.CreateCheckRunOptions{Name: "n", Actions: []*github.CheckRunAction{action(strings.Repeat("l", 21))}}, http.StatusUnprocessableEntity},
		{"conclusion without status", github.CreateCheckRunOptions{Name: "n", Conclusion: str("success")}, http.StatusUnprocessableEntity},
		{"conclusion with in_progress", github.CreateCheckRunOptions{Name: "n", Status: str("in_progress"), Conclusion: str("success")}, http.StatusUnprocessableEntity},
		{"completed without conclusion", github.CreateCheckRunOptions{Name: "n", Status: completed}, http.StatusUnprocessableEntity},
		{"unknown status", github.CreateCheckRunOptions{Name: "n", Status: str("running")}, http.StatusUnprocessableEntity},
		{"actions-only status", github.CreateCheckRunOptions{Name: "n", Status: str("waiting")}, http.StatusUnprocessableEntity},
		{"unknown conclusion", github.CreateCheckRunOptions{Name: "n", Status: completed, Conclusion: str("passed")}, http.StatusUnprocessableEntity},
		{"stale is GitHub's", github.CreateCheckRunOptions{Name: "n", Status: completed, Conclusion: str("stale")}, http.StatusUnprocessableEntity},
		{"no name", github.CreateCheckRunOptions{}, http.StatusUnprocessableEntity},
		{"unknown sha", github.CreateCheckRunOptions{Name: "n", HeadSHA: "abc"}, http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		t.Run("create "+tt.name, func(t *testing.T) {
			if tt.opts.HeadSHA == "" && tt.name != "no name" {
				tt.opts.HeadSHA = headSHA
			}
			before := len(s.CheckRuns(testRepo, headSHA))
			_, _, err := c.Checks.CreateCheckRun(ctx, "acme", "shop", tt.opts)
			if got := status(err); got != tt.want || (tt.want == 0 && err != nil) {
				t.Errorf("status %d (%v), want %d", got, err, tt.want)
			}
			if after := len(s.CheckRuns(testRepo, headSHA)); tt.want != 0 && after != before {
				t.Errorf("rejected create stored a run")
			}
		})
		t.Run("update "+tt.name, func(t *testing.T) {
			if tt.name == "unknown sha" || tt.name == "no name" {
				return // create-only fields
			}
			_, _, err := c.Checks.UpdateCheckRun(ctx, "acme", "shop", existing.GetID(), github.UpdateCheckRunOptions{
				Name: tt.opts.Name, Status: tt.opts.Status, Conclusion: tt.opts.Conclusion, Output: tt.opts.Output, Actions: tt.opts.Actions,
			})
			if got := status(err); got != tt.want || (tt.want == 0 && err != nil) {
				t.Errorf("status %d (%v), want %d", got, err, tt.want)
			}
		})
	}
	if _, _, err := c.Checks.UpdateCheckRun(ctx, "acme", "shop", 987654321, github.UpdateCheckRunOptions{Name: "n"}); status(err) != http.StatusNotFound {
		t.Errorf("PATCH unknown id: %v, want 404", err)
	}
	if _, _, err := c.Checks.GetCheckRun(ctx, "acme", "shop", 987654321); status(err) != http.StatusNotFound {
		t.Errorf("GET unknown id: %v, want 404", err)
	}
}

func TestListCheckRunsForRef(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 7, headSHA, nil)
	s.OpenPR(testRepo, 8, head2, nil)
	c := client(t, s, testInst)
	create := func(name, sha, conclusion string) {
		t.Helper()
		if _, _, err := c.Checks.CreateCheckRun(ctx, "acme", "shop", github.CreateCheckRunOptions{
			Name: name, HeadSHA: sha, Status: str("completed"), Conclusion: str(conclusion),
		}); err != nil {
			t.Fatal(err)
		}
	}
	create("tern/shop/staging", headSHA, "action_required")
	create("tern/shop/staging", headSHA, "success")
	create("tern", headSHA, "success")
	create("tern", head2, "failure")

	list := func(ref string, opts *github.ListCheckRunsOptions) *github.ListCheckRunsResults {
		t.Helper()
		res, _, err := c.Checks.ListCheckRunsForRef(ctx, "acme", "shop", ref, opts)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	latest := list(headSHA, nil)
	if latest.GetTotal() != 2 || len(latest.CheckRuns) != 2 {
		t.Fatalf("latest: %d runs", latest.GetTotal())
	}
	for _, r := range latest.CheckRuns {
		if r.GetConclusion() != "success" || r.GetHeadSHA() != headSHA {
			t.Errorf("latest lists %s %s", r.GetName(), r.GetConclusion())
		}
	}
	if all := list(headSHA, &github.ListCheckRunsOptions{Filter: str("all")}); all.GetTotal() != 3 {
		t.Errorf("filter=all: %d", all.GetTotal())
	}
	named := list(headSHA, &github.ListCheckRunsOptions{CheckName: str("tern/shop/staging"), Filter: str("all")})
	if named.GetTotal() != 2 || named.CheckRuns[0].GetConclusion() != "success" {
		t.Errorf("check_name: %d runs, newest first expected", named.GetTotal())
	}
	if byBranch := list("pr-8", nil); byBranch.GetTotal() != 1 || byBranch.CheckRuns[0].GetConclusion() != "failure" {
		t.Errorf("by branch: %v", byBranch.CheckRuns)
	}
	if none := list(headSHA, &github.ListCheckRunsOptions{Status: str("in_progress")}); none.GetTotal() != 0 {
		t.Errorf("status filter: %d", none.GetTotal())
	}
	paged := list(headSHA, &github.ListCheckRunsOptions{Filter: str("all"), ListOptions: github.ListOptions{PerPage: 2}})
	if paged.GetTotal() != 3 || len(paged.CheckRuns) != 2 {
		t.Errorf("paged: total %d, page %d", paged.GetTotal(), len(paged.CheckRuns))
	}
	if _, _, err := c.Checks.ListCheckRunsForRef(ctx, "acme", "shop", "ffff", nil); status(err) != http.StatusUnprocessableEntity {
		t.Errorf("unknown ref: %v, want 422", err)
	}
}
