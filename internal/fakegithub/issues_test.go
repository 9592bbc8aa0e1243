package fakegithub

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-github/v60/github"
)

func TestComments(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 7, headSHA, nil)
	human := s.AddComment(testRepo, 7, "alice", "User", "/tern plan")
	c := client(t, s, testInst)

	posted, resp, err := c.Issues.CreateComment(ctx, "acme", "shop", 7, &github.IssueComment{Body: github.String("plan: ok")})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusCreated || posted.GetUser().GetLogin() != BotLogin || posted.GetUser().GetType() != "Bot" ||
		posted.GetID() == 0 || posted.GetID() == human.GetID() || posted.GetBody() != "plan: ok" {
		t.Errorf("created %d %+v", resp.StatusCode, posted)
	}
	edited, _, err := c.Issues.EditComment(ctx, "acme", "shop", posted.GetID(), &github.IssueComment{Body: github.String("plan: changed")})
	if err != nil || edited.GetBody() != "plan: changed" {
		t.Fatalf("edit %v %v", edited, err)
	}
	got, _, err := c.Issues.GetComment(ctx, "acme", "shop", posted.GetID())
	if err != nil || got.GetBody() != "plan: changed" {
		t.Errorf("get %v %v", got, err)
	}
	list, _, err := c.Issues.ListComments(ctx, "acme", "shop", 7, nil)
	if err != nil || len(list) != 2 || list[0].GetUser().GetLogin() != "alice" || list[1].GetBody() != "plan: changed" {
		t.Errorf("list %v %v", list, err)
	}
	if cs := s.Comments(testRepo, 7); len(cs) != 2 || cs[1].GetBody() != "plan: changed" {
		t.Errorf("Comments() %v", cs)
	}
	// Inspection returns copies.
	s.Comments(testRepo, 7)[0].Body = github.String("tampered")
	if s.Comments(testRepo, 7)[0].GetBody() != "/tern plan" {
		t.Error("Comments() shares state with the server")
	}
	if _, err := c.Issues.DeleteComment(ctx, "acme", "shop", human.GetID()); err != nil {
		t.Fatal(err)
	}
	if cs := s.Comments(testRepo, 7); len(cs) != 1 {
		t.Errorf("after delete %d comments", len(cs))
	}
}

func TestCommentsPaged(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 7, headSHA, nil)
	for i := 0; i < 45; i++ {
		s.AddComment(testRepo, 7, "alice", "User", fmt.Sprint(i))
	}
	c := client(t, s, testInst)
	var all []*github.IssueComment
	opts := &github.IssueListCommentsOptions{}
	for {
		cs, resp, err := c.Issues.ListComments(ctx, "acme", "shop", 7, opts)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, cs...)
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if len(all) != 45 || all[44].GetBody() != "44" {
		t.Errorf("%d comments", len(all))
	}
}

func TestCommentRejections(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 7, headSHA, nil)
	s.AddInstallation("other/repo", 88)
	s.OpenPR("other/repo", 1, headSHA, nil)
	foreign := s.AddComment("other/repo", 1, "eve", "User", "hi")
	c := client(t, s, testInst)
	mine, _, err := c.Issues.CreateComment(ctx, "acme", "shop", 7, &github.IssueComment{Body: github.String("x")})
	if err != nil {
		t.Fatal(err)
	}
	body := func(s string) *github.IssueComment { return &github.IssueComment{Body: github.String(s)} }
	tests := []struct {
		name string
		do   func() error
		want int
	}{
		{"create at limit", func() error {
			_, _, err := c.Issues.CreateComment(ctx, "acme", "shop", 7, body(strings.Repeat("é", MaxCommentBody)))
			return err
		}, 0},
		{"create over limit", func() error {
			_, _, err := c.Issues.CreateComment(ctx, "acme", "shop", 7, body(strings.Repeat("a", MaxCommentBody+1)))
			return err
		}, http.StatusUnprocessableEntity},
		{"create empty", func() error {
			_, _, err := c.Issues.CreateComment(ctx, "acme", "shop", 7, body(""))
			return err
		}, http.StatusUnprocessableEntity},
		{"edit over limit", func() error {
			_, _, err := c.Issues.EditComment(ctx, "acme", "shop", mine.GetID(), body(strings.Repeat("a", MaxCommentBody+1)))
			return err
		}, http.StatusUnprocessableEntity},
		{"create on unknown issue", func() error {
			_, _, err := c.Issues.CreateComment(ctx, "acme", "shop", 99, body("x"))
			return err
		}, http.StatusNotFound},
		{"edit unknown id", func() error {
			_, _, err := c.Issues.EditComment(ctx, "acme", "shop", 123456789, body("x"))
			return err
		}, http.StatusNotFound},
		{"get unknown id", func() error {
			_, _, err := c.Issues.GetComment(ctx, "acme", "shop", 123456789)
			return err
		}, http.StatusNotFound},
		{"edit another repo's comment through this repo", func() error {
			_, _, err := c.Issues.EditComment(ctx, "acme", "shop", foreign.GetID(), body("x"))
			return err
		}, http.StatusNotFound},
		{"comment on another installation's repo", func() error {
			_, _, err := c.Issues.CreateComment(ctx, "other", "repo", 1, body("x"))
			return err
		}, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if got := status(err); got != tt.want || (tt.want == 0 && err != nil) {
				t.Errorf("status %d (%v), want %d", got, err, tt.want)
			}
		})
	}
	if got := s.Comments(testRepo, 7); len(got) != 2 || got[0].GetBody() != "x" {
		t.Errorf("rejected requests changed comments: %d", len(got))
	}
	var er *github.ErrorResponse
	_, _, err = c.Issues.CreateComment(ctx, "acme", "shop", 7, body(strings.Repeat("a", MaxCommentBody+1)))
	if !asErr(err, &er) || er.Message != "Validation Failed" || len(er.Errors) != 1 || er.Errors[0].Field != "body" {
		t.Errorf("422 body: %+v", er)
	}
}

