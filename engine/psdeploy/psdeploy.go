// Package psdeploy applies a plan to a PlanetScale database the way
// PlanetScale wants schema changes made: on a branch, through a deploy
// request.
//
// One attempt creates a branch from the target's branch, waits until it is
// ready, makes a password, runs each task's DDL on the branch over MySQL,
// opens a deploy request, waits until it is deployable, deploys it, cuts
// over, polls until it completes (logging progress from its deploy
// operations) and deletes the branch. Each step records what it made
// (branch, DDL progress on the branch, deploy request number) through
// Recorder.SaveState before or as soon as it exists, so a later attempt
// continues where this one stopped: it never opens a second deploy request
// for the same apply and never deploys twice.
//
// It relies only on what planetscale-go v0.155.0's types and the API
// promise: the deployment state is read from deployment_state or, where
// that is empty, deployment.state; every state the API defines is handled
// and an unknown one is waited on (bounded by StateTimeout); answers that
// lag behind Deploy or ApplyDeploy do not make it call them twice; a
// password's access_host_url may be a bare host (port 3306), host:port or
// a URL; the branch's schema is never named, only reached through the
// password; API errors are classified by the code the body states, else
// by HTTP status: 422, 429, 408 and 5xx are transient, 400, 401, 403, 404
// and other 4xx permanent, and a call without an answer (timeout, lost
// connection) transient.
//
// Tasks: TaskStarted is called for a task when its DDL goes to the branch
// (the first task also covers the setup before it), and TaskDone for every
// task only once the deploy request is complete, because only then is the
// change live on the target.
package psdeploy

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/planetscale/planetscale-go/planetscale"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/engine"
)

// Keys of the resume state the engine records.
const (
	StateBranch        = "ps_branch"             // branch made for the apply
	StateBranchStarted = "ps_branch_ddl_started" // seq of the last task whose DDL was sent to the branch
	StateBranchDone    = "ps_branch_ddl_done"    // seq of the last task whose DDL took effect on the branch
	StatePassword      = "ps_password_id"        // id of the branch password in use (never the password)
	StateDeployRequest = "ps_deploy_request"     // deploy request number
)

// Options tunes an Engine.
type Options struct {
	// PollInterval is the wait between polls of a branch or deploy
	// request. Default 2s.
	PollInterval time.Duration
	// StateTimeout is how long a branch or deploy request may stay in one
	// state before the attempt ends with a transient ps_timeout error (the
	// next attempt resumes polling the same deploy request). Default 1h.
	StateTimeout time.Duration
	// HTTPClient makes the API calls. Default: a fresh client.
	HTTPClient *http.Client
	// Logger receives progress. Default slog.Default().
	Logger *slog.Logger
}

// Engine applies DDL to a PlanetScale database through deploy requests. It
// implements engine.Engine and is safe for concurrent use.
type Engine struct {
	cfg    config.PlanetScale
	opts   Options
	client *planetscale.Client
	log    *slog.Logger

	mu       sync.Mutex
	live     *sql.DB
	livePass string // id of the live pool's password
}

var (
	_ engine.Engine  = (*Engine)(nil)
	_ engine.Resumer = (*Engine)(nil)
)

// New returns an engine for cfg. No request is made until one is needed.
func New(cfg config.PlanetScale, opts Options) (*Engine, error) {
	if cfg.Organization == "" || cfg.Database == "" || cfg.ServiceTokenID == "" || cfg.ServiceToken == "" {
		return nil, errors.New("planetscale target: organization, database, service_token_id and service_token are required")
	}
	if cfg.Branch == "" {
		cfg.Branch = "main"
	}
	if cfg.APIURL == "" {
		cfg.APIURL = planetscale.DefaultBaseURL
	}
	if !strings.HasSuffix(cfg.APIURL, "/") {
		// planetscale-go resolves its paths against the URL: without the
		// slash a path prefix (https://host/planetscale) would be lost.
		cfg.APIURL += "/"
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 2 * time.Second
	}
	if opts.StateTimeout <= 0 {
		opts.StateTimeout = time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: time.Minute}
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	hcCopy := *hc
	hcCopy.Transport = statusTransport{base: base}
	client, err := planetscale.NewClient(
		planetscale.WithBaseURL(cfg.APIURL),
		planetscale.WithHTTPClient(&hcCopy),
		planetscale.WithServiceToken(cfg.ServiceTokenID, cfg.ServiceToken),
		planetscale.WithUserAgent("tern"),
	)
	if err != nil {
		return nil, errors.New("planetscale target: cannot make an API client (check api_url)")
	}
	return &Engine{cfg: cfg, opts: opts, client: client, log: opts.Logger.With(
		"engine", "planetscale", "organization", cfg.Organization, "database", cfg.Database)}, nil
}

