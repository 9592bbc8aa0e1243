package fakegithub

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/go-github/v60/github"
)

// GitHub's documented limits.
const (
	// MaxCommentBody is the most characters an issue comment body may hold.
	MaxCommentBody = 65536
	// MaxCheckRunText is the most characters a check run's output title,
	// summary or text may hold.
	MaxCheckRunText = 65535
	// MaxCheckRunActions is the most action buttons a check run may carry.
	MaxCheckRunActions = 3
)

const (
	docPulls       = "https://docs.github.com/rest/pulls/pulls#get-a-pull-request"
	docContents    = "https://docs.github.com/rest/repos/contents#get-repository-content"
	docTrees       = "https://docs.github.com/rest/git/trees#get-a-tree"
	docBlobs       = "https://docs.github.com/rest/git/blobs#get-a-blob"
	docComments    = "https://docs.github.com/rest/issues/comments#create-an-issue-comment"
	docReactions   = "https://docs.github.com/rest/reactions/reactions#create-reaction-for-an-issue-comment"
	docPermission  = "https://docs.github.com/rest/collaborators/collaborators#get-repository-permissions-for-a-user"
	docCheckRuns   = "https://docs.github.com/rest/checks/runs#create-a-check-run"
	docUpdateCheck = "https://docs.github.com/rest/checks/runs#update-a-check-run"
	docListChecks  = "https://docs.github.com/rest/checks/runs#list-check-runs-for-a-git-reference"
)

// routes registers the GitHub REST routes tern calls.
func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "Not Found", docRoot)
	})
	mux.HandleFunc("GET /app", s.withApp(s.handleGetApp))
	mux.HandleFunc("GET /app/installations", s.withApp(s.handleListInstallations))
	s.deliveryRoutes(mux) // deliveries.go
	mux.HandleFunc("GET /app/installations/{id}", s.withApp(s.handleGetInstallation))
	mux.HandleFunc("POST /app/installations/{id}/access_tokens", s.withApp(s.handleCreateToken))
	mux.HandleFunc("GET /repos/{owner}/{repo}/installation", s.withApp(s.handleRepoInstallation))

	mux.HandleFunc("GET /repos/{owner}/{repo}/pulls/{number}", s.withRepo(s.handleGetPull))
	mux.HandleFunc("GET /repos/{owner}/{repo}/pulls/{number}/files", s.withRepo(s.handlePullFiles))
	mux.HandleFunc("GET /repos/{owner}/{repo}/pulls/{number}/reviews", s.withRepo(s.handlePullReviews))

	mux.HandleFunc("GET /repos/{owner}/{repo}/contents/{path...}", s.withRepo(s.handleContents))
	mux.HandleFunc("GET /repos/{owner}/{repo}/git/trees/{sha}", s.withRepo(s.handleTree))
	mux.HandleFunc("GET /repos/{owner}/{repo}/git/blobs/{sha}", s.withRepo(s.handleBlob))

	mux.HandleFunc("GET /repos/{owner}/{repo}/issues/{number}", s.withRepo(s.handleGetIssue))
	// "issues/{number}/comments" and "issues/comments/{id}" overlap as
	// ServeMux patterns, so one pattern serves both.
	mux.HandleFunc("/repos/{owner}/{repo}/issues/{a}/{b}", s.withRepo(s.handleIssuesTwo))
	mux.HandleFunc("GET /repos/{owner}/{repo}/issues/comments/{id}/reactions", s.withRepo(s.handleListReactions))
	mux.HandleFunc("POST /repos/{owner}/{repo}/issues/comments/{id}/reactions", s.withRepo(s.handleCreateReaction))
	mux.HandleFunc("DELETE /repos/{owner}/{repo}/issues/comments/{id}/reactions/{rid}", s.withRepo(s.handleDeleteReaction))

	mux.HandleFunc("GET /repos/{owner}/{repo}/collaborators/{user}/permission", s.withRepo(s.handlePermission))

	mux.HandleFunc("POST /repos/{owner}/{repo}/check-runs", s.withRepo(s.handleCreateCheckRun))
	mux.HandleFunc("GET /repos/{owner}/{repo}/check-runs/{id}", s.withRepo(s.handleGetCheckRun))
	mux.HandleFunc("PATCH /repos/{owner}/{repo}/check-runs/{id}", s.withRepo(s.handleUpdateCheckRun))
	mux.HandleFunc("GET /repos/{owner}/{repo}/commits/{ref}/check-runs", s.withRepo(s.handleListCheckRuns))
	return mux
}

