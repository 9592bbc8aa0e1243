package psdeploy_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/planetscale/planetscale-go/planetscale"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/engine"
	"github.com/ternhq/tern/engine/psdeploy"
	"github.com/ternhq/tern/internal/fakeps"
	"github.com/ternhq/tern/internal/testdb"
)

const (
	tokenID = "svc-token-id"
	token   = "pscale_tkn_SECRET_do_not_leak"
)

// recorder keeps task states and resume state in memory, enforcing the
// ledger's task transitions so double starts or unstarted finishes fail.
type recorder struct {
	mu     sync.Mutex
	tasks  map[int]string
	state  map[string]string
	done   []int
	onSave func(key, value string) error
}

func newRecorder(tasks []engine.Task) *recorder {
	r := &recorder{tasks: map[int]string{}, state: map[string]string{}}
	for _, t := range tasks {
		r.tasks[t.Seq] = "pending"
	}
	return r
}

func (r *recorder) TaskStarted(_ context.Context, seq int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s := r.tasks[seq]; s != "pending" && s != "failed_retryable" {
		return fmt.Errorf("task %d: start from %q not allowed", seq, s)
	}
	r.tasks[seq] = "running"
	return nil
}

func (r *recorder) TaskDone(_ context.Context, seq int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tasks[seq] != "running" {
		return fmt.Errorf("task %d: done from %q not allowed", seq, r.tasks[seq])
	}
	r.tasks[seq] = "completed"
	r.done = append(r.done, seq)
	return nil
}

func (r *recorder) SaveState(_ context.Context, key, value string) error {
	r.mu.Lock()
	hook := r.onSave
	r.mu.Unlock()
	if hook != nil {
		if err := hook(key, value); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.state[key] = value
	return nil
}

// endAttempt does what the ledger does when an attempt fails transiently.
func (r *recorder) endAttempt() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for seq, s := range r.tasks {
		if s == "running" {
			r.tasks[seq] = "failed_retryable"
		}
	}
}

func (r *recorder) job(tasks []engine.Task, attempt int) engine.Job {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := map[string]string{}
	for k, v := range r.state {
		st[k] = v
	}
	return engine.Job{ApplyID: 7, Attempt: attempt, Repository: "acme/shop", PR: 3, Tasks: tasks, EngineState: st}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	srv  *fakeps.Server
	eng  *psdeploy.Engine
	cfg  config.PlanetScale
	main *sql.DB
	logs *syncBuffer
	log  *slog.Logger
}

