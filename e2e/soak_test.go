package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/internal/fakeps"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/report"
	"github.com/ternhq/tern/store"
)

// soakSize is one mode of the soak: how many targets run side by side,
// how many applies each target gets one after the other, and the rows of
// each target's table (more rows, longer copying ALTERs).
type soakSize struct {
	Targets, Waves, Rows int
	// PSTargets are PlanetScale targets (fakeps), PSWaves applies each:
	// a deploy request takes tern's 2 s polls through some seven states.
	PSTargets, PSWaves int
	Servers            int           // `tern serve` processes
	FaultEvery         time.Duration // mean time between two faults
	// PSFaultEvery is the mean time between two random PlanetScale
	// faults (0: none but the scripted ones, see scriptPSFaults): each
	// 422/503 once the deploy request exists ends the attempt in a wait
	// (apply's InFlightWait: 30 s, or backoff_max when shorter: 1 s here).
	PSFaultEvery time.Duration
	// Restarts of the soak's MariaDB server, spread over the applies,
	// SIGKILL and SIGTERM in turn.
	Restarts int
	MaxConns int // the private server's max_connections
}

// soakSizes are the soak's modes. short runs in every `go test`; long is
// the one BENCHMARKS.md records (TERN_SOAK=long).
var soakSizes = map[string]soakSize{
	"short": {Targets: 3, Waves: 12, Rows: 30000, PSTargets: 1, PSWaves: 1, Servers: 2, FaultEvery: 300 * time.Millisecond,
		Restarts: 2, MaxConns: 1000},
	"long": {Targets: 10, Waves: 100, Rows: 20000, PSTargets: 2, PSWaves: 15, Servers: 3, FaultEvery: 250 * time.Millisecond,
		PSFaultEvery: 20 * time.Second, Restarts: 10, MaxConns: 3000},
}

// soak is one run of the soak harness.
type soak struct {
	*world
	t        *testing.T
	size     soakSize
	rng      *rand.Rand
	rngMu    sync.Mutex
	proxy    *ddlProxy
	db       *privateMariaDB  // the server of the ledger and the MySQL targets
	ps       []*fakeps.Server // PlanetScale targets, target Targets+i
	admin    *sql.DB          // straight to the server, for faults and checks
	cfg      string
	storeDB  string
	lives    []*sql.DB // target k's live schema (through no proxy)
	liveName []string
	planner  *plan.Planner

	mu         sync.Mutex
	servers    []*server
	applies    []*store.Apply // every apply created
	desired    map[int64]*plan.Desired
	deliveries []string // delivery ids GitHub got a 2xx for
	faults     map[string]int

	leasedDeliveries int          // stored, leased to a killed server at the end
	killed           map[int]bool // pids of the servers SIGKILLed
	completed        int          // applies completed so far
	restarted        int          // MariaDB restarts done
}

// killedOwner reports whether a lease owner ("host/pid/role") is a server
// the soak killed.
func (s *soak) killedOwner(owner string) bool {
	parts := strings.Split(owner, "/")
	if len(parts) < 2 {
		return false
	}
	pid, err := strconv.Atoi(parts[1])
	s.mu.Lock()
	defer s.mu.Unlock()
	return err == nil && s.killed[pid]
}

func (s *soak) intn(n int) int {
	s.rngMu.Lock()
	defer s.rngMu.Unlock()
	return s.rng.Intn(n)
}

