package fakegithub

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-github/v60/github"
)

func TestSignMatchesGoGithub(t *testing.T) {
	body := []byte(`{"zen":"Keep it logically awesome."}`)
	req := httptest.NewRequest(http.MethodPost, "/webhook", nil)
	req.Header.Set("X-Hub-Signature-256", Sign("s3cret", body))
	if err := github.ValidateSignature(req.Header.Get("X-Hub-Signature-256"), body, []byte("s3cret")); err != nil {
		t.Errorf("go-github rejects Sign: %v", err)
	}
	if err := github.ValidateSignature(Sign("other", body), body, []byte("s3cret")); err == nil {
		t.Error("a signature with another secret validated")
	}
}

func TestDeliver(t *testing.T) {
	type got struct {
		event, delivery string
		payload         any
		err             error
	}
	seen := make(chan got, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := github.ValidatePayload(r, []byte("s3cret"))
		g := got{event: github.WebHookType(r), delivery: github.DeliveryID(r), err: err}
		if err == nil {
			g.payload, g.err = github.ParseWebHook(github.WebHookType(r), body)
		}
		seen <- g
		w.WriteHeader(http.StatusAccepted)
	}))
	defer hook.Close()
	body, err := CommentPayload(testRepo, 7, 555, "alice", "User", "/tern plan", testInst)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := Deliver(ctx, hook.URL, "issue_comment", "d-1", "s3cret", body)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Errorf("status %d", resp.StatusCode)
	}
	g := <-seen
	if g.err != nil || g.event != "issue_comment" || g.delivery != "d-1" {
		t.Fatalf("received %+v", g)
	}
	ev, ok := g.payload.(*github.IssueCommentEvent)
	if !ok || ev.GetComment().GetBody() != "/tern plan" {
		t.Errorf("payload %T %v", g.payload, g.payload)
	}
}

func TestFixture(t *testing.T) {
	b, err := Fixture("pull_request.opened.json")
	if err != nil {
		t.Fatal(err)
	}
	if !json.Valid(b) {
		t.Error("fixture is not JSON")
	}
	if _, err := Fixture("no-such.json"); err == nil {
		t.Error("missing fixture: no error")
	}
}

func TestEdit(t *testing.T) {
	in := []byte(`{"a":{"b":1,"big":12345678901234567890},"list":[{"x":1},{"x":2}],"gone":true}`)
	tests := []struct {
		name  string
		edits map[string]any
		want  string
	}{
		{"nested", map[string]any{"a.b": 7}, `{"a":{"b":7,"big":12345678901234567890},"gone":true,"list":[{"x":1},{"x":2}]}`},
		{"create path", map[string]any{"c.d.e": "v"}, `{"a":{"b":1,"big":12345678901234567890},"c":{"d":{"e":"v"}},"gone":true,"list":[{"x":1},{"x":2}]}`},
		{"array index", map[string]any{"list.1.x": 9}, `{"a":{"b":1,"big":12345678901234567890},"gone":true,"list":[{"x":1},{"x":9}]}`},
		{"delete", map[string]any{"gone": Deletion{}}, `{"a":{"b":1,"big":12345678901234567890},"list":[{"x":1},{"x":2}]}`},
		{"null", map[string]any{"a": nil}, `{"a":null,"gone":true,"list":[{"x":1},{"x":2}]}`},
		{"parent before child", map[string]any{"a.b.c": 1, "a.b": map[string]any{}}, `{"a":{"b":{"c":1},"big":12345678901234567890},"gone":true,"list":[{"x":1},{"x":2}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Edit(in, tt.edits)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("got  %s\nwant %s", out, tt.want)
			}
		})
	}
	for _, bad := range []map[string]any{{"list.5.x": 1}, {"a.b.c": 1}, {"list.x": 1}} {
		if _, err := Edit(in, bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
	if _, err := Edit([]byte("{"), map[string]any{"a": 1}); err == nil {
		t.Error("bad JSON: no error")
	}
}

func TestPRPayload(t *testing.T) {
	for _, action := range []string{"opened", "reopened", "synchronize", "closed", "merged"} {
		t.Run(action, func(t *testing.T) {
			b, err := PRPayload(action, testRepo, 12, head2, testInst)
			if err != nil {
				t.Fatal(err)
			}
			v, err := github.ParseWebHook("pull_request", b)
			if err != nil {
				t.Fatal(err)
			}
			ev := v.(*github.PullRequestEvent)
			wantAction := action
			if action == "merged" {
				wantAction = "closed"
			}
			pr := ev.GetPullRequest()
			if ev.GetAction() != wantAction || ev.GetNumber() != 12 || pr.GetNumber() != 12 ||
				pr.GetHead().GetSHA() != head2 || ev.GetRepo().GetFullName() != testRepo ||
				ev.GetRepo().GetOwner().GetLogin() != "acme" || ev.GetRepo().GetName() != "shop" ||
				pr.GetBase().GetRepo().GetFullName() != testRepo || ev.GetInstallation().GetID() != testInst {
				t.Errorf("event %s #%d head %s repo %s inst %d", ev.GetAction(), ev.GetNumber(), pr.GetHead().GetSHA(), ev.GetRepo().GetFullName(), ev.GetInstallation().GetID())
			}
			if merged := pr.GetMerged(); merged != (action == "merged") {
				t.Errorf("merged = %v", merged)
			}
			if action == "synchronize" && ev.GetAfter() != head2 {
				t.Errorf("after = %q", ev.GetAfter())
			}
		})
	}
	if _, err := PRPayload("edited", testRepo, 1, head2, testInst); err == nil {
		t.Error("action without a fixture: no error")
	}
	if _, err := PRPayload("opened", "noslash", 1, head2, testInst); err == nil {
		t.Error("bad repo name: no error")
	}
}

func TestCommentPayload(t *testing.T) {
	for _, userType := range []string{"User", "Bot"} {
		b, err := CommentPayload(testRepo, 7, 555, "alice", userType, "/tern apply -e staging", testInst)
		if err != nil {
			t.Fatal(err)
		}
		v, err := github.ParseWebHook("issue_comment", b)
		if err != nil {
			t.Fatal(err)
		}
		ev := v.(*github.IssueCommentEvent)
		cm := ev.GetComment()
		if ev.GetAction() != "created" || !ev.GetIssue().IsPullRequest() || ev.GetIssue().GetNumber() != 7 ||
			cm.GetID() != 555 || cm.GetBody() != "/tern apply -e staging" || cm.GetUser().GetLogin() != "alice" ||
			cm.GetUser().GetType() != userType || ev.GetSender().GetLogin() != "alice" ||
			ev.GetRepo().GetFullName() != testRepo || ev.GetInstallation().GetID() != testInst {
			t.Errorf("%s: event %+v", userType, ev)
		}
	}
	// A comment on a plain issue, as tests of "ignored" build it.
	b, err := CommentPayload(testRepo, 9, 556, "alice", "User", "/tern plan", testInst)
	if err != nil {
		t.Fatal(err)
	}
	b, err = Edit(b, map[string]any{"issue.pull_request": Deletion{}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := github.ParseWebHook("issue_comment", b)
	if err != nil {
		t.Fatal(err)
	}
	if v.(*github.IssueCommentEvent).GetIssue().IsPullRequest() {
		t.Error("plain issue still a PR")
	}
}
