package fakeps_test

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"strings"
	"testing"

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