// paginate answers GitHub's page and per_page parameters (default 30, at
// most 100) and sets the Link header go-github follows.
func paginate[T any](w http.ResponseWriter, r *http.Request, items []T) []T {
	perPage, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if perPage <= 0 {
		perPage = 30
	}
	perPage = min(perPage, 100)
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	page = max(page, 1)
	last := max((len(items)+perPage-1)/perPage, 1)
	link := func(p int, rel string) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("per_page", strconv.Itoa(perPage))
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
		return fmt.Sprintf("<%s>; rel=%q", u.String(), rel)
	}
	var links []string
	if page < last {
		links = append(links, link(page+1, "next"), link(last, "last"))
	}
	if page > 1 {
		links = append(links, link(1, "first"), link(min(page-1, last), "prev"))
	}
	if len(links) > 0 {
		w.Header().Set("Link", strings.Join(links, ", "))
	}
	start := min((page-1)*perPage, len(items))
	end := min(start+perPage, len(items))
	out := items[start:end]
	if out == nil {
		out = []T{}
	}
	return out
}

func sortInt64(ids []int64) { sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] }) }

func pathInt(w http.ResponseWriter, r *http.Request, name string) (int64, bool) {
	n, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil {
		writeError(w, http.StatusNotFound, "Not Found", docRoot)
		return 0, false
	}
	return n, true
}

func ts(t time.Time) *github.Timestamp { return &github.Timestamp{Time: t} }

func now() *github.Timestamp { return ts(time.Now().UTC().Truncate(time.Second)) }

// ---- pulls ----

func (s *Server) findPull(w http.ResponseWriter, r *http.Request, rp *repo) (*pull, bool) {
	n, ok := pathInt(w, r, "number")
	if !ok {
		return nil, false
	}
	p, ok := rp.pulls[int(n)]
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found", docPulls)
		return nil, false
	}
	return p, true
}

func (s *Server) pullObj(rp *repo, p *pull) *github.PullRequest {
	owner, name, _ := strings.Cut(rp.fullName, "/")
	repoObj := &github.Repository{
		ID: github.Int64(rp.id), Name: github.String(name), FullName: github.String(rp.fullName),
		Owner: &github.User{Login: github.String(owner)}, Private: github.Bool(true),
		DefaultBranch: github.String("main"), HTMLURL: github.String("https://github.com/" + rp.fullName),
	}
	pr := &github.PullRequest{
		ID:           github.Int64(int64(p.number)*100003 + rp.id),
		Number:       github.Int(p.number),
		State:        github.String(p.state),
		Title:        github.String(fmt.Sprintf("Pull request #%d", p.number)),
		User:         userObj(p.author, "User"),
		Merged:       github.Bool(p.merged),
		Mergeable:    p.mergeable,
		Draft:        github.Bool(false),
		ChangedFiles: github.Int(len(p.files)),
		CreatedAt:    ts(p.created),
		UpdatedAt:    ts(p.updated),
		URL:          github.String(fmt.Sprintf("%srepos/%s/pulls/%d", s.URL, rp.fullName, p.number)),
		HTMLURL:      github.String(fmt.Sprintf("https://github.com/%s/pull/%d", rp.fullName, p.number)),
		Head:         s.headBranch(rp, p, repoObj),
		Base: &github.PullRequestBranch{
			Label: github.String(owner + ":main"), Ref: github.String("main"),
			SHA: github.String(p.baseSHA), Repo: repoObj,
		},
	}
	switch {
	case p.state == "closed":
		pr.ClosedAt = ts(p.updated)
		if p.merged {
			pr.MergedAt = ts(p.updated)
		}
		pr.MergeableState = github.String("unknown")
	case p.mergeable == nil:
		pr.MergeableState = github.String("unknown")
	case *p.mergeable:
		pr.MergeableState = github.String("clean")
	default:
		pr.MergeableState = github.String("dirty")
	}
	return pr
}