// Live returns a pool on the target's branch (cfg.Branch), made with a
// read-only branch password. Read the schema through DATABASE(): the
// server puts a password's connections in its branch whatever database
// they name. The engine owns the pool; Close deletes the password.
func (e *Engine) Live(ctx context.Context) (*sql.DB, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.live != nil {
		return e.live, nil
	}
	var pw *planetscale.DatabaseBranchPassword
	err := call(ctx, "create password on "+e.cfg.Branch, func(ctx context.Context) (err error) {
		pw, err = e.client.Passwords.Create(ctx, &planetscale.DatabaseBranchPasswordRequest{
			Organization: e.cfg.Organization, Database: e.cfg.Database, Branch: e.cfg.Branch,
			Role: "reader", Name: "tern-live-" + strconv.FormatInt(time.Now().Unix(), 10) + "-" + randSuffix(),
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	db, err := e.connect(ctx, pw)
	if err != nil {
		e.deletePassword(ctx, e.cfg.Branch, pw.PublicID)
		return nil, fmt.Errorf("connect to %s: %w", e.cfg.Branch, err)
	}
	e.live, e.livePass = db, pw.PublicID
	return db, nil
}

// Close closes the live pool and deletes its password.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.live == nil {
		return nil
	}
	err := e.live.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if derr := e.deletePassword(ctx, e.cfg.Branch, e.livePass); derr != nil {
		err = errors.Join(err, derr)
	}
	e.live, e.livePass = nil, ""
	return err
}

// connect opens a pool through a branch password and waits until it
// answers (a new password may take a moment to reach every edge).
func (e *Engine) connect(ctx context.Context, pw *planetscale.DatabaseBranchPassword) (*sql.DB, error) {
	addr, err := hostAddr(pw.Hostname)
	if err != nil {
		return nil, &engine.PermanentError{Class: ClassInvalid, Err: err}
	}
	mc := mysql.NewConfig()
	mc.Net = "tcp"
	mc.Addr = addr
	mc.User, mc.Passwd = pw.Username, pw.PlainText
	mc.DBName = e.cfg.Database
	mc.ParseTime = true
	mc.Timeout = 30 * time.Second
	if e.cfg.UseTLS() {
		mc.TLSConfig = "true"
	} else {
		mc.TLSConfig = "false"
	}
	db, err := e.open(ctx, mc)
	if code := mysqlErrNumber(err); code == 1044 || code == 1049 {
		// The endpoint refused the database the DSN names instead of
		// putting the password in its branch whatever the name, as
		// PlanetScale does. Where the password sees exactly one database,
		// that is its branch.
		name, ferr := e.onlyDatabase(ctx, mc)
		if ferr != nil {
			e.log.Debug("no single database for the branch password", "err", ferr)
			return nil, engine.ClassifyMySQL(err)
		}
		e.log.Info("branch endpoint refused the database name; using the one database the password sees")
		mc.DBName = name
		db, err = e.open(ctx, mc)
	}
	if err != nil {
		return nil, engine.ClassifyMySQL(err)
	}
	return db, nil
}

// open opens a pool with mc and waits until it answers. Access denied is
// retried a few times: a new password may take a moment to reach every
// edge.
func (e *Engine) open(ctx context.Context, mc *mysql.Config) (*sql.DB, error) {
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, &engine.PermanentError{Class: ClassInvalid, Err: errors.New("invalid branch connection settings")}
	}
	db := sql.OpenDB(conn)
	for i := 0; ; i++ {
		err = db.PingContext(ctx)
		if err == nil || i == 4 || mysqlErrNumber(err) != 1045 {
			break
		}
		if werr := sleep(ctx, e.opts.PollInterval); werr != nil {
			err = werr
			break
		}
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// onlyDatabase connects with mc and no database name and returns the one
// database other than the server's own that the user can see.
func (e *Engine) onlyDatabase(ctx context.Context, mc *mysql.Config) (string, error) {
	mc = mc.Clone()
	mc.DBName = ""
	db, err := e.open(ctx, mc)
	if err != nil {
		return "", err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SHOW DATABASES")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return "", err
		}
		switch strings.ToLower(n) {
		case "information_schema", "performance_schema", "mysql", "sys":
			continue
		}
		found = append(found, n)
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	if len(found) != 1 {
		return "", fmt.Errorf("the password sees %d databases", len(found))
	}
	return found[0], nil
}

// mysqlErrNumber is err's server error number, or 0.
func mysqlErrNumber(err error) uint16 {
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// hostAddr turns a password's access_host_url into host:port. PlanetScale
// answers a bare host name (aws.connect.psdb.cloud) to be reached on 3306;
// a host:port, a bracketed IPv6 address, or a URL (mysql://host:port/...)
// are accepted too.
func hostAddr(hostURL string) (string, error) {
	h := strings.TrimSpace(hostURL)
	if i := strings.Index(h, "://"); i >= 0 {
		h = h[i+3:]
	}
	if i := strings.LastIndex(h, "@"); i >= 0 {
		h = h[i+1:] // credentials in a URL are not the password's
	}
	if i := strings.IndexAny(h, "/?#"); i >= 0 {
		h = h[:i]
	}
	if h == "" {
		return "", errors.New("planetscale: the branch password has no access_host_url")
	}
	if host, port, err := net.SplitHostPort(h); err == nil {
		if host == "" {
			return "", errors.New("planetscale: the branch password's access_host_url has no host")
		}
		if port == "" {
			port = "3306"
		}
		return net.JoinHostPort(host, port), nil
	}
	return net.JoinHostPort(strings.Trim(h, "[]"), "3306"), nil
}

func (e *Engine) deletePassword(ctx context.Context, branch, id string) error {
	err := call(ctx, "delete password", func(ctx context.Context) error {
		return e.client.Passwords.Delete(ctx, &planetscale.DeleteDatabaseBranchPasswordRequest{
			Organization: e.cfg.Organization, Database: e.cfg.Database, Branch: branch, PasswordId: id,
		})
	})
	if engine.Class(err) == ClassNotFound {
		return nil
	}
	return err
}

// randSuffix returns 6 random lowercase hex digits for names that must
// not collide with ones made elsewhere.
func randSuffix() string {
	b := make([]byte, 3)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctxErr(ctx)
	case <-t.C:
		return nil
	}
}

func trimStatement(ddl string) string {
	return strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(ddl), ";"))
}

// ctxErr is ctx's error, classified (interrupted or timeout), naming the
// cause when the context was cancelled with one.
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if c := context.Cause(ctx); c != nil && c != err {
		err = fmt.Errorf("%w: %v", err, c)
	}
	return engine.ClassifyMySQL(err)
}