// TestSoak runs many applies through several `tern serve` processes and
// concurrent `tern recover` processes while faults are injected at random
// (SIGKILL of a server, KILL of tern's connections to the targets and to
// the ledger, held metadata locks, GitHub 5xx and slow answers,
// PlanetScale 422/503 and slow answers, restarts of MariaDB by SIGTERM
// and SIGKILL), then checks invariants: every apply completed and the
// live schema is the desired one; no DDL was answered OK twice or re-sent
// after its effect was live, no PlanetScale apply deployed twice; every
// check run and apply comment equals what the ledger's final state
// renders; every acknowledged delivery was processed.
//
// The ledger and the MySQL targets live on a private mariadbd (restarted
// by the soak); the PlanetScale stand-ins keep their branches on the
// shared test server, which is not restarted (PlanetScale is another
// service).
//
// TERN_SOAK=long runs the long mode (BENCHMARKS.md); TERN_SOAK_SEED seeds
// the fault choices (their timing still varies from run to run).
func TestSoak(t *testing.T) {
	mode := os.Getenv("TERN_SOAK")
	if mode == "" {
		mode = "short"
	}
	size, ok := soakSizes[mode]
	if !ok {
		t.Fatalf("TERN_SOAK=%q: want short or long", mode)
	}
	seed := time.Now().UnixNano()
	if v := os.Getenv("TERN_SOAK_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseInt(v, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("soak %s: %+v, seed %d", mode, size, seed)
	s := newSoak(t, size, seed)
	began := time.Now()
	s.drive()
	elapsed := time.Since(began)
	violations := s.check()
	sends, oks := 0, 0
	for _, os := range s.proxy.Sends() {
		for _, o := range os {
			sends++
			if o.OK {
				oks++
			}
		}
	}
	attempts := 0
	for _, a := range s.applies {
		attempts += s.applyState(context.Background(), a.ID).Attempt
	}
	deploys := 0
	for _, ps := range s.ps {
		deploys += ps.Deploys()
	}
	t.Logf("soak %s: %d applies (%d attempts) in %s; %d DDL sends, %d answered OK; %d PlanetScale deploys; faults %v; %d deliveries (%d still leased to a killed server); %d violations",
		mode, len(s.applies), attempts, elapsed.Round(time.Second), sends, oks, deploys, s.faults, len(s.deliveries), s.leasedDeliveries, violations)
}

func newSoak(t *testing.T, size soakSize, seed int64) *soak {
	shared := testdb.ServerDSN()
	testdb.Server(t) // fails clearly when the shared server does not answer
	db := startPrivateMariaDB(t, size.MaxConns)
	t.Setenv("TERN_TEST_DSN", db.DSN()) // testdb and newWorld use it from here on
	w := newWorld(t)
	s := &soak{world: w, t: t, size: size, rng: rand.New(rand.NewSource(seed)), admin: testdb.Server(t), db: db,
		planner: &plan.Planner{}, desired: map[int64]*plan.Desired{}, faults: map[string]int{}, killed: map[int]bool{}}
	cfg, err := mysql.ParseDSN(w.storeDSN)
	if err != nil {
		t.Fatal(err)
	}
	s.storeDB = cfg.DBName
	s.proxy = newDDLProxy(t, testdb.Config(t).Addr)

	var targets []string
	for k := 0; k < size.Targets; k++ {
		db, name := testdb.Open(t, fmt.Sprintf("e2e_soak%d", k))
		if _, err := db.Exec(fmt.Sprintf("CREATE TABLE t%d (id BIGINT NOT NULL AUTO_INCREMENT, name VARCHAR(100) NOT NULL, PRIMARY KEY (id))", k)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(fmt.Sprintf(`INSERT INTO t%d (name) SELECT CONCAT('n', seq) FROM seq_1_to_%d`, k, size.Rows)); err != nil {
			t.Fatal(err)
		}
		s.lives = append(s.lives, db)
		s.liveName = append(s.liveName, name)
		c := testdb.Config(t)
		c.Addr = s.proxy.Addr()
		c.DBName = name
		c.TLSConfig = "false" // the proxy reads the protocol in clear
		w.env[fmt.Sprintf("SOAK_DSN_%d", k)] = c.FormatDSN()
		targets = append(targets, fmt.Sprintf(`  - {repository: acme/shop, database: shop, environment: env%d, mysql: {dsn: "${SOAK_DSN_%d}", lock_wait_timeout: 1s}}`, k, k))
	}
	w.env["PS_TOKEN"] = psToken
	for i := 0; i < size.PSTargets; i++ {
		k := size.Targets + i
		ps, err := fakeps.New(fakeps.Options{ServerDSN: shared, Organization: "acme", Database: fmt.Sprintf("ps%d", k),
			ServiceTokenID: "soak-token-id", ServiceToken: psToken})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ps.Close() })
		ps.SetLatency(func(string) time.Duration { return time.Duration(s.intn(60)) * time.Millisecond })
		main, err := sql.Open("mysql", ps.MainDSN())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { main.Close() })
		if _, err := main.Exec(fmt.Sprintf("CREATE TABLE t%d (id BIGINT NOT NULL AUTO_INCREMENT, name VARCHAR(100) NOT NULL, PRIMARY KEY (id))", k)); err != nil {
			t.Fatal(err)
		}
		if _, err := main.Exec(fmt.Sprintf(`INSERT INTO t%d (name) SELECT CONCAT('n', seq) FROM seq_1_to_%d`, k, size.Rows)); err != nil {
			t.Fatal(err)
		}
		s.ps = append(s.ps, ps)
		s.lives = append(s.lives, main)
		s.liveName = append(s.liveName, ps.MainDatabase())
		targets = append(targets, fmt.Sprintf(`  - {repository: acme/shop, database: shop, environment: env%d, planetscale: {organization: acme, database: ps%d, branch: main, service_token_id: soak-token-id, service_token: "${PS_TOKEN}", api_url: %q, tls: false}}`, k, k, ps.URL))
	}
	s.cfg = w.config(strings.Join(targets, "\n"),
		"  interval: 500ms\n  lease: 2s\n  max_attempts: 25\n  backoff_base: 100ms\n  backoff_max: 1s\n  max_rescues: 25")
	w.gh.SetPermission(repoName, "alice", "write")
	w.gh.OpenPR(repoName, 1, sha(1), shopFiles(usersV2)) // where /tern status is asked
	w.gh.SetLatency(func(method, p string) time.Duration {
		if method == http.MethodGet {
			return 0
		}
		return time.Duration(s.intn(40)) * time.Millisecond
	})
	for i := 0; i < size.Servers; i++ {
		s.servers = append(s.servers, w.serve(s.cfg))
	}
	return s
}

