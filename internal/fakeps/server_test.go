package fakeps_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/planetscale/planetscale-go/planetscale"

	"github.com/ternhq/tern/internal/fakeps"
	"github.com/ternhq/tern/internal/testdb"
)

const (
	org  = "acme"
	psdb = "shop"
)

func newServer(t *testing.T, opts fakeps.Options) (*fakeps.Server, *planetscale.Client) {
	t.Helper()
	testdb.Server(t) // fails clearly when no server answers
	opts.ServerDSN = testdb.ServerDSN()
	opts.Organization, opts.Database = org, psdb
	opts.ServiceTokenID, opts.ServiceToken = "tok-id", "tok-secret"
	srv, err := fakeps.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	c, err := planetscale.NewClient(planetscale.WithBaseURL(srv.URL), planetscale.WithServiceToken("tok-id", "tok-secret"))
	if err != nil {
		t.Fatal(err)
	}
	return srv, c
}

func mustExec(t *testing.T, db *sql.DB, qs ...string) {
	t.Helper()
	for _, q := range qs {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func openMain(t *testing.T, srv *fakeps.Server) *sql.DB {
	t.Helper()
	db, err := sql.Open("mysql", srv.MainDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// connect opens a pool through a branch password, naming some other
// database in the DSN as clients of PlanetScale do.
func connect(t *testing.T, pw *planetscale.DatabaseBranchPassword) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User, cfg.Passwd, cfg.DBName = "tcp", pw.Hostname, pw.Username, pw.PlainText, psdb
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func waitState(t *testing.T, c *planetscale.Client, n uint64, want ...string) *planetscale.DeployRequest {
	t.Helper()
	ctx := context.Background()
	for range 100 {
		dr, err := c.DeployRequests.Get(ctx, &planetscale.GetDeployRequestRequest{Organization: org, Database: psdb, Number: n})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if dr.DeploymentState == w {
				return dr
			}
		}
	}
	t.Fatalf("deploy request %d never reached %v", n, want)
	return nil
}

func TestDeployFlowChangesMain(t *testing.T) {
	ctx := context.Background()
	srv, c := newServer(t, fakeps.Options{BranchReadyAfter: 2, StepPolls: 2})
	main := openMain(t, srv)
	mustExec(t, main, "CREATE TABLE users (id BIGINT PRIMARY KEY, name VARCHAR(50))", "INSERT INTO users VALUES (1, 'ann')")

	b, err := c.DatabaseBranches.Create(ctx, &planetscale.CreateDatabaseBranchRequest{Organization: org, Database: psdb, Name: "dev", ParentBranch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if b.Ready {
		t.Fatal("branch ready at once despite BranchReadyAfter")
	}
	for !b.Ready {
		if b, err = c.DatabaseBranches.Get(ctx, &planetscale.GetDatabaseBranchRequest{Organization: org, Database: psdb, Branch: "dev"}); err != nil {
			t.Fatal(err)
		}
	}
	pw, err := c.Passwords.Create(ctx, &planetscale.DatabaseBranchPasswordRequest{Organization: org, Database: psdb, Branch: "dev", Role: "admin", Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	bdb := connect(t, pw)
	var cur string
	if err := bdb.QueryRow("SELECT DATABASE()").Scan(&cur); err != nil {
		t.Fatal(err)
	}
	if want, _ := srv.BranchDatabase("dev"); cur != want {
		t.Fatalf("password connection landed in %q, want branch database %q", cur, want)
	}
	mustExec(t, bdb, "ALTER TABLE users ADD COLUMN email VARCHAR(100)", "CREATE TABLE orders (id BIGINT PRIMARY KEY)")
	// The password cannot reach main.
	if _, err := bdb.Exec("SELECT * FROM `" + srv.MainDatabase() + "`.users"); err == nil {
		t.Fatal("branch password could read main")
	}

	dr, err := c.DeployRequests.Create(ctx, &planetscale.CreateDeployRequestRequest{Organization: org, Database: psdb, Branch: "dev", IntoBranch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.DeployRequests.Create(ctx, &planetscale.CreateDeployRequestRequest{Organization: org, Database: psdb, Branch: "dev", IntoBranch: "main"})
	var perr *planetscale.Error
	if !errors.As(err, &perr) || perr.Code != planetscale.ErrRetry {
		t.Fatalf("second open deploy request: got %v, want unprocessable", err)
	}
	waitState(t, c, dr.Number, "ready")
	if _, err := c.DeployRequests.Deploy(ctx, &planetscale.PerformDeployRequest{Organization: org, Database: psdb, Number: dr.Number}); err != nil {
		t.Fatal(err)
	}
	waitState(t, c, dr.Number, "pending_cutover")
	if _, err := c.DeployRequests.ApplyDeploy(ctx, &planetscale.ApplyDeployRequestRequest{Organization: org, Database: psdb, Number: dr.Number}); err != nil {
		t.Fatal(err)
	}
	final := waitState(t, c, dr.Number, "complete", "complete_error")
	if final.DeploymentState != "complete" || final.State != "closed" {
		t.Fatalf("deploy ended %s/%s", final.State, final.DeploymentState)
	}
	ops, err := c.DeployRequests.GetDeployOperations(ctx, &planetscale.GetDeployOperationsRequest{Organization: org, Database: psdb, Number: dr.Number})
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 2 {
		t.Fatalf("got %d operations, want 2", len(ops))
	}
	var email sql.NullString
	if err := main.QueryRow("SELECT email FROM users WHERE id = 1").Scan(&email); err != nil {
		t.Fatalf("main did not get the new column: %v", err)
	}
	if _, err := main.Exec("SELECT id FROM orders"); err != nil {
		t.Fatalf("main did not get the new table: %v", err)
	}
	if got := srv.Deploys(); got != 1 {
		t.Fatalf("deploys = %d, want 1", got)
	}
	if err := c.Passwords.Delete(ctx, &planetscale.DeleteDatabaseBranchPasswordRequest{Organization: org, Database: psdb, Branch: "dev", PasswordId: pw.PublicID}); err != nil {
		t.Fatal(err)
	}
	if err := c.DatabaseBranches.Delete(ctx, &planetscale.DeleteDatabaseBranchRequest{Organization: org, Database: psdb, Branch: "dev"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := srv.BranchDatabase("dev"); ok {
		t.Fatal("branch still exists after delete")
	}
}

func TestAuthAndFaults(t *testing.T) {
	ctx := context.Background()
	srv, c := newServer(t, fakeps.Options{})
	get := func(c *planetscale.Client) error {
		_, err := c.DatabaseBranches.Get(ctx, &planetscale.GetDatabaseBranchRequest{Organization: org, Database: psdb, Branch: "main"})
		return err
	}
	bad, _ := planetscale.NewClient(planetscale.WithBaseURL(srv.URL), planetscale.WithServiceToken("tok-id", "wrong"))
	if err := get(bad); err == nil || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("wrong token: got %v", err)
	}
	tests := []struct {
		status int
		code   planetscale.ErrorCode
	}{
		{http.StatusUnprocessableEntity, planetscale.ErrRetry},
		{http.StatusInternalServerError, ""},
		{http.StatusTooManyRequests, ""},
		{http.StatusServiceUnavailable, planetscale.ErrResponseMalformed},
		{http.StatusNotFound, planetscale.ErrNotFound},
	}
	for _, tt := range tests {
		srv.FailNext(fakeps.RouteGetBranch, tt.status, 1)
		err := get(c)
		var perr *planetscale.Error
		if !errors.As(err, &perr) || perr.Code != tt.code {
			t.Errorf("status %d: got %#v, want code %q", tt.status, err, tt.code)
		}
		if err := get(c); err != nil {
			t.Errorf("status %d: fault did not clear after one answer: %v", tt.status, err)
		}
	}
	srv.FailNext(fakeps.RouteGetBranch, fakeps.StatusDropConnection, 1)
	if err := get(c); err == nil {
		t.Error("dropped connection gave no error")
	}
}

func TestSchemaConflict(t *testing.T) {
	ctx := context.Background()
	srv, c := newServer(t, fakeps.Options{})
	main := openMain(t, srv)
	mustExec(t, main, "CREATE TABLE t (id INT PRIMARY KEY)")
	if _, err := c.DatabaseBranches.Create(ctx, &planetscale.CreateDatabaseBranchRequest{Organization: org, Database: psdb, Name: "dev", ParentBranch: "main"}); err != nil {
		t.Fatal(err)
	}
	pw, err := c.Passwords.Create(ctx, &planetscale.DatabaseBranchPasswordRequest{Organization: org, Database: psdb, Branch: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, connect(t, pw), "ALTER TABLE t ADD COLUMN a INT")
	mustExec(t, main, "ALTER TABLE t ADD COLUMN b INT") // main moved underneath
	dr, err := c.DeployRequests.Create(ctx, &planetscale.CreateDeployRequestRequest{Organization: org, Database: psdb, Branch: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	got := waitState(t, c, dr.Number, "error", "ready")
	if got.DeploymentState != "error" || got.Deployment == nil || len(got.Deployment.LintErrors) == 0 ||
		got.Deployment.LintErrors[0].LintError != fakeps.LintSchemaConflict {
		t.Fatalf("got %s %+v, want a schema conflict", got.DeploymentState, got.Deployment)
	}
}

// drive walks deploy request n through polls, deploying at ready and
// cutting over at pending_cutover, and returns every deployment state it
// saw, in order, without repeats.
func drive(t *testing.T, c *planetscale.Client, n uint64) []string {
	t.Helper()
	ctx := context.Background()
	var seen []string
	for range 200 {
		dr, err := c.DeployRequests.Get(ctx, &planetscale.GetDeployRequestRequest{Organization: org, Database: psdb, Number: n})
		if err != nil {
			t.Fatal(err)
		}
		st := dr.DeploymentState
		if st == "" && dr.Deployment != nil {
			st = "nested:" + dr.Deployment.State
		}
		if len(seen) == 0 || seen[len(seen)-1] != st {
			seen = append(seen, st)
			switch strings.TrimPrefix(st, "nested:") {
			case "ready":
				if _, err := c.DeployRequests.Deploy(ctx, &planetscale.PerformDeployRequest{Organization: org, Database: psdb, Number: n}); err != nil {
					t.Fatal(err)
				}
			case "pending_cutover":
				if _, err := c.DeployRequests.ApplyDeploy(ctx, &planetscale.ApplyDeployRequestRequest{Organization: org, Database: psdb, Number: n}); err != nil {
					t.Fatal(err)
				}
			case "complete", "complete_pending_revert", "no_changes", "error", "complete_error", "complete_cancel":
				return seen
			}
		}
	}
	t.Fatalf("deploy request %d did not end; saw %v", n, seen)
	return nil
}

// branchWithChange makes branch name from main, waits until it is ready,
// adds a column to t on it and opens its deploy request.
func branchWithChange(t *testing.T, c *planetscale.Client, name string) uint64 {
	t.Helper()
	ctx := context.Background()
	if _, err := c.DatabaseBranches.Create(ctx, &planetscale.CreateDatabaseBranchRequest{Organization: org, Database: psdb, Name: name, ParentBranch: "main"}); err != nil {
		t.Fatal(err)
	}
	for ready := false; !ready; {
		b, err := c.DatabaseBranches.Get(ctx, &planetscale.GetDatabaseBranchRequest{Organization: org, Database: psdb, Branch: name})
		if err != nil {
			t.Fatal(err)
		}
		ready = b.Ready
	}
	pw, err := c.Passwords.Create(ctx, &planetscale.DatabaseBranchPasswordRequest{Organization: org, Database: psdb, Branch: name})
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, connect(t, pw), "ALTER TABLE t ADD COLUMN a INT")
	dr, err := c.DeployRequests.Create(ctx, &planetscale.CreateDeployRequestRequest{Organization: org, Database: psdb, Branch: name, IntoBranch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	return dr.Number
}

func TestDeployPaths(t *testing.T) {
	tests := []struct {
		name  string
		opts  fakeps.Options
		setup func(*fakeps.Server)
		want  []string
	}{
		{name: "default", want: []string{"pending", "ready", "submitting", "queued", "in_progress", "pending_cutover", "in_progress_cutover", "complete"}},
		{name: "revert window", opts: fakeps.Options{RevertWindow: true},
			want: []string{"pending", "ready", "submitting", "queued", "in_progress", "pending_cutover", "in_progress_cutover", "complete_pending_revert"}},
		{name: "nested state only", opts: fakeps.Options{NestedStateOnly: true},
			want: []string{"nested:pending", "nested:ready", "nested:submitting", "nested:queued", "nested:in_progress", "nested:pending_cutover", "nested:in_progress_cutover", "nested:complete"}},
		{name: "detour", setup: func(s *fakeps.Server) { s.DetourDeployState("in_progress", "in_progress_vschema", "made_up") },
			want: []string{"pending", "ready", "submitting", "queued", "in_progress", "in_progress_vschema", "made_up", "pending_cutover", "in_progress_cutover", "complete"}},
		{name: "cancelled", setup: func(s *fakeps.Server) { s.FailNextDeploy(fakeps.DeployCancelled) },
			want: []string{"pending", "ready", "submitting", "queued", "in_progress", "in_progress_cancel", "complete_cancel"}},
		{name: "auto cutover", opts: fakeps.Options{AutoCutover: true},
			want: []string{"pending", "ready", "submitting", "queued", "in_progress", "in_progress_cutover", "complete"}},
		{name: "stale reads", opts: fakeps.Options{StaleReads: 1},
			want: []string{"pending", "ready", "submitting", "queued", "in_progress", "pending_cutover", "in_progress_cutover", "complete"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := newServer(t, tt.opts)
			mustExec(t, openMain(t, srv), "CREATE TABLE t (id INT PRIMARY KEY)")
			if tt.setup != nil {
				tt.setup(srv)
			}
			n := branchWithChange(t, c, "dev")
			if got := drive(t, c, n); !slices.Equal(got, tt.want) {
				t.Errorf("states %v, want %v", got, tt.want)
			}
			state, _, _ := srv.DeployRequest(n)
			wantState := "closed"
			if last := tt.want[len(tt.want)-1]; last == "complete_pending_revert" || last == "complete_cancel" {
				wantState = "open"
			}
			if state != wantState {
				t.Errorf("deploy request is %s, want %s", state, wantState)
			}
		})
	}
}

func TestStaleReadsRefuseASecondDeploy(t *testing.T) {
	ctx := context.Background()
	srv, c := newServer(t, fakeps.Options{StaleReads: 2})
	mustExec(t, openMain(t, srv), "CREATE TABLE t (id INT PRIMARY KEY)")
	n := branchWithChange(t, c, "dev")
	waitState(t, c, n, "ready")
	if _, err := c.DeployRequests.Deploy(ctx, &planetscale.PerformDeployRequest{Organization: org, Database: psdb, Number: n}); err != nil {
		t.Fatal(err)
	}
	dr, err := c.DeployRequests.Get(ctx, &planetscale.GetDeployRequestRequest{Organization: org, Database: psdb, Number: n})
	if err != nil {
		t.Fatal(err)
	}
	if dr.DeploymentState != "ready" {
		t.Fatalf("read after Deploy says %s, want the stale ready", dr.DeploymentState)
	}
	_, err = c.DeployRequests.Deploy(ctx, &planetscale.PerformDeployRequest{Organization: org, Database: psdb, Number: n})
	var perr *planetscale.Error
	if !errors.As(err, &perr) || perr.Code != planetscale.ErrRetry {
		t.Fatalf("second Deploy: got %v, want unprocessable", err)
	}
	if srv.Deploys() != 1 {
		t.Fatalf("deploys = %d, want 1", srv.Deploys())
	}
}

func TestLoseAnswerNextTakesEffect(t *testing.T) {
	ctx := context.Background()
	srv, c := newServer(t, fakeps.Options{})
	srv.LoseAnswerNext(fakeps.RouteCreateBranch, 1)
	_, err := c.DatabaseBranches.Create(ctx, &planetscale.CreateDatabaseBranchRequest{Organization: org, Database: psdb, Name: "dev", ParentBranch: "main"})
	if err == nil {
		t.Fatal("a lost answer gave no error")
	}
	if _, ok := srv.BranchDatabase("dev"); !ok {
		t.Fatal("the branch whose answer was lost was not made")
	}
	if _, err := c.DatabaseBranches.Get(ctx, &planetscale.GetDatabaseBranchRequest{Organization: org, Database: psdb, Branch: "dev"}); err != nil {
		t.Fatalf("the next call failed too: %v", err)
	}
}

// A slow answer: the call takes effect before its answer is sent, so a
// client that gives up waiting has still made the branch. Injected faults
// are counted until answered; an open deploy request is listed as open.
func TestSetLatencyAndPendingFaults(t *testing.T) {
	ctx := context.Background()
	srv, c := newServer(t, fakeps.Options{})
	arrived := make(chan struct{}, 1)
	srv.SetLatency(func(route string) time.Duration {
		if route != fakeps.RouteCreateBranch {
			return 0
		}
		arrived <- struct{}{}
		return 300 * time.Millisecond
	})
	done := make(chan error, 1)
	go func() {
		_, err := c.DatabaseBranches.Create(ctx, &planetscale.CreateDatabaseBranchRequest{Organization: org, Database: psdb, Name: "dev", ParentBranch: "main"})
		done <- err
	}()
	<-arrived
	if _, ok := srv.BranchDatabase("dev"); !ok {
		t.Error("the branch is not made while its answer is late")
	}
	if err := <-done; err != nil {
		t.Fatalf("slow create: %v", err)
	}
	srv.SetLatency(nil)
	srv.FailNext(fakeps.RouteCreateDeployRequest, 503, 1)
	if n := srv.PendingFaults(fakeps.RouteCreateDeployRequest); n != 1 {
		t.Errorf("%d faults pending, want 1", n)
	}
	if _, err := c.DeployRequests.Create(ctx, &planetscale.CreateDeployRequestRequest{Organization: org, Database: psdb, Branch: "dev", IntoBranch: "main"}); err == nil {
		t.Error("the injected 503 was not answered")
	}
	if n := srv.PendingFaults(fakeps.RouteCreateDeployRequest); n != 0 {
		t.Errorf("%d faults pending after the fault was answered, want 0", n)
	}
	dr, err := c.DeployRequests.Create(ctx, &planetscale.CreateDeployRequestRequest{Organization: org, Database: psdb, Branch: "dev", IntoBranch: "main"})
	if err != nil {
		t.Fatal(err)
	}
	if open := srv.OpenDeployRequests(); len(open) != 1 || open[0] != dr.Number {
		t.Errorf("open deploy requests %v, want [%d]", open, dr.Number)
	}
}

func TestListIgnoresFilters(t *testing.T) {
	ctx := context.Background()
	for _, ignore := range []bool{false, true} {
		srv, c := newServer(t, fakeps.Options{ListIgnoresFilters: ignore})
		mustExec(t, openMain(t, srv), "CREATE TABLE t (id INT PRIMARY KEY)")
		branchWithChange(t, c, "one")
		branchWithChange(t, c, "two")
		got, err := c.DeployRequests.List(ctx, &planetscale.ListDeployRequestsRequest{Organization: org, Database: psdb, State: "open", Branch: "two"})
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		if ignore {
			want = 2
		}
		if len(got) != want {
			t.Errorf("ListIgnoresFilters=%v: listed %d deploy requests, want %d", ignore, len(got), want)
		}
	}
}

func TestHostForms(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		form   string
		prefix string
	}{
		{"", "127.0.0.1:"},
		{"ip", "127.0.0.1:"},
		{"name", "localhost:"},
		{"url", "mysql://localhost:"},
	}
	for _, tt := range tests {
		_, c := newServer(t, fakeps.Options{HostForm: tt.form})
		pw, err := c.Passwords.Create(ctx, &planetscale.DatabaseBranchPasswordRequest{Organization: org, Database: psdb, Branch: "main", Role: "reader"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(pw.Hostname, tt.prefix) {
			t.Errorf("HostForm %q: access_host_url %q, want it to begin %q", tt.form, pw.Hostname, tt.prefix)
		}
	}
	if _, err := fakeps.New(fakeps.Options{ServerDSN: testdb.ServerDSN(), Organization: org, Database: psdb,
		ServiceTokenID: "a", ServiceToken: "b", HostForm: "carrier-pigeon"}); err == nil {
		t.Error("an unknown HostForm was accepted")
	}
}

func TestDeployRequestNeedsAReadyBranch(t *testing.T) {
	ctx := context.Background()
	_, c := newServer(t, fakeps.Options{BranchReadyAfter: 3})
	if _, err := c.DatabaseBranches.Create(ctx, &planetscale.CreateDatabaseBranchRequest{Organization: org, Database: psdb, Name: "dev", ParentBranch: "main"}); err != nil {
		t.Fatal(err)
	}
	_, err := c.DeployRequests.Create(ctx, &planetscale.CreateDeployRequestRequest{Organization: org, Database: psdb, Branch: "dev", IntoBranch: "main"})
	var perr *planetscale.Error
	if !errors.As(err, &perr) || perr.Code != planetscale.ErrRetry {
		t.Fatalf("deploy request from a branch not ready: got %v, want unprocessable", err)
	}
}