func (s *Server) handleGetPull(w http.ResponseWriter, r *http.Request, rp *repo) {
	if p, ok := s.findPull(w, r, rp); ok {
		obj := s.pullObj(rp, p)
		stillComputing(p, obj) // mergeable.go
		writeJSON(w, http.StatusOK, obj)
	}
}

func (s *Server) handlePullFiles(w http.ResponseWriter, r *http.Request, rp *repo) {
	if p, ok := s.findPull(w, r, rp); ok {
		writeJSON(w, http.StatusOK, paginate(w, r, p.files[:min(len(p.files), MaxPullFiles)]))
	}
}

func (s *Server) handlePullReviews(w http.ResponseWriter, r *http.Request, rp *repo) {
	if p, ok := s.findPull(w, r, rp); ok {
		writeJSON(w, http.StatusOK, paginate(w, r, p.reviews))
	}
}

// ---- contents, trees, blobs: see trees.go ----

// BlobSHA is the object id Git gives a file of this content, as the fake
// names its blobs.
func BlobSHA(content string) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(content))
	h.Write([]byte(content))
	return hex.EncodeToString(h.Sum(nil))
}

// ---- issues, comments, reactions ----

func (s *Server) handleGetIssue(w http.ResponseWriter, r *http.Request, rp *repo) {
	n, ok := pathInt(w, r, "number")
	if !ok {
		return
	}
	if !rp.issues[int(n)] {
		writeError(w, http.StatusNotFound, "Not Found", "https://docs.github.com/rest/issues/issues#get-an-issue")
		return
	}
	is := &github.Issue{
		Number: github.Int(int(n)), State: github.String("open"),
		Title:   github.String(fmt.Sprintf("Issue #%d", n)),
		HTMLURL: github.String(fmt.Sprintf("https://github.com/%s/issues/%d", rp.fullName, n)),
	}
	if p, ok := rp.pulls[int(n)]; ok {
		is.State = github.String(p.state)
		is.User = userObj(p.author, "User")
		is.PullRequestLinks = &github.PullRequestLinks{
			URL:     github.String(fmt.Sprintf("%srepos/%s/pulls/%d", s.URL, rp.fullName, n)),
			HTMLURL: github.String(fmt.Sprintf("https://github.com/%s/pull/%d", rp.fullName, n)),
		}
	}
	writeJSON(w, http.StatusOK, is)
}

// handleIssuesTwo serves /issues/{number}/comments and /issues/comments/{id}.
func (s *Server) handleIssuesTwo(w http.ResponseWriter, r *http.Request, rp *repo) {
	a, b := r.PathValue("a"), r.PathValue("b")
	switch {
	case a == "comments":
		id, err := strconv.ParseInt(b, 10, 64)
		if err != nil {
			writeError(w, http.StatusNotFound, "Not Found", docComments)
			return
		}
		switch r.Method {
		case http.MethodGet:
			s.getComment(w, rp, id)
		case http.MethodPatch:
			s.editComment(w, r, rp, id)
		case http.MethodDelete:
			s.deleteComment(w, rp, id)
		default:
			writeError(w, http.StatusNotFound, "Not Found", docComments)
		}
	case b == "comments":
		n, err := strconv.Atoi(a)
		if err != nil || !rp.issues[n] {
			writeError(w, http.StatusNotFound, "Not Found", docComments)
			return
		}
		switch r.Method {
		case http.MethodGet:
			var out []*github.IssueComment
			for _, c := range rp.comments {
				if c.issue == n {
					out = append(out, c.c)
				}
			}
			writeJSON(w, http.StatusOK, paginate(w, r, out))
		case http.MethodPost:
			var in github.IssueComment
			if !decodeBody(w, r, &in) || !validCommentBody(w, in.Body) {
				return
			}
			c := s.newCommentLocked(rp, n, userObj(BotLogin, "Bot"), in.GetBody())
			writeJSON(w, http.StatusCreated, c)
		default:
			writeError(w, http.StatusNotFound, "Not Found", docComments)
		}
	default:
		writeError(w, http.StatusNotFound, "Not Found", docRoot)
	}
}