func TestPlainIssue(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 7, headSHA, nil)
	s.AddComment(testRepo, 9, "alice", "User", "not a PR")
	c := client(t, s, testInst)
	is, _, err := c.Issues.Get(ctx, "acme", "shop", 9)
	if err != nil || is.IsPullRequest() {
		t.Errorf("plain issue %v %v", is, err)
	}
	pr, _, err := c.Issues.Get(ctx, "acme", "shop", 7)
	if err != nil || !pr.IsPullRequest() {
		t.Errorf("PR as issue %v %v", pr, err)
	}
	if _, _, err := c.PullRequests.Get(ctx, "acme", "shop", 9); status(err) != http.StatusNotFound {
		t.Errorf("plain issue as PR: %v, want 404", err)
	}
}

func TestReactions(t *testing.T) {
	s := newServer(t)
	s.OpenPR(testRepo, 7, headSHA, nil)
	cmd := s.AddComment(testRepo, 7, "alice", "User", "/tern apply -e staging")
	c := client(t, s, testInst)
	eyes, resp, err := c.Reactions.CreateIssueCommentReaction(ctx, "acme", "shop", cmd.GetID(), "eyes")
	if err != nil || resp.StatusCode != http.StatusCreated || eyes.GetContent() != "eyes" {
		t.Fatalf("eyes: %v %v", eyes, err)
	}
	again, resp, err := c.Reactions.CreateIssueCommentReaction(ctx, "acme", "shop", cmd.GetID(), "eyes")
	if err != nil || resp.StatusCode != http.StatusOK || again.GetID() != eyes.GetID() {
		t.Errorf("repeated reaction: %d %v %v", resp.StatusCode, again, err)
	}
	if _, _, err := c.Reactions.CreateIssueCommentReaction(ctx, "acme", "shop", cmd.GetID(), "rocket"); err != nil {
		t.Fatal(err)
	}
	if got := s.Reactions(testRepo, cmd.GetID()); fmt.Sprint(got) != "[eyes rocket]" {
		t.Errorf("Reactions() = %v", got)
	}
	list, _, err := c.Reactions.ListIssueCommentReactions(ctx, "acme", "shop", cmd.GetID(), nil)
	if err != nil || len(list) != 2 {
		t.Errorf("list %v %v", list, err)
	}
	if _, err := c.Reactions.DeleteIssueCommentReaction(ctx, "acme", "shop", cmd.GetID(), eyes.GetID()); err != nil {
		t.Fatal(err)
	}
	if got := s.Reactions(testRepo, cmd.GetID()); fmt.Sprint(got) != "[rocket]" {
		t.Errorf("after delete %v", got)
	}
	if _, _, err := c.Reactions.CreateIssueCommentReaction(ctx, "acme", "shop", cmd.GetID(), "party"); status(err) != http.StatusUnprocessableEntity {
		t.Errorf("unknown content: %v, want 422", err)
	}
	if _, _, err := c.Reactions.CreateIssueCommentReaction(ctx, "acme", "shop", 123456789, "eyes"); status(err) != http.StatusNotFound {
		t.Errorf("unknown comment: %v, want 404", err)
	}
}

// permissionAnswer is the permission API's body, role_name included.
type permissionAnswer struct {
	Permission string `json:"permission"`
	RoleName   string `json:"role_name"`
	User       struct {
		Login string `json:"login"`
	} `json:"user"`
}

func TestPermission(t *testing.T) {
	s := newServer(t)
	c := client(t, s, testInst)
	tests := []struct{ role, permission string }{
		{"admin", "admin"}, {"maintain", "write"}, {"write", "write"},
		{"triage", "read"}, {"read", "read"}, {"none", "none"},
	}
	for _, tt := range tests {
		t.Run(tt.role, func(t *testing.T) {
			user := "user-" + tt.role
			s.SetPermission(testRepo, user, tt.role)
			req, err := c.NewRequest(http.MethodGet, "repos/acme/shop/collaborators/"+user+"/permission", nil)
			if err != nil {
				t.Fatal(err)
			}
			var got permissionAnswer
			if _, err := c.Do(ctx, req, &got); err != nil {
				t.Fatal(err)
			}
			if got.Permission != tt.permission || got.RoleName != tt.role || got.User.Login != user {
				t.Errorf("got %+v, want permission %s role %s", got, tt.permission, tt.role)
			}
			lvl, _, err := c.Repositories.GetPermissionLevel(ctx, "acme", "shop", user)
			if err != nil || lvl.GetPermission() != tt.permission {
				t.Errorf("go-github: %v %v", lvl, err)
			}
		})
	}
	lvl, _, err := c.Repositories.GetPermissionLevel(ctx, "acme", "shop", "stranger")
	if err != nil || lvl.GetPermission() != "none" {
		t.Errorf("stranger: %v %v", lvl, err)
	}
}