// prOf is the PR of target k's wave n apply.
func prOf(k, n int) int { return 100 + k*1000 + n }

// tableOf is target k's table.
func tableOf(k int) string { return fmt.Sprintf("t%d", k) }

// desiredAt is target k's desired schema after wave n: the table with
// columns c1..cn, the even ones indexed (an index build takes time and
// can be caught mid-DDL; MariaDB allows 64 keys a table).
func desiredAt(k, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE %s (\n  id BIGINT NOT NULL AUTO_INCREMENT,\n  name VARCHAR(100) NOT NULL,\n", tableOf(k))
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "  c%d INT NOT NULL DEFAULT 0,\n", i)
	}
	b.WriteString("  PRIMARY KEY (id)")
	for i := 2; i <= n; i += 2 {
		fmt.Fprintf(&b, ",\n  KEY k%d (c%d)", i, i)
	}
	b.WriteString("\n);\n")
	return b.String()
}

// newApply plans target k's wave n against its live schema with tern's
// planner and records the apply in the ledger, as `/tern apply` would.
func (s *soak) newApply(ctx context.Context, k, n int) *store.Apply {
	t := s.t
	file := "db/shop/" + tableOf(k) + ".sql"
	src := desiredAt(k, n)
	pr := prOf(k, n)
	head := fmt.Sprintf("%040x", 0x50a0000+pr)
	s.gh.OpenPR(repoName, pr, head, map[string]string{file: src})
	d, err := plan.Parse([]plan.File{{Path: file, Data: []byte(src)}})
	if err != nil {
		t.Fatal(err)
	}
	var p *plan.Plan
	if err := retry(func() (err error) { p, err = s.planner.Plan(ctx, d, s.lives[k], s.admin); return err }); err != nil {
		t.Fatalf("plan target %d wave %d: %v", k, n, err)
	}
	sp := &store.Plan{Repository: repoName, PR: pr, HeadSHA: head, InstallationID: installation,
		Database: "shop", Environment: fmt.Sprintf("env%d", k), DesiredHash: d.Hash(), Desired: d.Marshal(), Lint: []byte("[]")}
	for _, st := range p.Statements {
		sp.Statements = append(sp.Statements, store.Statement{Table: st.Table, Kind: st.Kind, DDL: st.DDL, Instant: st.Instant})
	}
	if len(sp.Statements) == 0 {
		t.Fatalf("target %d wave %d: nothing to apply", k, n)
	}
	if err := retry(func() error { return s.st.SavePlan(ctx, sp) }); err != nil {
		t.Fatal(err)
	}
	var a *store.Apply
	if err := retry(func() (err error) { a, err = s.st.CreateApply(ctx, sp, "alice", false, 25); return err }); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.applies = append(s.applies, a)
	s.desired[a.ID] = d
	s.mu.Unlock()
	return a
}