// setup starts a stand-in and an engine on it. The stand-in is as slow as
// PlanetScale in polls: a new branch answers ready=false twice, and each
// deploy request state lasts two polls. psOpts, when given, change the
// stand-in's options.
func setup(t *testing.T, opts psdeploy.Options, psOpts ...func(*fakeps.Options)) *env {
	t.Helper()
	testdb.Server(t)
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fo := fakeps.Options{
		ServerDSN: testdb.ServerDSN(), Organization: "acme", Database: "shop",
		ServiceTokenID: tokenID, ServiceToken: token, BranchReadyAfter: 2, StepPolls: 2, Logger: logger,
	}
	for _, f := range psOpts {
		f(&fo)
	}
	srv, err := fakeps.New(fo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	off := false
	cfg := config.PlanetScale{
		Organization: "acme", Database: "shop", Branch: "main",
		ServiceTokenID: tokenID, ServiceToken: token, APIURL: srv.URL, TLS: &off,
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = time.Millisecond
	}
	if opts.StateTimeout == 0 {
		// Far above any state's length here (a few polls): an engine that
		// waits on a state that will not move fails instead of hanging.
		opts.StateTimeout = 30 * time.Second
	}
	opts.Logger = logger
	eng, err := psdeploy.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	main, err := sql.Open("mysql", srv.MainDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { main.Close() })
	if _, err := main.Exec("CREATE TABLE users (id BIGINT PRIMARY KEY, name VARCHAR(50))"); err != nil {
		t.Fatal(err)
	}
	e := &env{srv: srv, eng: eng, cfg: cfg, main: main, logs: logs, log: logger}
	t.Cleanup(func() { e.checkNoSecrets(t, nil) })
	return e
}

// checkNoSecrets fails when the token or a branch password appears in the
// logs or in err.
func (e *env) checkNoSecrets(t *testing.T, err error) {
	t.Helper()
	texts := map[string]string{"logs": e.logs.String()}
	if err != nil {
		texts["error"] = err.Error()
	}
	for where, s := range texts {
		for _, secret := range []string{token, "pscale_pw_"} {
			if strings.Contains(s, secret) {
				t.Errorf("%s contain a secret (%q)", where, secret)
			}
		}
	}
}

func (e *env) columns(t *testing.T, table string) []string {
	t.Helper()
	rows, err := e.main.Query("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION", table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		rows.Scan(&c)
		out = append(out, c)
	}
	return out
}

// checkApplied asserts that main has the tasks' changes, made through
// exactly one deploy request deployed once, and that nothing was left
// behind.
func (e *env) checkApplied(t *testing.T, rec *recorder) {
	t.Helper()
	if got := e.columns(t, "users"); !slices.Equal(got, []string{"id", "name", "email"}) {
		t.Errorf("main users columns = %v, want id name email", got)
	}
	if got := e.columns(t, "orders"); !slices.Equal(got, []string{"id", "user_id"}) {
		t.Errorf("main orders columns = %v, want id user_id", got)
	}
	if n := e.srv.DeployRequestsCreated(); n != 1 {
		t.Errorf("deploy requests created = %d, want 1", n)
	}
	if n := e.srv.Deploys(); n != 1 {
		t.Errorf("deploys = %d, want 1", n)
	}
	if !slices.Equal(rec.done, []int{1, 2}) {
		t.Errorf("tasks done = %v, want [1 2]", rec.done)
	}
	if b := e.srv.Branches(); !slices.Equal(b, []string{"main"}) {
		t.Errorf("branches left = %v, want [main]", b)
	}
	if n := e.srv.Passwords(); n != 0 {
		t.Errorf("passwords left = %d, want 0", n)
	}
}

func tasks() []engine.Task {
	return []engine.Task{
		{Seq: 1, Table: "users", Kind: "alter", DDL: "ALTER TABLE users ADD COLUMN email VARCHAR(100);"},
		{Seq: 2, Table: "orders", Kind: "create", DDL: "CREATE TABLE orders (id BIGINT PRIMARY KEY, user_id BIGINT)"},
	}
}

func TestApplyHappyPath(t *testing.T) {
	e := setup(t, psdeploy.Options{})
	ts := tasks()
	rec := newRecorder(ts)
	err := e.eng.Apply(context.Background(), rec.job(ts, 1), rec)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	e.checkApplied(t, rec)
	if rec.state[psdeploy.StateDeployRequest] != "1" || rec.state[psdeploy.StateBranch] == "" {
		t.Errorf("saved state %v lacks the branch or deploy request", rec.state)
	}
	for k, v := range rec.state {
		if strings.Contains(v, "pscale_pw_") || strings.Contains(v, token) {
			t.Errorf("saved state %s holds a secret", k)
		}
	}
}

func TestApplyNoTasks(t *testing.T) {
	e := setup(t, psdeploy.Options{})
	rec := newRecorder(nil)
	if err := e.eng.Apply(context.Background(), rec.job(nil, 1), rec); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Requests(fakeps.RouteCreateBranch); n != 0 {
		t.Errorf("made %d branches for nothing", n)
	}
}

func TestTransientFaultsRetry(t *testing.T) {
	tests := []struct {
		name  string
		fault func(*fakeps.Server)
		class string // "" when the first attempt gets over the fault itself
		// creates is how many branch creations the attempts ask for
		// (default 1: a later attempt goes on with the first one's branch).
		creates int
	}{
		{"create branch 422", func(s *fakeps.Server) { s.FailNext(fakeps.RouteCreateBranch, 422, 1) }, psdeploy.ClassRetry, 2},
		{"get branch 500", func(s *fakeps.Server) { s.FailNext(fakeps.RouteGetBranch, 500, 1) }, psdeploy.ClassInternal, 0},
		{"create password 429", func(s *fakeps.Server) { s.FailNext(fakeps.RouteCreatePassword, 429, 1) }, psdeploy.ClassRateLimited, 0},
		{"create deploy request 503", func(s *fakeps.Server) { s.FailNext(fakeps.RouteCreateDeployRequest, 503, 1) }, psdeploy.ClassUnavailable, 0},
		// Calls that took effect, whose answers were lost on the way back:
		// the next attempt finds what they made instead of making it again.
		{name: "create branch answer lost", fault: func(s *fakeps.Server) {
			s.LoseAnswerNext(fakeps.RouteCreateBranch, 1)
		}, class: engine.ClassConnectionLost},
		{name: "create password answer lost", fault: func(s *fakeps.Server) {
			s.LoseAnswerNext(fakeps.RouteCreatePassword, 1)
		}, class: engine.ClassConnectionLost},
		// Create's error makes the attempt look for the branch's open
		// deploy request, and it adopts it at once.
		{name: "create deploy request answer lost", fault: func(s *fakeps.Server) {
			s.LoseAnswerNext(fakeps.RouteCreateDeployRequest, 1)
		}},
		{name: "deploy answer lost", fault: func(s *fakeps.Server) { s.LoseAnswerNext(fakeps.RouteDeploy, 1) }, class: engine.ClassConnectionLost},
		{name: "cutover answer lost", fault: func(s *fakeps.Server) { s.LoseAnswerNext(fakeps.RouteApplyDeploy, 1) }, class: engine.ClassConnectionLost},
		// The second attempt cannot list what the first left open: it
		// ends too, and the third adopts the deploy request.
		{name: "create deploy request answer lost, then list 502", fault: func(s *fakeps.Server) {
			s.LoseAnswerNext(fakeps.RouteCreateDeployRequest, 1)
			s.FailNext(fakeps.RouteListDeployRequests, 502, 1)
		}, class: engine.ClassConnectionLost},
		{name: "get deploy request 429", fault: func(s *fakeps.Server) { s.FailNext(fakeps.RouteGetDeployRequest, 429, 1) }, class: psdeploy.ClassRateLimited},
		{name: "get deploy request 500", fault: func(s *fakeps.Server) { s.FailNext(fakeps.RouteGetDeployRequest, 500, 1) }, class: psdeploy.ClassInternal},
		// A POST: net/http retries an idempotent GET on a dropped connection by itself.
		{"create deploy request connection dropped", func(s *fakeps.Server) {
			s.FailNext(fakeps.RouteCreateDeployRequest, fakeps.StatusDropConnection, 1)
		}, engine.ClassConnectionLost, 0},
		{"deploy 422", func(s *fakeps.Server) { s.FailNext(fakeps.RouteDeploy, 422, 1) }, psdeploy.ClassRetry, 0},
		{"cutover 504", func(s *fakeps.Server) { s.FailNext(fakeps.RouteApplyDeploy, 504, 1) }, psdeploy.ClassUnavailable, 0},
		{"branch mysql connection refused", func(s *fakeps.Server) { s.DropMySQLConnections(1) }, engine.ClassConnectionLost, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, psdeploy.Options{})
			ts := tasks()
			rec := newRecorder(ts)
			tt.fault(e.srv)
			err := e.eng.Apply(context.Background(), rec.job(ts, 1), rec)
			if tt.class == "" {
				if err != nil {
					t.Fatalf("first attempt: %v", err)
				}
			} else {
				var te *engine.TaskError
				if !errors.As(err, &te) || !engine.IsRetryable(err) || engine.Class(err) != tt.class {
					t.Fatalf("first attempt: got %v (class %q, retryable %v), want a retryable TaskError of class %s",
						err, engine.Class(err), engine.IsRetryable(err), tt.class)
				}
				e.checkNoSecrets(t, err)
				if got := e.columns(t, "users"); len(got) != 2 {
					t.Fatalf("main changed by a failed attempt: %v", got)
				}
			}
			for attempt := 2; err != nil; attempt++ {
				rec.endAttempt()
				err = e.eng.Apply(context.Background(), rec.job(ts, attempt), rec)
				if err != nil && (attempt == 3 || !engine.IsRetryable(err)) {
					t.Fatalf("attempt %d: %v", attempt, err)
				}
			}
			e.checkApplied(t, rec)
			want := tt.creates
			if want == 0 {
				want = 1 // a later attempt goes on with the first one's branch
			}
			if n := e.srv.Requests(fakeps.RouteCreateBranch); n != want {
				t.Errorf("branch creations asked for = %d, want %d", n, want)
			}
		})
	}
}

