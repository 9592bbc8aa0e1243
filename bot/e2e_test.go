package bot

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/apply"
	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/engine/mysqlddl"
	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/store"
)

const (
	repoName = "acme/shop"
	inst     = int64(77)
	secret   = "webhook-secret"
)

// testTargets resolves targets from the config with the MySQL engine
// (standing in for package targets in these tests).
type testTargets struct {
	cfg    *config.Config
	shadow *sql.DB
	mu     sync.Mutex
	cache  map[string]*apply.Target
}

func (tt *testTargets) Target(ctx context.Context, repo, db, env string) (*apply.Target, error) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	k := repo + "/" + db + "/" + env
	if t, ok := tt.cache[k]; ok {
		return t, nil
	}
	c, ok := tt.cfg.Target(repo, db, env)
	if !ok || c.MySQL == nil {
		return nil, fmt.Errorf("no target %s", k)
	}
	e, err := mysqlddl.New(*c.MySQL, db)
	if err != nil {
		return nil, err
	}
	t := &apply.Target{Engine: e, Shadow: tt.shadow, Cost: plan.CostOptions{MaxBlockingRows: c.MySQL.BlockingRows()}}
	tt.cache[k] = t
	return t, nil
}

type harness struct {
	t       *testing.T
	gh      *fakegithub.Server
	st      *store.Store
	bot     *Bot
	url     string
	staging *sql.DB
	prod    *sql.DB
	seq     atomic.Int64
}

const usersV1 = "CREATE TABLE users (\n  id bigint NOT NULL AUTO_INCREMENT,\n  name varchar(100) NOT NULL,\n  PRIMARY KEY (id)\n);\n"
const usersV2 = "CREATE TABLE users (\n  id bigint NOT NULL AUTO_INCREMENT,\n  name varchar(100) NOT NULL,\n  email varchar(255) NOT NULL DEFAULT '',\n  PRIMARY KEY (id)\n);\n"
const usersDropName = "CREATE TABLE users (\n  id bigint NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (id)\n);\n"
const ternYAML = "databases:\n  - name: shop\n    schema_dir: db/shop\n    environments: [staging, production]\n"

func files(users string) map[string]string {
	return map[string]string{"tern.yaml": ternYAML, "db/shop/users.sql": users, "README.md": "hello"}
}

func newHarness(t *testing.T, opts ...func(*Options)) *harness {
	t.Helper()
	return newHarnessLockWait(t, "2s", opts...)
}

// newHarnessLockWait is newHarness with the targets' lock_wait_timeout.
func newHarnessLockWait(t *testing.T, lockWait string, opts ...func(*Options)) *harness {
	t.Helper()
	return newHarnessWith(t, lockWait, "", opts...)
}