// retry runs f until it succeeds, for up to two minutes: the test's own
// ledger connections are KILLed by the faults too, and the server is
// restarted (InnoDB's recovery after a SIGKILL takes a while on a busy
// machine).
func retry(f func() error) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// applyState reads apply id, retrying through killed connections.
func (s *soak) applyState(ctx context.Context, id int64) *store.Apply {
	var a *store.Apply
	if err := retry(func() (err error) { a, err = s.st.Apply(ctx, id); return err }); err != nil {
		s.t.Fatal(err)
	}
	return a
}

// run drives every target through its waves (each wave's apply is created
// once the previous one is terminal), with `tern recover` processes and
// faults running beside, then stops the faults and lets everything settle.
func (s *soak) drive() {
	ctx, cancel := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	bg.Add(4)
	go func() { defer bg.Done(); s.recoverLoop(ctx) }()
	go func() { defer bg.Done(); s.faultLoop(ctx) }()
	go func() { defer bg.Done(); s.psFaultLoop(ctx) }()
	go func() { defer bg.Done(); s.deliveryLoop(ctx) }()

	var wg sync.WaitGroup
	for k := 0; k < len(s.lives); k++ {
		waves := s.size.Waves
		if k >= s.size.Targets {
			waves = s.size.PSWaves
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 1; n <= waves; n++ {
				s.scriptPSFaults(k, n)
				a := s.newApply(context.Background(), k, n)
				deadline := time.Now().Add(5 * time.Minute)
				for !s.applyState(context.Background(), a.ID).State.Terminal() {
					if time.Now().After(deadline) {
						s.t.Errorf("apply %d (target %d wave %d) not terminal after 5 minutes", a.ID, k, n)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
				if s.applyState(context.Background(), a.ID).State != store.Completed {
					return // a violation; later waves would only drift
				}
				s.mu.Lock()
				s.completed++
				s.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	cancel()
	bg.Wait()
	s.gh.SetLatency(nil)
	s.settle()
}

// recoverLoop keeps two `tern recover` processes running at any time.
func (s *soak) recoverLoop(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				s.recoverOnce()
			}
		}()
	}
}

// recoverOnce runs one `tern recover` process to its end. A pass that
// runs for more than two minutes is a violation: it is sent SIGQUIT, and
// the goroutine dump the Go runtime then prints is logged.
func (s *soak) recoverOnce() {
	p := s.start("recover", "--config", s.cfg)
	select {
	case <-p.done:
		if p.err != nil {
			// A pass may fail when its ledger connection is KILLed.
			s.count("recover exited non-zero")
		}
	case <-time.After(2 * time.Minute):
		p.cmd.Process.Signal(syscall.SIGQUIT)
		<-p.done
		s.t.Errorf("tern recover ran for more than 2 minutes; its goroutines:\n%s", tail(p.stderr.String(), 30000))
	}
}

func (s *soak) count(what string) {
	s.mu.Lock()
	s.faults[what]++
	s.mu.Unlock()
}

// faultLoop injects one fault at random every FaultEvery on average.
func (s *soak) faultLoop(ctx context.Context) {
	for {
		d := time.Duration(s.intn(int(2 * s.size.FaultEvery)))
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		if s.restartDue() {
			s.restartServer()
			continue
		}
		switch s.intn(6) {
		case 0:
			s.killServer()
		case 1:
			s.killConnections("target", `DB LIKE 'tern_test_e2e_soak%' AND COMMAND = 'Query' AND INFO LIKE '%ALTER TABLE%'`)
		case 2:
			s.killConnections("ledger", fmt.Sprintf("DB = '%s' AND ID <> CONNECTION_ID()", s.storeDB))
		case 3:
			s.holdMetadataLock()
		case 4, 5:
			route := []string{"/repos/acme/shop/check-runs", "/repos/acme/shop/check-runs/*", "/repos/acme/shop/issues/*/comments",
				"/repos/acme/shop/issues/comments/*"}[s.intn(4)]
			status := []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}[s.intn(3)]
			s.gh.FailNext("", route, status, 1+s.intn(2))
			s.count("github 5xx")
		}
	}
}

// psFaultLoop injects one PlanetScale fault every PSFaultEvery on average.
func (s *soak) psFaultLoop(ctx context.Context) {
	for len(s.ps) > 0 && s.size.PSFaultEvery > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(s.intn(int(2 * s.size.PSFaultEvery)))):
		}
		s.planetScaleFault()
	}
}

