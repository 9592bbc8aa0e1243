// Package fakeps is a stand-in for the PlanetScale API, for tests and
// `tern demo`. It serves, over httptest, the routes planetscale-go calls to
// deploy a schema change (branches, passwords, deploy requests and their
// operations) in the API's own request, response and error shapes.
//
// Branches are databases on a local MySQL or MariaDB server: the main
// branch is MainDatabase, and a new branch starts as a copy of its parent's
// tables (schema only). A branch password is a real server user granted the
// branch's database only; its access_host_url is a small TCP proxy that
// routes the connection to that database whatever database name the client
// asks for, as PlanetScale does. TLS is not offered: configure the target
// with `tls: false`.
//
// A deploy request diffs the branch against the branch it deploys into
// with vitess schemadiff (what PlanetScale runs) and applies the diff there
// at cutover. It moves along PlanetScale's path, one state per StepPolls
// GETs: pending -> ready | no_changes | error; Deploy -> submitting ->
// queued -> in_progress -> pending_cutover (without auto_cutover);
// ApplyDeploy -> in_progress_cutover -> complete (closed), or
// complete_pending_revert (still open) with RevertWindow. Like the API it
// allows one open deploy request per branch, refuses Deploy outside ready
// and ApplyDeploy outside pending_cutover with 422, and refuses passwords
// and deploy requests on a branch that is not ready yet.
//
// Answers can be varied where the API or another stand-in may differ:
// a deployment state only in the nested deployment (NestedStateOnly),
// reads that lag behind Deploy and ApplyDeploy (StaleReads), lists that
// ignore their filters (ListIgnoresFilters), access_host_url forms
// (HostForm), extra or unknown states on the way (DetourDeployState).
// Faults can be injected: error answers (FailNext), calls that take
// effect but lose their answer (LoseAnswerNext), a deploy that ends in
// error, is cancelled or meets a schema conflict (FailNextDeploy), states
// that never advance (HangDeployState, HangBranches), and refused MySQL
// connections (DropMySQLConnections).
package fakeps

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Options configures a Server.
type Options struct {
	// ServerDSN is a go-sql-driver DSN of the MySQL/MariaDB server that
	// backs the branches, without a database name; its user must be able to
	// create databases and users. Required; it must use tcp.
	ServerDSN string
	// Organization and Database name the one PlanetScale database served.
	// Required.
	Organization string
	Database     string
	// MainBranch is the production branch's name. Default "main".
	MainBranch string
	// ServiceTokenID and ServiceToken are the only credentials accepted.
	// Required.
	ServiceTokenID string
	ServiceToken   string
	// Prefix names the server databases made for branches
	// (<Prefix>_main, <Prefix>_b<N>). Default "fakeps_<random>".
	Prefix string
	// BranchReadyAfter is how many GETs of a new branch answer ready=false
	// before it is ready. Default 0: ready at once.
	BranchReadyAfter int
	// StepPolls is how many GETs of a deploy request answer each state
	// before it moves on by itself (the state a deploy request is created
	// in, and those Deploy, ApplyDeploy and CancelDeploy put it in,
	// included). Default 1.
	StepPolls int
	// CopySteps keeps a deploy in in_progress for that many more steps
	// (StepPolls GETs each), its operations' progress moving at each, as a
	// deploy copying a big table does for hours. Default 0.
	CopySteps int
	// NestedStateOnly leaves a deploy request's top-level deployment_state
	// empty and reports the state only in deployment.state, as the
	// answers in planetscale-go's own tests do.
	NestedStateOnly bool
	// AutoCutover makes every deploy cut over by itself (in_progress ->
	// in_progress_cutover -> complete), whatever auto_cutover the deploy
	// request was created with; ApplyDeploy is then refused.
	AutoCutover bool
	// RevertWindow ends a deploy in complete_pending_revert, the request
	// still open, as PlanetScale does while a deploy can be reverted,
	// instead of complete and closed.
	RevertWindow bool
	// StaleReads is how many GETs of a deploy request after Deploy or
	// ApplyDeploy still answer the state before it (ready,
	// pending_cutover), as an API read from a lagging replica does; a
	// second Deploy or ApplyDeploy in that time is refused with 422.
	StaleReads int
	// ListIgnoresFilters makes the deploy request list answer every
	// deploy request whatever state, branch or into_branch the query asks
	// for, so that a client must check what it gets.
	ListIgnoresFilters bool
	// NoDBRouting makes the MySQL endpoint pass connections through
	// untouched instead of putting each in its password's branch: a
	// client that names a database other than the branch's is refused
	// (1044), and one that names none lands in no database. PlanetScale
	// routes by password; this is for clients that must cope with a
	// stand-in that does not.
	NoDBRouting bool
	// HostForm is the form of a password's access_host_url: "" or "ip"
	// (127.0.0.1:PORT), "name" (localhost:PORT) or "url"
	// (mysql://localhost:PORT/). PlanetScale answers a bare host name
	// reached on port 3306, which a local stand-in cannot.
	HostForm string
	// Logger receives the stand-in's own log lines. Default: discarded.
	Logger *slog.Logger
}