func TestPermanentFaults(t *testing.T) {
	badDDL := []engine.Task{
		{Seq: 1, Table: "users", Kind: "alter", DDL: "ALTER TABLE users ADD COLUMN email VARCHAR(100)"},
		{Seq: 2, Table: "orders", Kind: "create", DDL: "CREATE TABLE orders (id BIGINT PRIMARY KEY,"},
	}
	tests := []struct {
		name    string
		fault   func(*fakeps.Server)
		badAuth bool
		tasks   []engine.Task
		class   string
		seq     int
	}{
		{name: "wrong token", badAuth: true, class: psdeploy.ClassPermission, seq: 1},
		{name: "branch not found", fault: func(s *fakeps.Server) { s.FailNext(fakeps.RouteGetBranch, 404, 1) }, class: psdeploy.ClassNotFound, seq: 1},
		{name: "password invalid", fault: func(s *fakeps.Server) { s.FailNext(fakeps.RouteCreatePassword, 400, 1) }, class: psdeploy.ClassInvalid, seq: 1},
		{name: "unauthorized", fault: func(s *fakeps.Server) { s.FailNext(fakeps.RouteCreateDeployRequest, 401, 1) }, class: psdeploy.ClassPermission, seq: 1},
		{name: "deploy ends in error", fault: func(s *fakeps.Server) { s.FailNextDeploy(fakeps.DeployError) }, class: psdeploy.ClassDeployFailed, seq: 1},
		{name: "schema conflict", fault: func(s *fakeps.Server) { s.FailNextDeploy(fakeps.SchemaConflict) }, class: psdeploy.ClassSchemaConflict, seq: 1},
		{name: "deploy cancelled on PlanetScale", fault: func(s *fakeps.Server) { s.FailNextDeploy(fakeps.DeployCancelled) }, class: psdeploy.ClassDeployFailed, seq: 1},
		{name: "bad DDL on branch", tasks: badDDL, class: engine.ClassSyntax, seq: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := setup(t, psdeploy.Options{})
			ts := tt.tasks
			if ts == nil {
				ts = tasks()
			}
			rec := newRecorder(ts)
			eng := e.eng
			if tt.badAuth {
				cfg := e.cfg
				cfg.ServiceToken = "wrong-" + token
				var err error
				if eng, err = psdeploy.New(cfg, psdeploy.Options{PollInterval: time.Millisecond, Logger: e.log}); err != nil {
					t.Fatal(err)
				}
			}
			if tt.fault != nil {
				tt.fault(e.srv)
			}
			err := eng.Apply(context.Background(), rec.job(ts, 1), rec)
			var te *engine.TaskError
			if !errors.As(err, &te) || engine.IsRetryable(err) || engine.Class(err) != tt.class || te.Seq != tt.seq {
				t.Fatalf("got %v (class %q, retryable %v), want a permanent TaskError of class %s on task %d",
					err, engine.Class(err), engine.IsRetryable(err), tt.class, tt.seq)
			}
			e.checkNoSecrets(t, err)
			if got := e.columns(t, "users"); len(got) != 2 {
				t.Errorf("main changed by a failed apply: %v", got)
			}
			if b := e.srv.Branches(); !slices.Equal(b, []string{"main"}) {
				t.Errorf("branches left after a permanent failure = %v, want [main]", b)
			}
			if n := e.srv.Passwords(); n != 0 {
				t.Errorf("passwords left = %d, want 0", n)
			}
		})
	}
}