// planetScaleFault makes the next one or two calls of a random route of a
// random PlanetScale target answer 422 ("unprocessable", as the API does
// when it is busy) or 503 (its load balancer).
func (s *soak) planetScaleFault() {
	routes := []string{fakeps.RouteCreateBranch, fakeps.RouteGetBranch, fakeps.RouteCreatePassword,
		fakeps.RouteCreateDeployRequest, fakeps.RouteGetDeployRequest, fakeps.RouteListDeployRequests,
		fakeps.RouteDeploy, fakeps.RouteApplyDeploy, fakeps.RouteCloseDeployRequest, fakeps.RouteDeleteBranch,
		fakeps.RouteDeletePassword, fakeps.RouteDeployOperations}
	status := []int{http.StatusUnprocessableEntity, http.StatusServiceUnavailable}[s.intn(2)]
	ps, route := s.ps[s.intn(len(s.ps))], routes[s.intn(len(routes))]
	if ps.PendingFaults(route) > 0 {
		return // a burst, not an outage: a route called once an attempt would fail every attempt
	}
	ps.FailNext(route, status, 1)
	s.count(fmt.Sprintf("planetscale %d", status))
}

// scriptPSFaults arms the faults every mode gives PlanetScale target k's
// first wave: its Deploy answers 422 (a counted attempt, retried at once),
// and after two polls of its deploy request one answers 503 (the apply
// waits on a deploy request in an unknown state that may still land).
func (s *soak) scriptPSFaults(k, n int) {
	if k < s.size.Targets || n != 1 {
		return
	}
	ps := s.ps[k-s.size.Targets]
	ps.FailNext(fakeps.RouteDeploy, http.StatusUnprocessableEntity, 1)
	ps.FailAfter(fakeps.RouteGetDeployRequest, 2, http.StatusServiceUnavailable)
	s.count("planetscale 422")
	s.count("planetscale 503")
}

// total is how many applies the soak makes.
func (s *soak) total() int { return s.size.Targets*s.size.Waves + s.size.PSTargets*s.size.PSWaves }

// restartDue reports whether the applies completed have passed the next
// of the Restarts points spread over the run.
func (s *soak) restartDue() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarted < s.size.Restarts && s.completed >= (s.restarted+1)*s.total()/(s.size.Restarts+1)
}

// restartServer stops the soak's MariaDB, by SIGKILL and by SIGTERM in
// turn, and starts it again on the same datadir: every connection of every
// tern process dies, the report leases with them, and a copying ALTER
// under way is rolled back.
func (s *soak) restartServer() {
	s.mu.Lock()
	sig, name := syscall.SIGKILL, "SIGKILL"
	if s.restarted%2 == 1 {
		sig, name = syscall.SIGTERM, "SIGTERM"
	}
	s.restarted++
	s.mu.Unlock()
	began := time.Now()
	if err := s.db.restart(sig); err != nil {
		s.t.Errorf("restart MariaDB after %s: %v", name, err)
		return
	}
	s.t.Logf("MariaDB restarted after %s in %s", name, time.Since(began).Round(time.Millisecond))
	s.count("restart MariaDB (" + name + ")")
}

// killServer SIGKILLs a random `tern serve` (mid-DDL when one runs) and
// starts a new one in its place.
func (s *soak) killServer() {
	s.mu.Lock()
	i := s.intn(len(s.servers))
	old := s.servers[i]
	s.mu.Unlock()
	old.kill(s.t)
	s.mu.Lock()
	s.killed[old.cmd.Process.Pid] = true
	s.mu.Unlock()
	fresh := s.serve(s.cfg)
	s.mu.Lock()
	s.servers[i] = fresh
	s.mu.Unlock()
	s.count("SIGKILL tern serve")
}

// killConnections KILLs one random connection matching where.
func (s *soak) killConnections(what, where string) {
	var ids []int64
	rows, err := s.admin.Query("SELECT ID FROM information_schema.PROCESSLIST WHERE " + where)
	if err != nil {
		return
	}
	for rows.Next() {
		var id int64
		if rows.Scan(&id) == nil {
			ids = append(ids, id)
		}
	}
	rows.Close()
	if len(ids) == 0 {
		return
	}
	if _, err := s.admin.Exec(fmt.Sprintf("KILL CONNECTION %d", ids[s.intn(len(ids))])); err == nil {
		s.count("KILL " + what + " connection")
	}
}