// validCommentBody answers 422 as GitHub does for a missing or over-long
// comment body.
func validCommentBody(w http.ResponseWriter, body *string) bool {
	if body == nil || strings.TrimSpace(*body) == "" {
		writeValidation(w, docComments, "IssueComment", "body", "missing_field", "")
		return false
	}
	if utf8.RuneCountInString(*body) > MaxCommentBody {
		writeValidation(w, docComments, "IssueComment", "body", "custom",
			fmt.Sprintf("body is too long (maximum is %d characters)", MaxCommentBody))
		return false
	}
	return true
}

func (rp *repo) findComment(id int64) (int, bool) {
	for i, c := range rp.comments {
		if c.c.GetID() == id {
			return i, true
		}
	}
	return 0, false
}

func (s *Server) getComment(w http.ResponseWriter, rp *repo, id int64) {
	i, ok := rp.findComment(id)
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found", docComments)
		return
	}
	writeJSON(w, http.StatusOK, rp.comments[i].c)
}

func (s *Server) editComment(w http.ResponseWriter, r *http.Request, rp *repo, id int64) {
	i, ok := rp.findComment(id)
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found", docComments)
		return
	}
	var in github.IssueComment
	if !decodeBody(w, r, &in) || !validCommentBody(w, in.Body) {
		return
	}
	c := rp.comments[i].c
	c.Body = github.String(in.GetBody())
	c.UpdatedAt = now()
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) deleteComment(w http.ResponseWriter, rp *repo, id int64) {
	i, ok := rp.findComment(id)
	if !ok {
		writeError(w, http.StatusNotFound, "Not Found", docComments)
		return
	}
	rp.comments = append(rp.comments[:i], rp.comments[i+1:]...)
	delete(rp.reactions, id)
	w.WriteHeader(http.StatusNoContent)
}

var reactionContents = map[string]bool{
	"+1": true, "-1": true, "laugh": true, "confused": true, "heart": true, "hooray": true, "rocket": true, "eyes": true,
}

func reactionObj(re reaction) *github.Reaction {
	return &github.Reaction{
		ID: github.Int64(re.id), NodeID: github.String(fmt.Sprintf("REA_%d", re.id)),
		User: userObj(re.user, "Bot"), Content: github.String(re.content),
	}
}

func (s *Server) handleCreateReaction(w http.ResponseWriter, r *http.Request, rp *repo) {
	id, ok := pathInt(w, r, "id")
	if !ok {
		return
	}
	if _, ok := rp.findComment(id); !ok {
		writeError(w, http.StatusNotFound, "Not Found", docReactions)
		return
	}
	var in github.Reaction
	if !decodeBody(w, r, &in) {
		return
	}
	if !reactionContents[in.GetContent()] {
		writeValidation(w, docReactions, "Reaction", "content", "invalid", "")
		return
	}
	for _, re := range rp.reactions[id] {
		if re.user == BotLogin && re.content == in.GetContent() {
			writeJSON(w, http.StatusOK, reactionObj(re))
			return
		}
	}
	re := reaction{id: s.id(), user: BotLogin, content: in.GetContent()}
	rp.reactions[id] = append(rp.reactions[id], re)
	writeJSON(w, http.StatusCreated, reactionObj(re))
}