// Routes, as named by FailNext.
const (
	RouteCreateBranch        = "create_branch"
	RouteGetBranch           = "get_branch"
	RouteDeleteBranch        = "delete_branch"
	RouteCreatePassword      = "create_password"
	RouteDeletePassword      = "delete_password"
	RouteListDeployRequests  = "list_deploy_requests"
	RouteCreateDeployRequest = "create_deploy_request"
	RouteGetDeployRequest    = "get_deploy_request"
	RouteCloseDeployRequest  = "close_deploy_request"
	RouteDeploy              = "deploy"
	RouteApplyDeploy         = "apply_deploy"
	RouteCancelDeploy        = "cancel_deploy"
	RouteDeployOperations    = "deploy_operations"
)

// StatusDropConnection passed to FailNext closes the HTTP connection
// without an answer (the client sees a connection error).
const StatusDropConnection = -1

// statusPass in a route's fault queue lets one request through.
const statusPass = 0

// DeployFault is what FailNextDeploy makes of the next deploy request.
type DeployFault int

const (
	// DeployError makes the deploy end in complete_error, main unchanged.
	DeployError DeployFault = iota + 1
	// SchemaConflict makes the deploy request's check end in state error
	// with a SCHEMA_CONFLICT lint error, as when main moved underneath.
	SchemaConflict
	// DeployCancelled makes someone cancel the deploy while it is in
	// progress: in_progress_cancel, then complete_cancel, main unchanged.
	DeployCancelled
)

// Server is a running stand-in. Close it when done.
type Server struct {
	// URL is the API root to give planetscale.WithBaseURL.
	URL string

	opts  Options
	admin *sql.DB
	http  *httptest.Server
	proxy *proxy
	log   *slog.Logger

	mu          sync.Mutex
	branches    map[string]*branch
	passwords   map[string]*password // by id
	users       map[string]string    // server user -> branch database
	drs         []*deployRequest
	faults      map[string][]int // route -> statuses still to answer
	lose        map[string]int   // route -> answers still to lose after handling
	detours     map[string][]string
	deployFault []DeployFault
	hangState   string
	hangBranch  bool
	deploys     int
	branchSeq   int
	requests    map[string]int
	latency     func(route string) time.Duration
}