// holdMetadataLock holds a random target table's metadata lock for a
// while, longer or shorter than the targets' lock_wait_timeout.
func (s *soak) holdMetadataLock() {
	k := s.intn(s.size.Targets) // a MySQL target: PlanetScale is not ours to lock
	tx, err := s.lives[k].Begin()
	if err != nil {
		return
	}
	if _, err := tx.Exec("SELECT id FROM " + tableOf(k) + " LIMIT 1"); err != nil {
		tx.Rollback()
		return
	}
	s.count("held metadata lock")
	time.Sleep(time.Duration(200+s.intn(1600)) * time.Millisecond)
	tx.Rollback()
}

// deliveryLoop sends `/tern status` comments to random servers; a
// delivery that got no 2xx (its server was killed) is sent again with the
// same id to another, as one redelivers from the App's settings.
func (s *soak) deliveryLoop(ctx context.Context) {
	for n := 0; ctx.Err() == nil; n++ {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(100+s.intn(400)) * time.Millisecond):
		}
		c := s.gh.AddComment(repoName, 1, "alice", "User", "/tern status")
		body, err := fakegithub.CommentPayload(repoName, 1, c.GetID(), "alice", "User", "/tern status", installation)
		if err != nil {
			s.t.Error(err)
			return
		}
		id := fmt.Sprintf("soak-%d", n)
		for attempt := 0; attempt < 20; attempt++ {
			s.mu.Lock()
			srv := s.servers[s.intn(len(s.servers))]
			s.mu.Unlock()
			resp, err := fakegithub.Deliver(context.Background(), srv.url+"/webhook", "issue_comment", id, webhookSecret, body)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					s.mu.Lock()
					s.deliveries = append(s.deliveries, id)
					s.mu.Unlock()
					break
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// settle runs recovery passes until nothing is due a report and no
// delivery is pending (the servers keep running their own loops).
func (s *soak) settle() {
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		s.recoverOnce()
		// A delivery claimed by a server that was killed stays leased
		// (bot's deliveryLease, 5 minutes) before another takes it: it is
		// stored, not lost, and the check below counts it apart.
		var due, pending int
		s.st.DB().QueryRow("SELECT COUNT(*) FROM tern_applies WHERE reported_version < version OR report_recheck_at IS NOT NULL").Scan(&due)
		if rows, err := s.st.DB().Query("SELECT lease_owner FROM tern_deliveries WHERE state = 'pending'"); err == nil {
			for rows.Next() {
				var owner string
				if rows.Scan(&owner) == nil && !s.killedOwner(owner) {
					pending++
				}
			}
			rows.Close()
		}
		if due == 0 && pending == 0 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Error("the ledger did not settle within 3 minutes of the last fault")
}

// check checks the invariants and returns the number of violations, each
// reported with t.Errorf.
func (s *soak) check() int {
	ctx := context.Background()
	violations := 0
	bad := func(format string, args ...any) {
		violations++
		s.t.Errorf(format, args...)
	}
	// Every apply completed, each target's live schema is its last wave's
	// desired one (a fresh plan has nothing to do).
	last := map[string]*store.Apply{}
	for _, a0 := range s.applies {
		a := s.applyState(ctx, a0.ID)
		if a.State != store.Completed {
			bad("apply %d (%s): %s after %d attempts: %s: %s", a.ID, a.Environment, a.State, a.Attempt, a.ErrorClass, a.LastError)
		}
		if l := last[a.Environment]; l == nil || a.ID > l.ID {
			last[a.Environment] = a
		}
	}
	for k := range s.lives {
		a := last[fmt.Sprintf("env%d", k)]
		if a == nil {
			continue
		}
		p, err := s.planner.Plan(ctx, s.desired[a.ID], s.lives[k], s.admin)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, st := range p.Statements {
			bad("target %d: live schema differs from apply %d's desired: %s", k, a.ID, st.DDL)
		}
	}
	// Every PlanetScale apply deployed once: one deploy request deployed
	// for each, none abandoned.
	for i, ps := range s.ps {
		env := fmt.Sprintf("env%d", s.size.Targets+i)
		n := 0
		for _, a := range s.applies {
			if a.Environment == env {
				n++
			}
		}
		if d := ps.Deploys(); d != n {
			bad("PlanetScale target %s: %d deploys for %d applies", env, d, n)
		}
		// One still open once deployed is fine: the stand-in moves only
		// when polled, and an apply whose change went live does not poll
		// on (PlanetScale would finish the cutover by itself). One left
		// open undeployed is a deploy request tern abandoned.
		for _, dr := range ps.OpenDeployRequests() {
			switch _, dep, _ := ps.DeployRequest(dr); dep {
			case "pending", "ready", "no_changes", "error":
				bad("PlanetScale target %s: deploy request %d left open undeployed (%s)", env, dr, dep)
			}
		}
	}
	// No DDL answered OK twice, none re-sent after its effect was live.
	sends := s.proxy.Sends()
	var texts []string
	for q := range sends {
		texts = append(texts, q)
	}
	sort.Strings(texts)
	for _, q := range texts {
		ok, dup := 0, 0
		for _, o := range sends[q] {
			if o.OK {
				ok++
			}
			switch o.ErrCode {
			case 1050, 1060, 1061: // table, column or key exists already
				dup++
			}
		}
		if ok > 1 || dup > 0 {
			bad("DDL executed more than once (%d OK, %d duplicate errors, %d sends): %s", ok, dup, len(sends[q]), q)
		}
	}
	// Every check run and apply comment equals the ledger's final state.
	for _, a0 := range s.applies {
		a := s.applyState(ctx, a0.ID)
		tasks, err := s.st.Tasks(ctx, a.ID)
		if err != nil {
			s.t.Fatal(err)
		}
		want := report.ApplyCheck(a, tasks)
		r := s.gh.LatestCheckRun(repoName, a.HeadSHA, want.Name)
		if r == nil || r.GetStatus() != want.Status || r.GetConclusion() != want.Conclusion || r.GetOutput().GetTitle() != want.Title {
			bad("apply %d: %s shows %s/%s %q, ledger says %s/%s %q", a.ID, want.Name,
				r.GetStatus(), r.GetConclusion(), r.GetOutput().GetTitle(), want.Status, want.Conclusion, want.Title)
		}
		if r := s.gh.LatestCheckRun(repoName, a.HeadSHA, report.AggregateName); a.State == store.Completed &&
			(r == nil || r.GetConclusion() != report.ConclusionSuccess) {
			bad("apply %d: tern check shows %s/%s %q, want success", a.ID, r.GetStatus(), r.GetConclusion(), r.GetOutput().GetTitle())
		}
		body := report.ApplyComment(a, tasks)
		comments, outcomes := 0, 0
		for _, c := range s.gh.Comments(repoName, a.PR) {
			switch {
			case strings.Contains(c.GetBody(), report.ApplyMarker(a.ID)):
				comments++
				if c.GetBody() != body {
					bad("apply %d: its comment differs from the ledger's state:\n%s\nwant:\n%s", a.ID, c.GetBody(), body)
				}
			case strings.Contains(c.GetBody(), report.OutcomeMarker(a.ID)):
				outcomes++
			}
		}
		wantOutcomes := 0
		if a.State.Terminal() && a.Attempt >= 2 {
			wantOutcomes = 1
		}
		if comments != 1 || outcomes != wantOutcomes {
			bad("apply %d: %d apply comments and %d outcome comments, want 1 and %d", a.ID, comments, outcomes, wantOutcomes)
		}
	}
	if re := s.gh.ReopenedRuns(); len(re) != 0 {
		bad("completed check runs reopened: %+v", re)
	}
	// No lost delivery: every acknowledged one is done, or stored and
	// leased to a server that was killed (it runs once the lease lapses).
	for _, id := range s.deliveries {
		var state, owner, lastErr string
		var attempts int
		var leased bool
		err := s.st.DB().QueryRow(`SELECT state, attempts, lease_owner, last_error, available_at > UTC_TIMESTAMP(6)
 FROM tern_deliveries WHERE id = ?`, id).Scan(&state, &attempts, &owner, &lastErr, &leased)
		switch {
		case err == nil && state == "done":
		case err == nil && state == "pending" && leased && s.killedOwner(owner):
			s.leasedDeliveries++
		default:
			bad("delivery %s acknowledged but %q after %d attempts (lease owner %q, last error %q) (%v)", id, state, attempts, owner, lastErr, err)
		}
	}
	return violations
}
