package recovery_test

import (
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/ternhq/tern/recovery"
	"github.com/ternhq/tern/store"
)

// blockAudit holds, in a REPEATABLE READ transaction, the gap after the
// last row of the audit log, so that a claim (which writes its audit rows
// in the same transaction) waits and fails with 1205 under a
// one-second innodb_lock_wait_timeout. release ends the transaction.
func blockAudit(t *testing.T, db *sql.DB) (release func()) {
	t.Helper()
	ctx := context.Background()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		"SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
		"BEGIN",
		"SELECT id FROM tern_events WHERE id > (SELECT COALESCE(MAX(id), 0) FROM tern_events) FOR UPDATE",
	} {
		if _, err := c.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	var once sync.Once
	release = func() { once.Do(func() { c.ExecContext(ctx, "ROLLBACK"); c.Close() }) }
	t.Cleanup(release)
	return release
}

// impatient opens the env's ledger again with innodb_lock_wait_timeout=1.
func (e *env) impatient(t *testing.T) *store.Store {
	t.Helper()
	cfg, err := mysql.ParseDSN(e.dsn)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["innodb_lock_wait_timeout"] = "1"
	return openStore(t, cfg.FormatDSN())
}

// onLog calls fn the first time a record whose message starts with msg is
// logged.
type onLog struct {
	slog.Handler
	msg  string
	once *sync.Once
	fn   func()
}

func (h onLog) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.msg) {
		h.once.Do(h.fn)
	}
	return nil
}
func (h onLog) Enabled(context.Context, slog.Level) bool { return true }
func (h onLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h onLog) WithGroup(string) slog.Handler            { return h }

// TestClaimLockWaitRetried: a claim that meets a lock wait timeout (1205)
// on the ledger is tried again, and the pass runs the apply.
func TestClaimLockWaitRetried(t *testing.T) {
	e := newEnv(t)
	a := e.seed(t, 1, 1, 5)[0]
	st := e.impatient(t)
	release := blockAudit(t, e.st.DB())
	log := slog.New(onLog{Handler: slog.DiscardHandler, msg: "claim failed, retrying", once: &sync.Once{}, fn: release})
	res := e.run(t, e.pass(func(p *recovery.Pass) { p.Store = st; p.Logger = log }))
	if res.Recovered != 1 || res.Errors != 0 {
		t.Fatalf("pass: %s errors=%d, want recovered=1 and no errors", res.Summary(), res.Errors)
	}
	e.checkOnce(t, []*store.Apply{a}, 1)
}

// TestClaimErrorStillReports: while every claim fails (the ledger keeps
// timing out on a lock), the pass still reports what is report-due, and
// counts the claim error instead of failing.
func TestClaimErrorStillReports(t *testing.T) {
	e := newEnv(t)
	done := e.seed(t, 1, 1, 5)[0]
	e.run(t, e.pass()) // completed, not reported: no reporter
	if got := e.apply(t, done.ID); got.State != store.Completed || got.ReportedVersion >= got.Version {
		t.Fatalf("apply %d: %s reported %d of %d, want completed and report-due", done.ID, got.State, got.ReportedVersion, got.Version)
	}
	// A second target's apply is due, and cannot be claimed.
	p := &store.Plan{Repository: "acme/shop", PR: 9, HeadSHA: "abc", InstallationID: 7, Database: "other",
		Environment: "staging", DesiredHash: "h", Desired: []byte("[]"), Lint: []byte("[]"),
		Statements: []store.Statement{{Table: "t0", Kind: "create", DDL: "CREATE TABLE t0 (id int PRIMARY KEY)"}}}
	ctx := context.Background()
	if err := e.st.SavePlan(ctx, p); err != nil {
		t.Fatal(err)
	}
	due, err := e.st.CreateApply(ctx, p, "octocat", false, 5)
	if err != nil {
		t.Fatal(err)
	}
	st := e.impatient(t)
	blockAudit(t, e.st.DB())
	rep := &reporter{}
	res, err := e.pass(func(p *recovery.Pass) { p.Store = st; p.Reporter = rep }).Run(ctx)
	if err != nil {
		t.Fatalf("pass = %v; a claim error must not end the pass", err)
	}
	if res.Errors == 0 {
		t.Errorf("the claim error was not counted: %s", res.Summary())
	}
	reported := false
	for _, r := range rep.got {
		reported = reported || (r.ID == done.ID && r.State == store.Completed)
	}
	if !reported {
		t.Errorf("apply %d was not reported completed (%d reports)", done.ID, len(rep.got))
	}
	if got := e.apply(t, due.ID); got.State != store.Pending {
		t.Errorf("apply %d is %s, want still pending", due.ID, got.State)
	}
}