func TestCrashAfterDeployRequestResumes(t *testing.T) {
	e := setup(t, psdeploy.Options{})
	ts := tasks()
	rec := newRecorder(ts)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec.onSave = func(key, _ string) error {
		if key == psdeploy.StateDeployRequest {
			cancel() // the worker dies right after the deploy request is recorded
		}
		return nil
	}
	err := e.eng.Apply(ctx, rec.job(ts, 1), rec)
	if err == nil || !engine.IsRetryable(err) {
		t.Fatalf("interrupted attempt: got %v, want a retryable error", err)
	}
	if n := e.srv.Deploys(); n != 0 {
		t.Fatalf("deployed %d times before the crash, want 0", n)
	}
	rec.onSave = nil
	rec.endAttempt()
	if err := e.eng.Apply(context.Background(), rec.job(ts, 2), rec); err != nil {
		t.Fatalf("resumed attempt: %v", err)
	}
	e.checkApplied(t, rec)
	if n := e.srv.Requests(fakeps.RouteCreateBranch); n != 1 {
		t.Errorf("branches created = %d, want 1 (the resumed attempt must reuse it)", n)
	}
}

func TestLostRecordOfDeployRequestAdoptsIt(t *testing.T) {
	e := setup(t, psdeploy.Options{})
	ts := tasks()
	rec := newRecorder(ts)
	lost := errors.New("lease lost")
	rec.onSave = func(key, _ string) error {
		if key == psdeploy.StateDeployRequest {
			return lost
		}
		return nil
	}
	err := e.eng.Apply(context.Background(), rec.job(ts, 1), rec)
	var te *engine.TaskError
	if !errors.Is(err, lost) || errors.As(err, &te) {
		t.Fatalf("got %v, want the recorder's error as is", err)
	}
	rec.onSave = nil
	rec.endAttempt()
	if err := e.eng.Apply(context.Background(), rec.job(ts, 2), rec); err != nil {
		t.Fatalf("resumed attempt: %v", err)
	}
	e.checkApplied(t, rec)
}

func TestHungDeployTimesOutThenResumes(t *testing.T) {
	e := setup(t, psdeploy.Options{StateTimeout: 50 * time.Millisecond})
	ts := tasks()
	rec := newRecorder(ts)
	e.srv.HangDeployState("in_progress")
	err := e.eng.Apply(context.Background(), rec.job(ts, 1), rec)
	if !engine.IsRetryable(err) || engine.Class(err) != psdeploy.ClassStateTimeout {
		t.Fatalf("got %v (class %q), want retryable %s", err, engine.Class(err), psdeploy.ClassStateTimeout)
	}
	e.srv.HangDeployState("")
	rec.endAttempt()
	if err := e.eng.Apply(context.Background(), rec.job(ts, 2), rec); err != nil {
		t.Fatalf("resumed attempt: %v", err)
	}
	e.checkApplied(t, rec)
}

func TestLiveReadsMainThroughDATABASE(t *testing.T) {
	e := setup(t, psdeploy.Options{})
	db, err := e.eng.Live(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var cur string
	if err := db.QueryRow("SELECT DATABASE()").Scan(&cur); err != nil {
		t.Fatal(err)
	}
	if cur != e.srv.MainDatabase() {
		t.Fatalf("live pool is on %q, want the main branch %q", cur, e.srv.MainDatabase())
	}
	if _, err := db.Exec("CREATE TABLE nope (id INT PRIMARY KEY)"); err == nil {
		t.Error("the live pool could change the schema")
	}
	if err := e.eng.Close(); err != nil {
		t.Fatal(err)
	}
	if n := e.srv.Passwords(); n != 0 {
		t.Errorf("passwords left after Close = %d", n)
	}
}

func TestClassifyByStatus(t *testing.T) {
	// 5xx and 4xx answers whose body carries no code the client knows are
	// judged by their HTTP status.
	tests := []struct {
		status    int
		class     string
		retryable bool
	}{
		{http.StatusInternalServerError, psdeploy.ClassInternal, true},
		{http.StatusTooManyRequests, psdeploy.ClassRateLimited, true},
		{http.StatusBadGateway, psdeploy.ClassUnavailable, true},
		{http.StatusForbidden, psdeploy.ClassPermission, false},
		{http.StatusConflict, psdeploy.ClassInvalid, false},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			e := setup(t, psdeploy.Options{})
			e.srv.FailNext(fakeps.RouteCreateBranch, tt.status, 1)
			ts := tasks()
			rec := newRecorder(ts)
			err := e.eng.Apply(context.Background(), rec.job(ts, 1), rec)
			if engine.Class(err) != tt.class || engine.IsRetryable(err) != tt.retryable {
				t.Fatalf("got %v (class %q, retryable %v), want %s retryable=%v", err, engine.Class(err), engine.IsRetryable(err), tt.class, tt.retryable)
			}
		})
	}
}