// New starts a stand-in: it creates the main branch's database (empty) on
// the server and starts the HTTP API and the MySQL proxy.
func New(opts Options) (*Server, error) {
	if opts.ServerDSN == "" || opts.Organization == "" || opts.Database == "" ||
		opts.ServiceTokenID == "" || opts.ServiceToken == "" {
		return nil, errors.New("fakeps: ServerDSN, Organization, Database, ServiceTokenID and ServiceToken are required")
	}
	if opts.MainBranch == "" {
		opts.MainBranch = "main"
	}
	switch opts.HostForm {
	case "", "ip", "name", "url":
	default:
		return nil, fmt.Errorf("fakeps: unknown HostForm %q (ip, name or url)", opts.HostForm)
	}
	if opts.StepPolls <= 0 {
		opts.StepPolls = 1
	}
	if opts.Prefix == "" {
		opts.Prefix = "fakeps_" + randHex(4)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := mysql.ParseDSN(opts.ServerDSN)
	if err != nil {
		return nil, errors.New("fakeps: ServerDSN is not a valid DSN")
	}
	if cfg.Net != "tcp" {
		return nil, errors.New("fakeps: ServerDSN must use tcp")
	}
	cfg.DBName = ""
	cfg.MultiStatements = false
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, fmt.Errorf("fakeps: open server: %w", err)
	}
	s := &Server{
		opts:      opts,
		admin:     admin,
		log:       logger,
		branches:  map[string]*branch{},
		passwords: map[string]*password{},
		users:     map[string]string{},
		faults:    map[string][]int{},
		lose:      map[string]int{},
		detours:   map[string][]string{},
		requests:  map[string]int{},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	mainDB := opts.Prefix + "_main"
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS "+quote(mainDB)+" CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"); err != nil {
		admin.Close()
		return nil, fmt.Errorf("fakeps: create main database: %w", err)
	}
	now := time.Now().UTC()
	s.branches[opts.MainBranch] = &branch{
		ID: randHex(6), Name: opts.MainBranch, DB: mainDB, Production: true, Ready: true, CreatedAt: now,
	}
	s.proxy, err = newProxy(cfg.Addr, s.route, logger)
	if err != nil {
		admin.Close()
		return nil, err
	}
	s.http = httptest.NewServer(s.handler())
	s.URL = s.http.URL + "/"
	return s, nil
}

// Close stops the stand-in and drops the databases and users it made.
func (s *Server) Close() error {
	s.http.Close()
	s.proxy.close()
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for u := range s.users {
		if _, err := s.admin.ExecContext(ctx, "DROP USER IF EXISTS "+userSpec(u)); err != nil {
			errs = append(errs, err)
		}
	}
	for _, b := range s.branches {
		if _, err := s.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quote(b.DB)); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, s.admin.Close())
	return errors.Join(errs...)
}

// MainDatabase is the server database that backs the main branch.
func (s *Server) MainDatabase() string { return s.opts.Prefix + "_main" }

// MainDSN is a DSN for the main branch's database on the backing server
// (the server's own credentials), for seeding and checking it.
func (s *Server) MainDSN() string {
	cfg, _ := mysql.ParseDSN(s.opts.ServerDSN)
	cfg.DBName = s.MainDatabase()
	return cfg.FormatDSN()
}

// BranchDatabase returns the server database backing a branch.
func (s *Server) BranchDatabase(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.branches[name]
	if !ok {
		return "", false
	}
	return b.DB, true
}

// Branches returns the names of the branches that exist, main included.
func (s *Server) Branches() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for n := range s.branches {
		out = append(out, n)
	}
	return out
}

// Passwords returns how many branch passwords exist.
func (s *Server) Passwords() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.passwords)
}

// DeployRequestsCreated returns how many deploy requests were created.
func (s *Server) DeployRequestsCreated() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.drs)
}

// Deploys returns how many deploy requests were deployed (Deploy accepted).
func (s *Server) Deploys() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deploys
}

// DeployRequest returns deploy request n's state (open, closed) and
// deployment state.
func (s *Server) DeployRequest(n uint64) (state, deployment string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n == 0 || n > uint64(len(s.drs)) {
		return "", "", false
	}
	d := s.drs[n-1]
	return d.State, d.Deployment, true
}

// Requests returns how many requests a route received (faults included).
func (s *Server) Requests(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[route]
}

// FailNext makes the next n requests to route answer status in
// PlanetScale's error shape (422 "unprocessable", 429, 500, 503 with an
// HTML body, ...), or drop the connection with StatusDropConnection.
func (s *Server) FailNext(route string, status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[route] = append(s.faults[route], status)
	}
}

// PendingFaults returns how many injected faults (FailNext, FailAfter)
// route still has to answer.
func (s *Server) PendingFaults(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, st := range s.faults[route] {
		if st != statusPass {
			n++
		}
	}
	return n
}