func (s *Server) handleListReactions(w http.ResponseWriter, r *http.Request, rp *repo) {
	id, ok := pathInt(w, r, "id")
	if !ok {
		return
	}
	if _, ok := rp.findComment(id); !ok {
		writeError(w, http.StatusNotFound, "Not Found", docReactions)
		return
	}
	out := []*github.Reaction{}
	for _, re := range rp.reactions[id] {
		if c := r.URL.Query().Get("content"); c == "" || c == re.content {
			out = append(out, reactionObj(re))
		}
	}
	writeJSON(w, http.StatusOK, paginate(w, r, out))
}

func (s *Server) handleDeleteReaction(w http.ResponseWriter, r *http.Request, rp *repo) {
	id, ok := pathInt(w, r, "id")
	if !ok {
		return
	}
	rid, ok := pathInt(w, r, "rid")
	if !ok {
		return
	}
	list := rp.reactions[id]
	for i, re := range list {
		if re.id == rid {
			rp.reactions[id] = append(list[:i:i], list[i+1:]...)
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	writeError(w, http.StatusNotFound, "Not Found", docReactions)
}

// ---- collaborators ----

// permissionLevel is GitHub's answer, with role_name, which go-github v60's
// RepositoryPermissionLevel lacks.
type permissionLevel struct {
	Permission string       `json:"permission"`
	RoleName   string       `json:"role_name"`
	User       *github.User `json:"user"`
}

func (s *Server) handlePermission(w http.ResponseWriter, r *http.Request, rp *repo) {
	user := r.PathValue("user")
	role, ok := rp.perms[strings.ToLower(user)]
	if !ok {
		role = "none"
	}
	perm := role
	switch role {
	case "maintain":
		perm = "write"
	case "triage":
		perm = "read"
	}
	u := userObj(user, "User")
	writeJSON(w, http.StatusOK, permissionLevel{Permission: perm, RoleName: role, User: u})
}

// ---- check runs ----

var (
	checkStatuses    = map[string]bool{"queued": true, "in_progress": true, "completed": true}
	checkConclusions = map[string]bool{
		"action_required": true, "cancelled": true, "failure": true, "neutral": true,
		"success": true, "skipped": true, "timed_out": true,
	}
)

// validateRun applies GitHub's rules to a create or update request and
// answers 422 for the first one broken.
func validateRun(w http.ResponseWriter, doc string, status, conclusion *string, out *github.CheckRunOutput, actions []*github.CheckRunAction) bool {
	fail := func(field, code, msg string) bool {
		writeValidation(w, doc, "CheckRun", field, code, msg)
		return false
	}
	if status != nil && !checkStatuses[*status] {
		return fail("status", "invalid", fmt.Sprintf("%q is not a valid status", *status))
	}
	if conclusion != nil && !checkConclusions[*conclusion] {
		return fail("conclusion", "invalid", fmt.Sprintf("%q is not a valid conclusion", *conclusion))
	}
	if conclusion != nil && (status == nil || *status != "completed") {
		return fail("conclusion", "custom", "conclusion can only be set with status completed")
	}
	if status != nil && *status == "completed" && conclusion == nil {
		return fail("conclusion", "missing_field", "conclusion is required when status is completed")
	}
	if out != nil {
		if out.Title == nil {
			return fail("output.title", "missing_field", "")
		}
		if out.Summary == nil {
			return fail("output.summary", "missing_field", "")
		}
		for field, v := range map[string]*string{"output.title": out.Title, "output.summary": out.Summary, "output.text": out.Text} {
			if v != nil && utf8.RuneCountInString(*v) > MaxCheckRunText {
				return fail(field, "custom", fmt.Sprintf("%s is too long (maximum is %d characters)", field, MaxCheckRunText))
			}
		}
		if len(out.Annotations) > 50 {
			return fail("output.annotations", "custom", "at most 50 annotations per request")
		}
	}
	if len(actions) > MaxCheckRunActions {
		return fail("actions", "custom", fmt.Sprintf("at most %d actions", MaxCheckRunActions))
	}
	for _, a := range actions {
		switch {
		case a == nil || a.Label == "" || a.Description == "" || a.Identifier == "":
			return fail("actions", "missing_field", "label, description and identifier are required")
		case utf8.RuneCountInString(a.Label) > 20:
			return fail("actions.label", "custom", "label is too long (maximum is 20 characters)")
		case utf8.RuneCountInString(a.Description) > 40:
			return fail("actions.description", "custom", "description is too long (maximum is 40 characters)")
		case utf8.RuneCountInString(a.Identifier) > 20:
			return fail("actions.identifier", "custom", "identifier is too long (maximum is 20 characters)")
		}
	}
	return true
}

func storedOutput(out *github.CheckRunOutput) *github.CheckRunOutput {
	o := &github.CheckRunOutput{Title: out.Title, Summary: out.Summary, Text: out.Text, AnnotationsCount: github.Int(len(out.Annotations))}
	return o
}

func (s *Server) handleCreateCheckRun(w http.ResponseWriter, r *http.Request, rp *repo) {
	var in github.CreateCheckRunOptions
	if !decodeBody(w, r, &in) {
		return
	}
	if in.Name == "" {
		writeValidation(w, docCheckRuns, "CheckRun", "name", "missing_field", "")
		return
	}
	if in.HeadSHA == "" {
		writeValidation(w, docCheckRuns, "CheckRun", "head_sha", "missing_field", "")
		return
	}
	if _, ok := rp.trees[in.HeadSHA]; !ok {
		writeError(w, http.StatusUnprocessableEntity, "No commit found for SHA: "+in.HeadSHA, docCheckRuns)
		return
	}
	if !validateRun(w, docCheckRuns, in.Status, in.Conclusion, in.Output, in.Actions) {
		return
	}
	id := s.id()
	cr := &github.CheckRun{
		ID: github.Int64(id), NodeID: github.String(fmt.Sprintf("CR_%d", id)),
		Name: github.String(in.Name), HeadSHA: github.String(in.HeadSHA),
		ExternalID: in.ExternalID, DetailsURL: in.DetailsURL,
		Status: github.String("queued"), StartedAt: in.StartedAt,
		URL:        github.String(fmt.Sprintf("%srepos/%s/check-runs/%d", s.URL, rp.fullName, id)),
		HTMLURL:    github.String(fmt.Sprintf("https://github.com/%s/runs/%d", rp.fullName, id)),
		CheckSuite: &github.CheckSuite{ID: github.Int64(rp.id*1000 + 1)},
		App:        &github.App{ID: github.Int64(s.AppID), Slug: github.String("tern"), Name: github.String("tern")},
		Output:     &github.CheckRunOutput{AnnotationsCount: github.Int(0)},
	}
	if cr.StartedAt == nil {
		cr.StartedAt = now()
	}
	if in.Status != nil {
		cr.Status = github.String(*in.Status)
	}
	if in.Conclusion != nil {
		cr.Conclusion = github.String(*in.Conclusion)
		cr.CompletedAt = in.CompletedAt
		if cr.CompletedAt == nil {
			cr.CompletedAt = now()
		}
	}
	if in.Output != nil {
		cr.Output = storedOutput(in.Output)
	}
	rp.checkRuns = append(rp.checkRuns, cr)
	if len(in.Actions) > 0 {
		rp.setActions(id, in.Actions)
	}
	writeJSON(w, http.StatusCreated, cr)
}

func (rp *repo) findRun(id int64) *github.CheckRun {
	for _, cr := range rp.checkRuns {
		if cr.GetID() == id {
			return cr
		}
	}
	return nil
}

func (s *Server) handleGetCheckRun(w http.ResponseWriter, r *http.Request, rp *repo) {
	id, ok := pathInt(w, r, "id")
	if !ok {
		return
	}
	cr := rp.findRun(id)
	if cr == nil {
		writeError(w, http.StatusNotFound, "Not Found", "https://docs.github.com/rest/checks/runs#get-a-check-run")
		return
	}
	writeJSON(w, http.StatusOK, cr)
}

func (s *Server) handleUpdateCheckRun(w http.ResponseWriter, r *http.Request, rp *repo) {
	id, ok := pathInt(w, r, "id")
	if !ok {
		return
	}
	cr := rp.findRun(id)
	if cr == nil {
		writeError(w, http.StatusNotFound, "Not Found", docUpdateCheck)
		return
	}
	var in github.UpdateCheckRunOptions
	if !decodeBody(w, r, &in) {
		return
	}
	if !validateRun(w, docUpdateCheck, in.Status, in.Conclusion, in.Output, in.Actions) {
		return
	}
	if in.Name != "" {
		cr.Name = github.String(in.Name)
	}
	if in.DetailsURL != nil {
		cr.DetailsURL = in.DetailsURL
	}
	if in.ExternalID != nil {
		cr.ExternalID = in.ExternalID
	}
	if in.Output != nil {
		cr.Output = storedOutput(in.Output)
	}
	if in.Actions != nil {
		rp.setActions(id, in.Actions)
	}
	if in.Status != nil {
		if cr.GetStatus() == "completed" && *in.Status != "completed" {
			s.reopened = append(s.reopened, ReopenedRun{Repo: rp.fullName, ID: id, Name: cr.GetName(), NewStatus: *in.Status})
		}
		cr.Status = github.String(*in.Status)
		if *in.Status == "completed" {
			cr.Conclusion = github.String(*in.Conclusion)
			cr.CompletedAt = in.CompletedAt
			if cr.CompletedAt == nil {
				cr.CompletedAt = now()
			}
		} else {
			cr.Conclusion, cr.CompletedAt = nil, nil
		}
	}
	writeJSON(w, http.StatusOK, cr)
}

func (s *Server) handleListCheckRuns(w http.ResponseWriter, r *http.Request, rp *repo) {
	ref := r.PathValue("ref")
	sha, ok := rp.resolveRef(ref)
	if !ok {
		writeError(w, http.StatusUnprocessableEntity, "No commit found for SHA: "+ref, docListChecks)
		return
	}
	q := r.URL.Query()
	filter := q.Get("filter")
	if filter == "" {
		filter = "latest"
	}
	if filter != "latest" && filter != "all" {
		writeValidation(w, docListChecks, "CheckRun", "filter", "invalid", "")
		return
	}
	seen := map[string]bool{}
	var out []*github.CheckRun
	for i := len(rp.checkRuns) - 1; i >= 0; i-- { // newest first, as GitHub lists them
		cr := rp.checkRuns[i]
		if cr.GetHeadSHA() != sha {
			continue
		}
		if filter == "latest" {
			if seen[cr.GetName()] {
				continue
			}
			seen[cr.GetName()] = true
		}
		if n := q.Get("check_name"); n != "" && n != cr.GetName() {
			continue
		}
		if st := q.Get("status"); st != "" && st != cr.GetStatus() {
			continue
		}
		if a := q.Get("app_id"); a != "" && a != strconv.FormatInt(s.AppID, 10) {
			continue
		}
		out = append(out, cr)
	}
	total := len(out)
	writeJSON(w, http.StatusOK, &github.ListCheckRunsResults{Total: github.Int(total), CheckRuns: paginate(w, r, out)})
}

func (rp *repo) setActions(id int64, actions []*github.CheckRunAction) {
	rp.runActions[id] = clone(actions)
}