func TestHungBranchTimesOutThenResumes(t *testing.T) {
	e := setup(t, psdeploy.Options{StateTimeout: 50 * time.Millisecond})
	ts := tasks()
	rec := newRecorder(ts)
	e.srv.HangBranches(true)
	err := e.eng.Apply(context.Background(), rec.job(ts, 1), rec)
	if !engine.IsRetryable(err) || engine.Class(err) != psdeploy.ClassStateTimeout {
		t.Fatalf("got %v (class %q), want retryable %s", err, engine.Class(err), psdeploy.ClassStateTimeout)
	}
	e.srv.HangBranches(false)
	rec.endAttempt()
	if err := e.eng.Apply(context.Background(), rec.job(ts, 2), rec); err != nil {
		t.Fatalf("resumed attempt: %v", err)
	}
	e.checkApplied(t, rec)
	if n := e.srv.Requests(fakeps.RouteCreateBranch); n != 1 {
		t.Errorf("branches created = %d, want 1 (the resumed attempt must wait for the same branch)", n)
	}
}

func TestDDLInDoubtReplacesBranch(t *testing.T) {
	e := setup(t, psdeploy.Options{})
	ts := tasks()
	rec := newRecorder(ts)
	lost := errors.New("lease lost")
	rec.onSave = func(key, value string) error {
		if key == psdeploy.StateBranchDone && value == "1" {
			return lost // task 1's DDL ran on the branch, but that was never recorded
		}
		return nil
	}
	if err := e.eng.Apply(context.Background(), rec.job(ts, 1), rec); !errors.Is(err, lost) {
		t.Fatalf("got %v, want the recorder's error", err)
	}
	rec.onSave = nil
	rec.endAttempt()
	if err := e.eng.Apply(context.Background(), rec.job(ts, 2), rec); err != nil {
		t.Fatalf("resumed attempt: %v", err)
	}
	e.checkApplied(t, rec)
	if n := e.srv.Requests(fakeps.RouteCreateBranch); n != 2 {
		t.Errorf("branches created = %d, want 2 (a branch with DDL in doubt is replaced)", n)
	}
}