// LoseAnswerNext makes the next n requests to route take effect and then
// close the connection without an answer, as when a response is lost on
// the way back: the client sees a connection error for a call that worked.
func (s *Server) LoseAnswerNext(route string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lose[route] += n
}

// DetourDeployState makes every deploy request that leaves deployment
// state after pass through the states through first, one step each (for
// example in_progress_vschema, or a state no client knows). Called with
// no states it removes the detour.
func (s *Server) DetourDeployState(after string, through ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(through) == 0 {
		delete(s.detours, after)
		return
	}
	s.detours[after] = through
}

// FailAfter lets the next pass requests to route through, then makes the
// one after answer status as FailNext does.
func (s *Server) FailAfter(route string, pass, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range pass {
		s.faults[route] = append(s.faults[route], statusPass)
	}
	s.faults[route] = append(s.faults[route], status)
}

// FailNextDeploy makes the next deploy request created fail as f.
func (s *Server) FailNextDeploy(f DeployFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deployFault = append(s.deployFault, f)
}

// SetLatency makes the stand-in answer calls late: a call takes effect at
// once and its answer is sent f(route) later (called under the stand-in's
// lock; it must not call back into the Server), so a client that gives up
// waiting has still changed PlanetScale, as with the real service. nil
// removes the latency.
func (s *Server) SetLatency(f func(route string) time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = f
}

// OpenDeployRequests returns the numbers of the deploy requests still
// open.
func (s *Server) OpenDeployRequests() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uint64
	for _, d := range s.drs {
		if d.State == "open" {
			out = append(out, d.Number)
		}
	}
	return out
}

// HangDeployState keeps deploy requests in deployment state st (e.g.
// "pending", "in_progress", "pending_cutover") however often they are
// polled, until called again with "".
func (s *Server) HangDeployState(st string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hangState = st
}

// HangBranches keeps new branches not ready while on.
func (s *Server) HangBranches(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hangBranch = on
}

// DropMySQLConnections makes the branch MySQL endpoint close the next n
// connections at once.
func (s *Server) DropMySQLConnections(n int) {
	s.proxy.mu.Lock()
	defer s.proxy.mu.Unlock()
	s.proxy.drop += n
}

// route maps a connecting server user to its branch database.
func (s *Server) route(user string) (string, bool) {
	if s.opts.NoDBRouting {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	db, ok := s.users[user]
	return db, ok
}

// apiError writes an error in PlanetScale's shape.
func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"code": code, "message": msg})
}

// injected answers an injected fault.
func injected(w http.ResponseWriter, status int) {
	switch {
	case status == StatusDropConnection:
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		apiError(w, http.StatusBadGateway, "", "")
	case status == http.StatusUnprocessableEntity:
		apiError(w, status, "unprocessable", "The request could not be processed, please try again")
	case status == http.StatusTooManyRequests:
		apiError(w, status, "rate_limited", "Too many requests")
	case status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout:
		// Load balancers answer HTML, not the API's JSON.
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>\n", status, http.StatusText(status))
	case status == http.StatusNotFound:
		apiError(w, status, "not_found", "Not Found")
	case status == http.StatusUnauthorized:
		apiError(w, status, "unauthorized", "Unauthorized")
	case status == http.StatusForbidden:
		apiError(w, status, "forbidden", "Forbidden")
	case status == http.StatusBadRequest:
		apiError(w, status, "bad_request", "Bad request")
	case status >= 500:
		apiError(w, status, "internal", "Internal server error")
	default:
		apiError(w, status, "invalid_params", http.StatusText(status))
	}
}

// handlerFunc handles one API call under the server's lock: it returns the
// status and the JSON body, or for a status >= 400 the error message.
type handlerFunc func(r *http.Request, body []byte) (status int, resp any)