// newHarnessWith is newHarness with the targets' lock_wait_timeout and
// more keys for both MySQL targets (", max_blocking_rows: 10").
func newHarnessWith(t *testing.T, lockWait, mysqlExtra string, opts ...func(*Options)) *harness {
	t.Helper()
	storeDSN, _ := testdb.New(t, "bot_store")
	stagingDB, stagingName := testdb.Open(t, "bot_staging")
	prodDB, prodName := testdb.Open(t, "bot_prod")
	for _, db := range []*sql.DB{stagingDB, prodDB} {
		if _, err := db.Exec(strings.TrimSuffix(usersV1, ";\n")); err != nil {
			t.Fatal(err)
		}
	}
	dsnFor := func(name string) string {
		c := testdb.Config(t)
		c.DBName = name
		return c.FormatDSN()
	}
	gh, err := fakegithub.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)
	gh.AddInstallation(repoName, inst)
	gh.SetPermission(repoName, "alice", "write")
	gh.SetPermission(repoName, "mallory", "read")

	yaml := fmt.Sprintf(`store:
  dsn: %q
github:
  api_url: %q
  app_id: %d
  private_key: ${KEY}
  webhook_secret: %q
targets:
  - {repository: %s, database: shop, environment: staging, mysql: {dsn: %q, lock_wait_timeout: %s%s}}
  - {repository: %s, database: shop, environment: production, mysql: {dsn: %q, lock_wait_timeout: %s%s}}
recovery:
  max_attempts: 3
  backoff_base: 1s
  backoff_max: 2s
  lease: 30s
`, storeDSN, gh.URL, gh.AppID, secret, repoName, dsnFor(stagingName), lockWait, mysqlExtra, repoName, dsnFor(prodName), lockWait, mysqlExtra)
	cfg, err := config.Parse([]byte(yaml), func(k string) (string, bool) { return string(gh.PrivateKeyPEM), k == "KEY" })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st, err := store.Open(ctx, storeDSN)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	shadowCfg := testdb.Config(t)
	shadow, err := sql.Open("mysql", shadowCfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	targets := &testTargets{cfg: cfg, shadow: shadow, cache: map[string]*apply.Target{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(&testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	planner := &plan.Planner{}
	runner := &apply.Runner{Store: st, Targets: targets, Planner: planner, Policy: apply.PolicyFromConfig(cfg.Recovery), Logger: log}
	o := Options{Config: cfg, Store: st, Runner: runner, Targets: targets, Planner: planner, Logger: log, Poll: 200 * time.Millisecond,
		DeliveryAttempts: 3, DeliveryBackoff: 20 * time.Millisecond,
		GitHubRetry: RetryPolicy{Sleep: func(ctx context.Context, d time.Duration) error { return ctx.Err() }}}
	for _, f := range opts {
		f(&o)
	}
	b, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	runner.Listener = b
	srv := httptest.NewServer(b.Handler())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
		for _, tg := range targets.cache {
			tg.Engine.Close()
		}
		shadow.Close()
		st.Close()
	})
	return &harness{t: t, gh: gh, st: st, bot: b, url: srv.URL + "/webhook", staging: stagingDB, prod: prodDB}
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// deliver sends a signed delivery and waits until it was processed.
func (h *harness) deliver(event string, body []byte) string {
	h.t.Helper()
	id := fmt.Sprintf("delivery-%d-%d", time.Now().UnixNano(), h.seq.Add(1))
	h.deliverID(event, id, body, http.StatusAccepted)
	h.waitProcessed(id)
	return id
}

func (h *harness) deliverID(event, id string, body []byte, wantStatus int) {
	h.t.Helper()
	resp, err := fakegithub.Deliver(context.Background(), h.url, event, id, secret, body)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != wantStatus {
		h.t.Fatalf("delivery %s: status %d, want %d", id, resp.StatusCode, wantStatus)
	}
}

func (h *harness) waitProcessed(id string) {
	h.t.Helper()
	h.waitFor("delivery "+id+" processed", func() bool {
		var state, lastErr string
		err := h.st.DB().QueryRow("SELECT state, last_error FROM tern_deliveries WHERE id = ?", id).Scan(&state, &lastErr)
		if err != nil || state == "pending" {
			return false
		}
		if lastErr != "" {
			h.t.Fatalf("delivery %s failed: %s", id, lastErr)
		}
		return true
	})
}

// waitFor polls cond until it holds; the generous deadline only stops a
// hung test, it asserts nothing about speed.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// openPR opens pull request n whose head tree is f. Its base commit holds
// the same tern.yaml as f (none when f has none) and no schema files, as
// for a repository where tern is set up and the PR adds the schema.
func (h *harness) openPR(n int, sha string, f map[string]string) {
	h.t.Helper()
	h.gh.SetBase(repoName, baseOf(f))
	h.gh.OpenPR(repoName, n, sha, f)
	body, err := fakegithub.PRPayload("opened", repoName, n, sha, inst)
	if err != nil {
		h.t.Fatal(err)
	}
	h.deliver("pull_request", body)
}

// baseOf is the base tree for a head tree f: its tern.yaml alone.
func baseOf(f map[string]string) map[string]string {
	if y, ok := f["tern.yaml"]; ok {
		return map[string]string{"tern.yaml": y}
	}
	return map[string]string{}
}

// comment posts a comment as user and delivers its webhook; it returns the
// comment's id.
func (h *harness) comment(n int, user, userType, body string) int64 {
	h.t.Helper()
	c := h.gh.AddComment(repoName, n, user, userType, body)
	payload, err := fakegithub.CommentPayload(repoName, n, c.GetID(), user, userType, body, inst)
	if err != nil {
		h.t.Fatal(err)
	}
	h.deliver("issue_comment", payload)
	return c.GetID()
}

func (h *harness) botComments(n int) []string {
	var out []string
	for _, c := range h.gh.Comments(repoName, n) {
		if c.GetUser().GetType() == "Bot" {
			out = append(out, c.GetBody())
		}
	}
	return out
}

func (h *harness) lastBotComment(n int) string {
	cs := h.botComments(n)
	if len(cs) == 0 {
		return ""
	}
	return cs[len(cs)-1]
}

func (h *harness) check(sha, name string) *github.CheckRun {
	return h.gh.LatestCheckRun(repoName, sha, name)
}

func (h *harness) waitCheck(sha, name, titlePrefix string) *github.CheckRun {
	h.t.Helper()
	var run *github.CheckRun
	h.waitFor(fmt.Sprintf("check %s titled %q...", name, titlePrefix), func() bool {
		run = h.check(sha, name)
		return run != nil && strings.HasPrefix(run.GetOutput().GetTitle(), titlePrefix)
	})
	return run
}

func hasColumn(t *testing.T, db *sql.DB, table, col string) bool {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?", table, col).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func assertReactions(t *testing.T, gh *fakegithub.Server, id int64, want ...string) {
	t.Helper()
	got := gh.Reactions(repoName, id)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("reactions %v, want %v", got, want)
	}
}

const (
	sha1 = "1111111111111111111111111111111111111111"
	sha2 = "2222222222222222222222222222222222222222"
	sha3 = "3333333333333333333333333333333333333333"
)

func TestAutoplanPostsPlanCommentAndChecks(t *testing.T) {
	h := newHarness(t)
	h.openPR(2, sha1, files(usersV2))

	plans := 0
	for _, c := range h.botComments(2) {
		if strings.Contains(c, "<!-- tern:plan -->") {
			plans++
			if !strings.Contains(norm(c), "add column email") || !strings.Contains(c, "/tern apply -e staging") {
				t.Errorf("plan comment lacks the DDL or the next command:\n%s", c)
			}
		}
	}
	if plans != 1 {
		t.Fatalf("%d plan comments, want 1", plans)
	}
	for name, want := range map[string][2]string{
		"tern/shop/staging":    {"action_required", "Awaiting apply"},
		"tern/shop/production": {"action_required", "Waiting for staging"},
		"tern":                 {"action_required", ""},
	} {
		run := h.check(sha1, name)
		if run == nil {
			t.Fatalf("no check run %s", name)
		}
		if run.GetStatus() != "completed" || run.GetConclusion() != want[0] || !strings.HasPrefix(run.GetOutput().GetTitle(), want[1]) {
			t.Errorf("%s: %s/%s %q, want completed/%s %q...", name, run.GetStatus(), run.GetConclusion(), run.GetOutput().GetTitle(), want[0], want[1])
		}
	}

	// A push that changes the schema again edits the same comment.
	h.gh.Push(repoName, 2, sha2, files(usersDropName))
	body, _ := fakegithub.PRPayload("synchronize", repoName, 2, sha2, inst)
	h.deliver("pull_request", body)
	n := 0
	for _, c := range h.botComments(2) {
		if strings.Contains(c, "<!-- tern:plan -->") {
			n++
			if !strings.Contains(norm(c), "drop column name") {
				t.Errorf("plan comment not re-planned:\n%s", c)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d plan comments after re-plan, want 1 edited in place", n)
	}
}

func TestAutoplanSkipsPRWithoutSchemaChanges(t *testing.T) {
	h := newHarness(t)
	h.gh.OpenPR(repoName, 5, sha1, map[string]string{"README.md": "x"})
	body, _ := fakegithub.PRPayload("opened", repoName, 5, sha1, inst)
	h.deliver("pull_request", body)
	if c := h.botComments(5); len(c) != 0 {
		t.Errorf("bot commented on a PR without tern.yaml: %v", c)
	}
}

// A PR whose tern.yaml does not parse gets the error in one plan comment,
// once per head however often it is delivered, and no check runs.
func TestAutoplanShowsTernYAMLError(t *testing.T) {
	h := newHarness(t)
	f := files(usersV2)
	f["tern.yaml"] = "databases: []\n"
	h.openPR(6, sha1, f)
	body, _ := fakegithub.PRPayload("synchronize", repoName, 6, sha1, inst)
	h.deliver("pull_request", body)
	cs := h.botComments(6)
	if len(cs) != 1 {
		t.Fatalf("%d bot comments, want 1 plan comment: %v", len(cs), cs)
	}
	for _, want := range []string{"<!-- tern:plan -->", "**Plan failed**: tern.yaml: databases: at least one database is required"} {
		if !strings.Contains(cs[0], want) {
			t.Errorf("plan comment lacks %q:\n%s", want, cs[0])
		}
	}
	if c := h.check(sha1, "tern"); c != nil {
		t.Errorf("tern check set on a PR whose tern.yaml does not parse: %s", c.GetOutput().GetTitle())
	}
}

// A schema_dir that is not in the PR head says so in the plan comment,
// instead of "no *.sql files".
func TestPlanSaysSchemaDirMissing(t *testing.T) {
	h := newHarness(t)
	f := files(usersV2)
	f["tern.yaml"] = strings.Replace(ternYAML, "schema_dir: db/shop", "schema_dir: db/shopp", 1)
	h.openPR(7, sha1, f)
	h.comment(7, "alice", "User", "/tern plan")
	cs := h.botComments(7)
	if len(cs) == 0 || !strings.Contains(cs[0], "schema_dir db/shopp does not exist") {
		t.Errorf("plan comment does not say the schema_dir is missing: %v", cs)
	}
}

func TestApplyStagingThenProduction(t *testing.T) {
	h := newHarness(t)
	h.openPR(2, sha1, files(usersV2))

	// Production before staging is refused, naming staging.
	id := h.comment(2, "alice", "User", "/tern apply -e production")
	if c := h.lastBotComment(2); !strings.Contains(c, "refused") || !strings.Contains(c, "`staging` first") {
		t.Errorf("production before staging: reply %q", c)
	}
	assertReactions(t, h.gh, id, "eyes", "confused")
	if hasColumn(t, h.prod, "users", "email") {
		t.Fatal("production changed before staging")
	}

	id = h.comment(2, "alice", "User", "/tern apply -e staging")
	run := h.waitCheck(sha1, "tern/shop/staging", "Applied")
	h.waitReported(2, "staging")
	if run.GetConclusion() != "success" {
		t.Errorf("staging check %s", run.GetConclusion())
	}
	if !hasColumn(t, h.staging, "users", "email") {
		t.Fatal("staging table not changed")
	}
	assertReactions(t, h.gh, id, "eyes", "rocket")
	// Production is next now; the aggregate still blocks.
	h.waitCheck(sha1, "tern/shop/production", "Awaiting apply")
	if agg := h.check(sha1, "tern"); agg.GetConclusion() == "success" {
		t.Error("aggregate success while production awaits apply")
	}
	applyComments := 0
	for _, c := range h.botComments(2) {
		if strings.Contains(c, "<!-- tern:apply:") {
			applyComments++
			if !strings.Contains(c, "Applied") {
				t.Errorf("apply comment not updated to Applied:\n%s", c)
			}
		}
	}
	if applyComments != 1 {
		t.Errorf("%d apply comments, want 1", applyComments)
	}

	h.comment(2, "alice", "User", "/tern apply -e production")
	h.waitCheck(sha1, "tern/shop/production", "Applied")
	if !hasColumn(t, h.prod, "users", "email") {
		t.Fatal("production table not changed")
	}
	agg := h.waitCheck(sha1, "tern", "")
	h.waitFor("aggregate success", func() bool {
		agg = h.check(sha1, "tern")
		return agg.GetConclusion() == "success"
	})
	if agg.GetStatus() != "completed" {
		t.Errorf("aggregate %s", agg.GetStatus())
	}
	if r := h.gh.ReopenedRuns(); len(r) != 0 {
		t.Errorf("completed check runs reopened: %+v", r)
	}
}

func TestLockRefusesSecondPRAndCloseReleasesIt(t *testing.T) {
	h := newHarness(t)
	h.openPR(2, sha1, files(usersV2))
	h.comment(2, "alice", "User", "/tern apply -e staging")
	h.waitCheck(sha1, "tern/shop/staging", "Applied")
	h.waitReported(2, "staging")

	h.openPR(3, sha2, files(usersDropName))
	id := h.comment(3, "alice", "User", "/tern apply -e staging --allow-unsafe")
	if c := h.lastBotComment(3); !strings.Contains(c, "locked by #2") {
		t.Errorf("second PR: reply %q, want it to name #2", c)
	}
	assertReactions(t, h.gh, id, "eyes", "confused")

	// Closing #2 without merging releases the lock and says what is live.
	h.gh.ClosePR(repoName, 2, false)
	body, _ := fakegithub.PRPayload("closed", repoName, 2, sha1, inst)
	h.deliver("pull_request", body)
	if _, err := h.st.GetLock(context.Background(), repoName, "shop", "staging"); err == nil {
		t.Fatal("lock still held after the PR closed")
	}
	if c := h.lastBotComment(2); !strings.Contains(c, "closed without merging") || !strings.Contains(norm(c), "add column email") || !strings.Contains(c, "shop/staging") {
		t.Errorf("no live-but-not-merged comment: %q", c)
	}

	// Now #3 may apply (its plan changed since staging moved: re-plan first).
	h.comment(3, "alice", "User", "/tern plan")
	h.comment(3, "alice", "User", "/tern apply -e staging --allow-unsafe")
	h.waitCheck(sha2, "tern/shop/staging", "Applied")
	if hasColumn(t, h.staging, "users", "name") {
		t.Error("#3's apply did not run")
	}
}

func TestRefusals(t *testing.T) {
	h := newHarness(t)
	h.openPR(2, sha1, files(usersDropName))
	cases := []struct {
		user, body string
		want       []string
	}{
		{"mallory", "/tern apply -e staging", []string{"needs `write`", "@mallory"}},
		{"alice", "/tern apply -e staging", []string{"unsafe", "drop column name", "--allow-unsafe"}},
		{"alice", "/tern aply -e staging", []string{`unknown command "aply"`, "/tern apply -e ENV"}},
		{"alice", "/tern apply -e staging --force", []string{`unknown flag "--force"`, "Usage"}},
		{"alice", "/tern apply -e qa", []string{`environment "qa" is not in tern.yaml`}},
	}
	for _, c := range cases {
		id := h.comment(2, c.user, "User", c.body)
		reply := h.lastBotComment(2)
		for _, w := range c.want {
			if !strings.Contains(norm(reply), norm(w)) {
				t.Errorf("%s by %s: reply lacks %q:\n%s", c.body, c.user, w, reply)
			}
		}
		assertReactions(t, h.gh, id, "eyes", "confused")
	}
	if run := h.check(sha1, "tern/shop/staging"); !strings.HasPrefix(run.GetOutput().GetTitle(), "Unsafe changes") || run.GetConclusion() != "action_required" {
		t.Errorf("staging check after unsafe refusal: %s %q", run.GetConclusion(), run.GetOutput().GetTitle())
	}
	if !hasColumn(t, h.staging, "users", "name") {
		t.Fatal("a refused apply changed the table")
	}
	applies, err := h.st.AppliesForPR(context.Background(), repoName, 2)
	if err != nil || len(applies) != 0 {
		t.Fatalf("refused commands created applies: %v %v", applies, err)
	}
}

func TestIgnoredComments(t *testing.T) {
	h := newHarness(t)
	h.openPR(2, sha1, files(usersV2))
	before := len(h.gh.Comments(repoName, 2))

	// A bot's own comment.
	h.comment(2, "tern[bot]", "Bot", "/tern apply -e staging")
	// A comment on a plain issue.
	c := h.gh.AddComment(repoName, 9, "alice", "User", "/tern apply -e staging")
	payload, err := fakegithub.Fixture("issue_comment.created.issue.json")
	if err != nil {
		t.Fatal(err)
	}
	payload, err = fakegithub.Edit(payload, map[string]any{
		"repository.full_name": repoName, "repository.name": "shop", "repository.owner.login": "acme",
		"issue.number": 9, "comment.id": c.GetID(), "comment.body": "/tern apply -e staging",
		"comment.user.login": "alice", "sender.login": "alice", "installation.id": inst,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.deliver("issue_comment", payload)
	// An edited comment.
	edited, _ := fakegithub.CommentPayload(repoName, 2, 424242, "alice", "User", "/tern apply -e staging", inst)
	edited, _ = fakegithub.Edit(edited, map[string]any{"action": "edited"})
	h.deliver("issue_comment", edited)

	if after := len(h.gh.Comments(repoName, 2)); after != before+1 { // +1: the bot's own comment itself
		t.Errorf("bot answered an ignored comment: %d comments, want %d", after, before+1)
	}
	if len(h.gh.Comments(repoName, 9)) != 1 || len(h.gh.Reactions(repoName, c.GetID())) != 0 {
		t.Error("bot answered a plain issue")
	}
	applies, _ := h.st.AppliesForPR(context.Background(), repoName, 2)
	if len(applies) != 0 {
		t.Fatalf("ignored comments started %d applies", len(applies))
	}
}

func TestWebhookSignatureAndRedelivery(t *testing.T) {
	h := newHarness(t)
	h.gh.OpenPR(repoName, 2, sha1, files(usersV2))
	body, _ := fakegithub.PRPayload("opened", repoName, 2, sha1, inst)

	// Bad signature: 401, nothing stored.
	req, _ := http.NewRequest(http.MethodPost, h.url, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "pull_request")
	req.Header.Set("X-GitHub-Delivery", "bad-sig")
	req.Header.Set("X-Hub-Signature-256", fakegithub.Sign("wrong-secret", body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("bad signature: %d, want 401", resp.StatusCode)
	}
	var n int
	h.st.DB().QueryRow("SELECT COUNT(*) FROM tern_deliveries").Scan(&n)
	if n != 0 {
		t.Errorf("bad signature stored %d deliveries", n)
	}

	// The same delivery twice: processed once.
	h.deliverID("pull_request", "same-id", body, http.StatusAccepted)
	h.waitProcessed("same-id")
	h.deliverID("pull_request", "same-id", body, http.StatusOK)
	reqs := len(h.gh.Requests())
	plans := 0
	h.st.DB().QueryRow("SELECT COUNT(*) FROM tern_plans").Scan(&plans)
	// Give a wrongly processed redelivery every chance to show up.
	time.Sleep(500 * time.Millisecond)
	var plans2 int
	h.st.DB().QueryRow("SELECT COUNT(*) FROM tern_plans").Scan(&plans2)
	if plans2 != plans || plans != 2 {
		t.Errorf("plans %d then %d, want 2 and no more", plans, plans2)
	}
	if got := len(h.gh.Requests()); got != reqs {
		t.Errorf("redelivery made %d GitHub calls", got-reqs)
	}

	// Health and metrics.
	for _, p := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get(strings.TrimSuffix(h.url, "/webhook") + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
		if p == "/metrics" && !strings.Contains(string(b), `tern_webhook_deliveries_total{event="pull_request",outcome="duplicate"} 1`) {
			t.Errorf("metrics lack the duplicate delivery:\n%s", b)
		}
	}
}

// holdTable opens a transaction that reads users, so DDL on it waits for
// its metadata lock and fails with 1205 after lock_wait_timeout.
func holdTable(t *testing.T, db *sql.DB) (release func()) {
	t.Helper()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	rows, err := tx.Query("SELECT * FROM users")
	if err != nil {
		t.Fatal(err)
	}
	rows.Close()
	return func() { tx.Rollback() }
}

func TestTransientFailureRetriedThenAppliedWithOutcomeComment(t *testing.T) {
	h := newHarness(t)
	h.openPR(2, sha1, files(usersV2))
	release := holdTable(t, h.staging)

	h.comment(2, "alice", "User", "/tern apply -e staging")
	run := h.waitCheck(sha1, "tern/shop/staging", "Failed (retrying...) attempt 1/3, next retry ~")
	if run.GetStatus() != "in_progress" {
		t.Errorf("retrying run is %s, want in_progress", run.GetStatus())
	}
	if !strings.Contains(run.GetOutput().GetSummary(), "1205") {
		t.Errorf("retrying run does not show the last error: %q", run.GetOutput().GetSummary())
	}
	if agg := h.check(sha1, "tern"); agg.GetConclusion() == "success" {
		t.Error("aggregate success while retrying")
	}

	// Retry now while the table is still held: attempt 2 fails too.
	h.comment(2, "alice", "User", "/tern retry -e staging")
	h.waitCheck(sha1, "tern/shop/staging", "Failed (retrying...) attempt 2/3")
	release()
	h.comment(2, "alice", "User", "/tern retry -e staging")
	h.waitCheck(sha1, "tern/shop/staging", "Applied")
	if !hasColumn(t, h.staging, "users", "email") {
		t.Fatal("staging not changed")
	}
	h.waitReported(2, "staging")
	outcomes := 0
	for _, c := range h.botComments(2) {
		if strings.Contains(c, "applied after 3 attempts") {
			outcomes++
		}
	}
	if outcomes != 1 {
		t.Errorf("%d outcome comments, want 1", outcomes)
	}

	// Reporting again changes nothing on GitHub.
	a, err := h.st.LatestApply(context.Background(), repoName, 2, "shop", "staging")
	if err != nil {
		t.Fatal(err)
	}
	before := writes(h.gh.Requests())
	if err := h.bot.Reporter().Report(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if after := writes(h.gh.Requests()); after != before {
		t.Errorf("a repeated report made %d writes to GitHub", after-before)
	}
	if r := h.gh.ReopenedRuns(); len(r) != 0 {
		t.Errorf("completed check runs reopened: %+v", r)
	}
}

// waitReported waits until the newest apply to env is terminal and fully
// reported to GitHub.
func (h *harness) waitReported(pr int, env string) {
	h.t.Helper()
	h.waitFor("apply reported", func() bool {
		a, err := h.st.LatestApply(context.Background(), repoName, pr, "shop", env)
		return err == nil && a.State.Terminal() && a.ReportedVersion == a.Version
	})
}

func writes(reqs []fakegithub.Request) int {
	n := 0
	for _, r := range reqs {
		if r.Method != http.MethodGet {
			n++
		}
	}
	return n
}

func TestCancelRetryingApply(t *testing.T) {
	h := newHarness(t)
	h.openPR(2, sha1, files(usersV2))
	release := holdTable(t, h.staging)
	defer release()
	h.comment(2, "alice", "User", "/tern apply -e staging")
	h.waitCheck(sha1, "tern/shop/staging", "Failed (retrying...)")

	id := h.comment(2, "alice", "User", "/tern cancel -e staging")
	run := h.waitCheck(sha1, "tern/shop/staging", "Cancelled")
	if run.GetStatus() != "completed" || run.GetConclusion() != "cancelled" {
		t.Errorf("cancelled run: %s/%s", run.GetStatus(), run.GetConclusion())
	}
	assertReactions(t, h.gh, id, "eyes", "rocket")
	a, err := h.st.LatestApply(context.Background(), repoName, 2, "shop", "staging")
	if err != nil || a.State != store.Cancelled {
		t.Fatalf("apply %v, err %v; want cancelled", a, err)
	}
	// Status shows it.
	h.comment(2, "bob", "User", "/tern status")
	if c := h.lastBotComment(2); !strings.Contains(c, "Cancelled") || !strings.Contains(c, "shop/staging") {
		t.Errorf("status reply: %q", c)
	}
}

// norm lowercases s and drops quotes, so DDL compares whatever the
// planner's quoting style.
func norm(s string) string {
	return strings.ToLower(strings.NewReplacer("`", "", "'", "", "\"", "").Replace(s))
}

// A PR of a tern repository that changes no schema file passes `tern`
// (so that a required `tern` check does not block it) and gets no comment;
// a PR planned before is planned again at its new head even when the push
// touched no schema file.
func TestPRWithoutSchemaChangesPassesTern(t *testing.T) {
	h := newHarness(t)
	withReadme := func(f map[string]string) map[string]string {
		f["README.md"] = "docs"
		return f
	}
	// #5 has tern.yaml and schema files at its head, the same as its base:
	// it changes only the README, and tern never planned it.
	h.gh.SetBase(repoName, files(usersV2))
	h.gh.OpenPR(repoName, 5, sha1, files(usersV2))
	h.gh.Push(repoName, 5, sha2, withReadme(files(usersV2)))
	body, _ := fakegithub.PRPayload("synchronize", repoName, 5, sha2, inst)
	h.deliver("pull_request", body)
	run := h.check(sha2, "tern")
	if run == nil || run.GetStatus() != "completed" || run.GetConclusion() != "success" || !strings.HasPrefix(run.GetOutput().GetTitle(), "No changes") {
		t.Fatalf("tern check on a PR without schema changes: %+v", run)
	}
	if h.check(sha2, "tern/shop/staging") != nil {
		t.Error("a PR without schema changes got a per-environment check")
	}
	if c := h.botComments(5); len(c) != 0 {
		t.Errorf("bot commented on a PR without schema changes: %v", c)
	}

	// #2 was planned; a README-only push re-plans it at the new head.
	h.openPR(2, sha1, files(usersV2))
	h.gh.Push(repoName, 2, sha3, withReadme(files(usersV2)))
	body, _ = fakegithub.PRPayload("synchronize", repoName, 2, sha3, inst)
	h.deliver("pull_request", body)
	if run := h.check(sha3, "tern/shop/staging"); run == nil || !strings.HasPrefix(run.GetOutput().GetTitle(), "Awaiting apply") {
		t.Fatalf("staging check at the new head of a planned PR: %+v", run)
	}
	if run := h.check(sha3, "tern"); run == nil || run.GetConclusion() == "success" {
		t.Errorf("tern check at the new head of a PR with unapplied changes: %+v", run)
	}
}