// TestAPIVariations drives whole applies through answers the real API or
// another stand-in may give that ours does not by default.
func TestAPIVariations(t *testing.T) {
	tests := []struct {
		name   string
		psOpts func(*fakeps.Options)
		setup  func(*fakeps.Server)
		check  func(t *testing.T, e *env)
	}{
		{name: "deployment state only in the nested deployment", psOpts: func(o *fakeps.Options) { o.NestedStateOnly = true }},
		{name: "revert window after the deploy", psOpts: func(o *fakeps.Options) { o.RevertWindow = true },
			check: func(t *testing.T, e *env) {
				if st, ds, _ := e.srv.DeployRequest(1); st != "open" || ds != "complete_pending_revert" {
					t.Errorf("deploy request 1 is %s/%s, want open/complete_pending_revert", st, ds)
				}
			}},
		{name: "access_host_url a host name", psOpts: func(o *fakeps.Options) { o.HostForm = "name" }},
		{name: "access_host_url a URL", psOpts: func(o *fakeps.Options) { o.HostForm = "url" }},
		{name: "reads lag behind deploy and cutover", psOpts: func(o *fakeps.Options) { o.StaleReads = 2 }},
		{name: "in_progress_vschema", setup: func(s *fakeps.Server) { s.DetourDeployState("in_progress", "in_progress_vschema") }},
		{name: "a state tern does not know", setup: func(s *fakeps.Server) { s.DetourDeployState("queued", "in_progress_rebalancing") },
			check: func(t *testing.T, e *env) {
				if !strings.Contains(e.logs.String(), "in_progress_rebalancing") {
					t.Error("the unknown state was not logged")
				}
			}},
		{name: "an endpoint that refuses the database name", psOpts: func(o *fakeps.Options) { o.NoDBRouting = true },
			check: func(t *testing.T, e *env) {
				db, err := e.eng.Live(context.Background())
				if err != nil {
					t.Fatalf("live: %v", err)
				}
				var cur string
				if err := db.QueryRow("SELECT DATABASE()").Scan(&cur); err != nil || cur != e.srv.MainDatabase() {
					t.Errorf("live pool on %q (%v), want %q", cur, err, e.srv.MainDatabase())
				}
			}},
		{name: "deploys that cut over by themselves", psOpts: func(o *fakeps.Options) { o.AutoCutover = true },
			check: func(t *testing.T, e *env) {
				if n := e.srv.Requests(fakeps.RouteApplyDeploy); n != 0 {
					t.Errorf("ApplyDeploy called %d times on a deploy that never waited for it", n)
				}
			}},
		{name: "all of it at once", psOpts: func(o *fakeps.Options) {
			o.NestedStateOnly, o.RevertWindow, o.HostForm, o.StaleReads, o.ListIgnoresFilters = true, true, "url", 3, true
			o.BranchReadyAfter, o.StepPolls = 4, 3
		}, setup: func(s *fakeps.Server) {
			s.DetourDeployState("queued", "in_progress_rebalancing", "in_progress_vschema")
			s.LoseAnswerNext(fakeps.RouteCreateDeployRequest, 1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []func(*fakeps.Options)
			if tt.psOpts != nil {
				opts = append(opts, tt.psOpts)
			}
			e := setup(t, psdeploy.Options{}, opts...)
			if tt.setup != nil {
				tt.setup(e.srv)
			}
			ts := tasks()
			rec := newRecorder(ts)
			if err := e.eng.Apply(context.Background(), rec.job(ts, 1), rec); err != nil {
				t.Fatalf("apply: %v", err)
			}
			e.checkApplied(t, rec)
			if tt.check != nil {
				tt.check(t, e)
			}
		})
	}
}

func TestNoChangesEndsTheApply(t *testing.T) {
	e := setup(t, psdeploy.Options{})
	// Together these change nothing: the deploy request reports no_changes.
	ts := []engine.Task{
		{Seq: 1, Table: "users", Kind: "alter", DDL: "ALTER TABLE users ADD COLUMN tmp INT"},
		{Seq: 2, Table: "users", Kind: "alter", DDL: "ALTER TABLE users DROP COLUMN tmp"},
	}
	rec := newRecorder(ts)
	if err := e.eng.Apply(context.Background(), rec.job(ts, 1), rec); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if !slices.Equal(rec.done, []int{1, 2}) {
		t.Errorf("tasks done = %v, want [1 2]", rec.done)
	}
	if n := e.srv.Deploys(); n != 0 {
		t.Errorf("deploys = %d, want 0 (nothing to deploy)", n)
	}
	if st, ds, ok := e.srv.DeployRequest(1); !ok || st != "closed" || ds != "no_changes" {
		t.Errorf("deploy request 1 is %s/%s, want closed/no_changes", st, ds)
	}
	if got := e.columns(t, "users"); !slices.Equal(got, []string{"id", "name"}) {
		t.Errorf("main users columns = %v, want id name", got)
	}
	if b := e.srv.Branches(); !slices.Equal(b, []string{"main"}) {
		t.Errorf("branches left = %v, want [main]", b)
	}
	if n := e.srv.Passwords(); n != 0 {
		t.Errorf("passwords left = %d, want 0", n)
	}
}

// TestAdoptsOnlyItsOwnDeployRequest: a server that ignores the list's
// filters answers another branch's open deploy request too; the engine
// must adopt its own.
func TestAdoptsOnlyItsOwnDeployRequest(t *testing.T) {
	e := setup(t, psdeploy.Options{}, func(o *fakeps.Options) { o.ListIgnoresFilters = true })
	ctx := context.Background()
	c, err := planetscale.NewClient(planetscale.WithBaseURL(e.srv.URL), planetscale.WithServiceToken(tokenID, token))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DatabaseBranches.Create(ctx, &planetscale.CreateDatabaseBranchRequest{Organization: "acme", Database: "shop", Name: "other", ParentBranch: "main"}); err != nil {
		t.Fatal(err)
	}
	for ready := false; !ready; {
		b, err := c.DatabaseBranches.Get(ctx, &planetscale.GetDatabaseBranchRequest{Organization: "acme", Database: "shop", Branch: "other"})
		if err != nil {
			t.Fatal(err)
		}
		ready = b.Ready
	}
	other, err := c.DeployRequests.Create(ctx, &planetscale.CreateDeployRequestRequest{Organization: "acme", Database: "shop", Branch: "other", IntoBranch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	e.srv.LoseAnswerNext(fakeps.RouteCreateDeployRequest, 1)
	ts := tasks()
	rec := newRecorder(ts)
	if err := e.eng.Apply(ctx, rec.job(ts, 1), rec); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if rec.state[psdeploy.StateDeployRequest] == strconv.FormatUint(other.Number, 10) {
		t.Fatalf("adopted the other branch's deploy request %d", other.Number)
	}
	if st, ds, _ := e.srv.DeployRequest(other.Number); st != "open" || ds != "pending" {
		t.Errorf("the other deploy request is %s/%s, want it left open/pending", st, ds)
	}
	if n := e.srv.Deploys(); n != 1 {
		t.Errorf("deploys = %d, want 1", n)
	}
	if got := e.columns(t, "orders"); !slices.Equal(got, []string{"id", "user_id"}) {
		t.Errorf("main orders columns = %v, want id user_id", got)
	}
}

// TestAnswerShapes classifies every shape of failed answer planetscale-go
// can turn into an error: its own codes, codes it does not know, bodies
// that are not its error shape or not JSON, and no answer at all.
func TestAnswerShapes(t *testing.T) {
	const jsonCT, htmlCT = "application/json", "text/html"
	tests := []struct {
		name        string
		status      int
		ctype, body string
		class       string
		retryable   bool
	}{
		{"422 unprocessable", 422, jsonCT, `{"code":"unprocessable","message":"try again"}`, psdeploy.ClassRetry, true},
		{"422 without message", 422, jsonCT, `{"code":"unprocessable"}`, psdeploy.ClassRetry, true},
		{"422 other code", 422, jsonCT, `{"code":"conflict","message":"busy"}`, psdeploy.ClassRetry, true},
		{"500 with code", 500, jsonCT, `{"code":"internal","message":"boom"}`, psdeploy.ClassInternal, true},
		{"500 empty object", 500, jsonCT, `{}`, psdeploy.ClassInternal, true},
		{"500 html", 500, htmlCT, `<html><body>oops</body></html>`, psdeploy.ClassInternal, true},
		{"500 array", 500, jsonCT, `[]`, psdeploy.ClassInternal, true},
		{"500 empty body", 500, "", ``, psdeploy.ClassInternal, true},
		{"501 with code", 501, jsonCT, `{"code":"not_implemented","message":"no"}`, psdeploy.ClassInternal, true},
		{"502 html", 502, htmlCT, `<html>bad gateway</html>`, psdeploy.ClassUnavailable, true},
		{"503 with code", 503, jsonCT, `{"code":"unavailable","message":"maintenance"}`, psdeploy.ClassUnavailable, true},
		{"504 empty", 504, "", ``, psdeploy.ClassUnavailable, true},
		{"429 with code", 429, jsonCT, `{"code":"rate_limited","message":"slow down"}`, psdeploy.ClassRateLimited, true},
		{"429 html", 429, htmlCT, `<html>slow down</html>`, psdeploy.ClassRateLimited, true},
		{"408", 408, jsonCT, `{}`, psdeploy.ClassStateTimeout, true},
		{"401 unauthorized", 401, jsonCT, `{"code":"unauthorized","message":"no"}`, psdeploy.ClassPermission, false},
		{"403 forbidden", 403, jsonCT, `{"code":"forbidden","message":"no"}`, psdeploy.ClassPermission, false},
		{"403 html", 403, htmlCT, `<html>forbidden</html>`, psdeploy.ClassPermission, false},
		{"404 not_found", 404, jsonCT, `{"code":"not_found","message":"Not Found"}`, psdeploy.ClassNotFound, false},
		{"404 other shape", 404, jsonCT, `{"error":"no such database"}`, psdeploy.ClassNotFound, false},
		{"400 invalid_params", 400, jsonCT, `{"code":"invalid_params","message":"bad name"}`, psdeploy.ClassInvalid, false},
		{"400 bad_request", 400, jsonCT, `{"code":"bad_request","message":"bad"}`, psdeploy.ClassInvalid, false},
		{"409 conflict", 409, jsonCT, `{"code":"conflict","message":"exists"}`, psdeploy.ClassInvalid, false},
		{"201 html", 201, htmlCT, `<html>captive portal</html>`, psdeploy.ClassMalformed, true},
		{"201 array", 201, jsonCT, `[]`, psdeploy.ClassMalformed, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.ctype != "" {
					w.Header().Set("Content-Type", tt.ctype)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			}))
			defer api.Close()
			err := applyAgainst(t, api.URL+"/", nil)
			var te *engine.TaskError
			if !errors.As(err, &te) || engine.Class(err) != tt.class || engine.IsRetryable(err) != tt.retryable {
				t.Fatalf("got %v (class %q, retryable %v), want a TaskError of class %s, retryable %v",
					err, engine.Class(err), engine.IsRetryable(err), tt.class, tt.retryable)
			}
			if msg := err.Error(); strings.HasSuffix(msg, ": ") || strings.Contains(msg, token) {
				t.Errorf("error text %q is empty-ended or holds the token", msg)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		err = applyAgainst(t, "http://"+addr+"/", nil)
		if !engine.IsRetryable(err) || engine.Class(err) != engine.ClassConnectionLost {
			t.Fatalf("got %v (class %q), want retryable %s", err, engine.Class(err), engine.ClassConnectionLost)
		}
	})
	t.Run("client timeout", func(t *testing.T) {
		stop := make(chan struct{})
		api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			<-stop // no answer until the client gave up
		}))
		defer api.Close()
		err := applyAgainst(t, api.URL+"/", &http.Client{Timeout: 50 * time.Millisecond})
		close(stop)
		if !engine.IsRetryable(err) || engine.Class(err) != engine.ClassTimeout {
			t.Fatalf("got %v (class %q), want retryable %s", err, engine.Class(err), engine.ClassTimeout)
		}
	})
}