func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	base := "/v1/organizations/{org}/databases/{db}"
	add := func(pattern, route string, h handlerFunc) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			s.serve(w, r, route, h)
		})
	}
	add("POST "+base+"/branches", RouteCreateBranch, s.createBranch)
	add("GET "+base+"/branches/{branch}", RouteGetBranch, s.getBranch)
	add("DELETE "+base+"/branches/{branch}", RouteDeleteBranch, s.deleteBranch)
	add("POST "+base+"/branches/{branch}/passwords", RouteCreatePassword, s.createPassword)
	add("DELETE "+base+"/branches/{branch}/passwords/{id}", RouteDeletePassword, s.deletePassword)
	add("GET "+base+"/deploy-requests", RouteListDeployRequests, s.listDeployRequests)
	add("POST "+base+"/deploy-requests", RouteCreateDeployRequest, s.createDeployRequest)
	add("GET "+base+"/deploy-requests/{number}", RouteGetDeployRequest, s.getDeployRequest)
	add("PATCH "+base+"/deploy-requests/{number}", RouteCloseDeployRequest, s.closeDeployRequest)
	add("POST "+base+"/deploy-requests/{number}/deploy", RouteDeploy, s.deploy)
	add("POST "+base+"/deploy-requests/{number}/apply-deploy", RouteApplyDeploy, s.applyDeploy)
	add("POST "+base+"/deploy-requests/{number}/cancel", RouteCancelDeploy, s.cancelDeploy)
	add("GET "+base+"/deploy-requests/{number}/operations", RouteDeployOperations, s.deployOperations)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		apiError(w, http.StatusNotFound, "not_found", "Not Found")
	})
	return mux
}

// serve authenticates, applies injected faults and runs h under the lock.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, route string, h handlerFunc) {
	want := s.opts.ServiceTokenID + ":" + s.opts.ServiceToken
	got := r.Header.Get("Authorization")
	switch {
	case got == "":
		apiError(w, http.StatusUnauthorized, "unauthorized", "Unauthorized: a service token is required")
		return
	case got != want:
		apiError(w, http.StatusForbidden, "forbidden", "The service token is not valid or lacks access to this database")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		apiError(w, http.StatusBadRequest, "bad_request", "unreadable body")
		return
	}
	answer, latency := s.handle(w, r, route, h, body)
	if answer == nil {
		return
	}
	if latency > 0 {
		time.Sleep(latency)
	}
	answer()
}

// handle runs one call under the lock: it answers an injected fault or a
// lost answer at once (nil), or returns the answer to send and how late
// to send it (SetLatency), the call's effect being made already.
func (s *Server) handle(w http.ResponseWriter, r *http.Request, route string, h handlerFunc, body []byte) (answer func(), latency time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests[route]++
	if q := s.faults[route]; len(q) > 0 {
		s.faults[route] = q[1:]
		if q[0] != statusPass {
			s.log.Info("fakeps: injected fault", "route", route, "status", q[0])
			injected(w, q[0])
			return nil, 0
		}
	}
	if r.PathValue("org") != s.opts.Organization || r.PathValue("db") != s.opts.Database {
		apiError(w, http.StatusNotFound, "not_found", "Not Found")
		return nil, 0
	}
	status, resp := h(r, body)
	if s.lose[route] > 0 {
		s.lose[route]--
		s.log.Info("fakeps: answer lost", "route", route, "status", status)
		injected(w, StatusDropConnection)
		return nil, 0
	}
	if s.latency != nil {
		latency = s.latency(route)
	}
	if status >= 400 {
		msg, _ := resp.(string)
		code := map[int]string{400: "bad_request", 401: "unauthorized", 404: "not_found", 422: "unprocessable"}[status]
		if code == "" {
			code = "internal"
		}
		return func() { apiError(w, status, code, msg) }, latency
	}
	if status == http.StatusNoContent {
		return func() { w.WriteHeader(status) }, latency
	}
	// Encoded now: the state may change while the answer waits.
	b, err := json.Marshal(resp)
	if err != nil {
		return func() { apiError(w, http.StatusInternalServerError, "internal", "encode: "+err.Error()) }, latency
	}
	return func() {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write(append(b, '\n'))
	}, latency
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func quote(name string) string { return "`" + name + "`" }

func userSpec(u string) string { return "'" + u + "'@'%'" }