// applyAgainst runs one attempt of tasks() against the API at url.
func applyAgainst(t *testing.T, url string, hc *http.Client) error {
	t.Helper()
	off := false
	eng, err := psdeploy.New(config.PlanetScale{
		Organization: "acme", Database: "shop", Branch: "main",
		ServiceTokenID: tokenID, ServiceToken: token, APIURL: url, TLS: &off,
	}, psdeploy.Options{PollInterval: time.Millisecond, HTTPClient: hc, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ts := tasks()
	rec := newRecorder(ts)
	return eng.Apply(context.Background(), rec.job(ts, 1), rec)
}

// TestAPIURLKeepsItsPath: an api_url with a path and no final slash still
// reaches the API under that path.
func TestAPIURLKeepsItsPath(t *testing.T) {
	paths := make(chan string, 10)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case paths <- r.URL.Path:
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"code":"not_found","message":"Not Found"}`)
	}))
	defer api.Close()
	applyAgainst(t, api.URL+"/planetscale", nil)
	if got, want := <-paths, "/planetscale/v1/organizations/acme/databases/shop/branches"; got != want {
		t.Fatalf("first request went to %s, want %s", got, want)
	}
}

// TestLeftBranchOfSameApplyNumberIsNotTaken: a branch named as tern once
// named this apply's (left by another ledger, or a tern reinstalled from
// scratch) holds someone else's change; the apply must not deploy it.
func TestLeftBranchOfSameApplyNumberIsNotTaken(t *testing.T) {
	e := setup(t, psdeploy.Options{})
	ctx := context.Background()
	c, err := planetscale.NewClient(planetscale.WithBaseURL(e.srv.URL), planetscale.WithServiceToken(tokenID, token))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tern-7-1", "tern-7-2"} {
		if _, err := c.DatabaseBranches.Create(ctx, &planetscale.CreateDatabaseBranchRequest{Organization: "acme", Database: "shop", Name: name, ParentBranch: "main"}); err != nil {
			t.Fatal(err)
		}
		db, ok := e.srv.BranchDatabase(name)
		if !ok {
			t.Fatalf("branch %s not made", name)
		}
		if _, err := e.main.Exec("ALTER TABLE `" + db + "`.users ADD COLUMN foreign_col INT"); err != nil {
			t.Fatal(err)
		}
	}
	ts := tasks()
	rec := newRecorder(ts)
	e.srv.FailNext(fakeps.RouteCreateDeployRequest, 503, 1)
	if err := e.eng.Apply(ctx, rec.job(ts, 1), rec); !engine.IsRetryable(err) {
		t.Fatalf("first attempt: got %v, want a retryable error", err)
	}
	rec.endAttempt()
	if err := e.eng.Apply(ctx, rec.job(ts, 2), rec); err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	if got := e.columns(t, "users"); !slices.Equal(got, []string{"id", "name", "email"}) {
		t.Errorf("main users columns = %v, want id name email (nothing from the left branch)", got)
	}
	for _, name := range []string{"tern-7-1", "tern-7-2"} {
		if _, ok := e.srv.BranchDatabase(name); !ok {
			t.Errorf("the left branch %s was deleted", name)
		}
	}
}

// TestPermanentErrorMidDeployLeavesTheDeploy: a permanent answer while the
// deploy request is being deployed fails the apply, but its deploy request
// and branch are left alone: the deploy may still complete.
// A permanent API error while the deploy request is being deployed does
// not fail the apply for good (the deploy may still land): the attempt
// ends waiting on it, which is not counted, and leaves it and its branch
// alone (issue 11.5).
func TestPermanentErrorMidDeployLeavesTheDeploy(t *testing.T) {
	e := setup(t, psdeploy.Options{})
	// Gets answer pending twice, ready (deployed) once, submitting twice,
	// then queued: the sixth answers 403.
	e.srv.FailAfter(fakeps.RouteGetDeployRequest, 5, http.StatusForbidden)
	ts := tasks()
	rec := newRecorder(ts)
	err := e.eng.Apply(context.Background(), rec.job(ts, 1), rec)
	var w *engine.WaitingError
	if !errors.As(err, &w) || !engine.IsRetryable(err) || engine.Class(err) != psdeploy.ClassPermission {
		t.Fatalf("got %v (class %q), want a wait on the deploy (%s)", err, engine.Class(err), psdeploy.ClassPermission)
	}
	if n := e.srv.Deploys(); n != 1 {
		t.Fatalf("deploys = %d, want 1 (the fault must come after the deploy)", n)
	}
	if st, ds, _ := e.srv.DeployRequest(1); st != "open" || ds != "submitting" {
		t.Errorf("deploy request 1 is %s/%s, want it left open/submitting", st, ds)
	}
	if _, ok := e.srv.BranchDatabase(rec.state[psdeploy.StateBranch]); !ok {
		t.Error("the branch of a deploy in progress was deleted")
	}
}
