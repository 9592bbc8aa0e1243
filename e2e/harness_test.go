package e2e

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/store"
)

const (
	repoName      = "acme/shop"
	installation  = int64(77)
	webhookSecret = "e2e-webhook-secret"
)

// world is one test's surroundings: a ledger database, the fake GitHub the
// tern processes reach over loopback, and the environment their config's
// ${VAR}s are read from.
type world struct {
	t        *testing.T
	gh       *fakegithub.Server
	storeDSN string
	st       *store.Store // the test's own view of the ledger
	env      map[string]string
}

// newWorld makes a fresh ledger database (migrated) and fake GitHub with an
// installation on repoName.
func newWorld(t *testing.T) *world {
	t.Helper()
	storeDSN, _ := testdb.New(t, "e2e_store")
	gh, err := fakegithub.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gh.Close)
	gh.AddInstallation(repoName, installation)
	ctx := context.Background()
	st, err := store.Open(ctx, storeDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return &world{
		t: t, gh: gh, storeDSN: storeDSN, st: st,
		env: map[string]string{
			"TERN_STORE_DSN":          storeDSN,
			"TERN_GITHUB_APP_ID":      strconv.FormatInt(gh.AppID, 10),
			"TERN_GITHUB_PRIVATE_KEY": string(gh.PrivateKeyPEM),
			"TERN_WEBHOOK_SECRET":     webhookSecret,
		},
	}
}

// config writes a server config to a temp file and returns its path. The
// store and GitHub App keys come from the environment as ${VAR}s (the
// private key is a multi-line PEM); targets and recovery are YAML bodies
// indented by the caller under their keys.
func (w *world) config(targets, recovery string) string {
	w.t.Helper()
	return w.configAt(w.gh.URL, targets, recovery)
}

// configAt is config with github.api_url set to apiURL (a proxy in front of
// the fake GitHub, say).
func (w *world) configAt(apiURL, targets, recovery string) string {
	w.t.Helper()
	body := fmt.Sprintf(`store:
  dsn: ${TERN_STORE_DSN}
github:
  api_url: %s
  app_id: ${TERN_GITHUB_APP_ID}
  private_key: ${TERN_GITHUB_PRIVATE_KEY}
  webhook_secret: ${TERN_WEBHOOK_SECRET}
targets:
%s
recovery:
%s
`, apiURL, targets, recovery)
	return writeFile(w.t, "tern-server.yaml", body)
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// mysqlTarget is one target line of a config's targets list.
func mysqlTarget(database, env, dsn, lockWait string) string {
	return fmt.Sprintf("  - {repository: %s, database: %s, environment: %s, mysql: {dsn: %q, lock_wait_timeout: %s}}",
		repoName, database, env, dsn, lockWait)
}

// liveDSN returns the DSN of database name on the test server.
func liveDSN(t *testing.T, name string) string {
	c := testdb.Config(t)
	c.DBName = name
	return c.FormatDSN()
}

// environ is the environment of a tern process: this process's, minus
// anything that would change tern's behaviour behind the test's back, plus
// the world's variables and extra ("K=V").
func (w *world) environ(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "TERN_CONFIG", "GITHUB_ACTIONS", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY":
			continue
		}
		if _, ok := w.env[k]; ok {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range w.env {
		out = append(out, k+"="+v)
	}
	return append(out, extra...)
}

// syncBuffer is a bytes buffer safe for a process writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

// proc is a running tern process.
type proc struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	err            error // Wait's error, valid once done is closed
}

// start starts tern with args; the test's cleanup kills it if it still
// runs, and logs its output when the test failed.
func (w *world) start(args ...string) *proc {
	w.t.Helper()
	return w.startEnv(nil, args...)
}

// startEnv is start with extra environment variables ("K=V").
func (w *world) startEnv(extra []string, args ...string) *proc {
	w.t.Helper()
	p := &proc{name: "tern " + strings.Join(args, " "), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(ternBin, args...)
	p.cmd.Env = w.environ(extra...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		w.t.Fatalf("start %s: %v", p.name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	w.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if w.t.Failed() {
			w.t.Logf("%s (pid %d) stdout:\n%s\nstderr:\n%s", p.name, p.cmd.Process.Pid, p.stdout.String(), tail(p.stderr.String(), 8000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

// wait waits for the process to exit and returns its exit code (-1 when
// it was killed by a signal).
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(90 * time.Second):
		t.Fatalf("%s did not exit", p.name)
	}
	var ee *exec.ExitError
	switch {
	case p.err == nil:
		return 0
	case errors.As(p.err, &ee):
		return ee.ExitCode()
	default:
		t.Fatalf("%s: %v", p.name, p.err)
		return -1
	}
}

// run runs tern to its end and returns its output and exit code.
func (w *world) run(args ...string) (stdout, stderr string, code int) {
	w.t.Helper()
	p := w.start(args...)
	code = p.wait(w.t)
	return p.stdout.String(), p.stderr.String(), code
}

// summary is `tern recover`'s summary line.
type summary struct {
	Recovered, Retrying, Failed, Rescued int
}

var summaryLine = regexp.MustCompile(`(?m)^recovered=(\d+) retrying=(\d+) failed=(\d+) rescued=(\d+)$`)

// parseSummary finds the summary line in stdout; it fails the test when
// there is not exactly one.
func parseSummary(t *testing.T, stdout string) summary {
	t.Helper()
	m := summaryLine.FindAllStringSubmatch(stdout, -1)
	if len(m) != 1 {
		t.Fatalf("want one summary line in tern recover's output, found %d:\n%s", len(m), stdout)
	}
	n := func(i int) int { v, _ := strconv.Atoi(m[0][i]); return v }
	return summary{Recovered: n(1), Retrying: n(2), Failed: n(3), Rescued: n(4)}
}

// recoverPass runs one `tern recover` pass that must exit 0, and returns its
// stdout and summary.
func (w *world) recoverPass(cfg string, args ...string) (string, summary) {
	w.t.Helper()
	stdout, stderr, code := w.run(append([]string{"recover", "--config", cfg}, args...)...)
	if code != 0 {
		w.t.Fatalf("tern recover exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, tail(stderr, 8000))
	}
	w.noSecrets("tern recover", stdout+stderr)
	return stdout, parseSummary(w.t, stdout)
}

// noSecrets fails the test when out holds the App's private key or the
// webhook secret. GitHub Actions' ::add-mask:: commands, which tell the
// runner what to hide, are the one place a secret belongs.
func (w *world) noSecrets(what, out string) {
	w.t.Helper()
	var kept []string
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "::add-mask::") {
			kept = append(kept, l)
		}
	}
	out = strings.Join(kept, "\n")
	key := strings.TrimSpace(string(w.gh.PrivateKeyPEM))
	lines := strings.Split(key, "\n")
	body := lines[len(lines)/2] // a line of the key's base64 body
	if strings.Contains(out, body) {
		w.t.Errorf("%s printed the GitHub App's private key", what)
	}
	if strings.Contains(out, webhookSecret) {
		w.t.Errorf("%s printed the webhook secret", what)
	}
}

// server is a running `tern serve`.
type server struct {
	*proc
	url string // http://127.0.0.1:PORT
}

// serve starts `tern serve` on a free loopback port and waits until
// /healthz answers 200.
func (w *world) serve(cfg string) *server {
	w.t.Helper()
	p := w.start("serve", "--config", cfg, "--listen", "127.0.0.1:0")
	var addr string
	waitFor(w.t, "tern serve to log its address", func() bool {
		select {
		case <-p.done:
			w.t.Fatalf("tern serve exited early: %v\n%s", p.err, p.stderr.String())
		default:
		}
		addr = servingAddr(p.stderr.String())
		return addr != ""
	})
	s := &server{proc: p, url: "http://" + addr}
	waitFor(w.t, "tern serve /healthz", func() bool {
		resp, err := http.Get(s.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return s
}

// servingAddr finds the address in serve's JSON "serving" log line.
func servingAddr(log string) string {
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "serving" {
			return rec.Addr
		}
	}
	return ""
}

// deliver sends a signed webhook delivery to the server and returns its
// delivery id; the server must answer 2xx.
func (w *world) deliver(s *server, event string, body []byte) string {
	w.t.Helper()
	id := fmt.Sprintf("e2e-%d", time.Now().UnixNano())
	resp, err := fakegithub.Deliver(context.Background(), s.url+"/webhook", event, id, webhookSecret, body)
	if err != nil {
		w.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		w.t.Fatalf("delivery %s of %s: %d %s", id, event, resp.StatusCode, b)
	}
	return id
}

// waitDelivered waits until the server processed delivery id, and fails
// the test when processing failed.
func (w *world) waitDelivered(id string) {
	w.t.Helper()
	waitFor(w.t, "delivery "+id+" processed", func() bool {
		var state, lastErr string
		err := w.st.DB().QueryRow("SELECT state, last_error FROM tern_deliveries WHERE id = ?", id).Scan(&state, &lastErr)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && state == "pending") {
			return false
		}
		if err != nil {
			w.t.Fatal(err)
		}
		if lastErr != "" {
			w.t.Fatalf("delivery %s failed: %s", id, lastErr)
		}
		return true
	})
}

// waitFor polls cond until it holds. The deadline only stops a hung test;
// it asserts nothing about speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// kill sends SIGKILL to the process and waits for it to die.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", p.name, err)
	}
	if code := p.wait(t); code != -1 {
		t.Fatalf("%s exited %d, want killed by SIGKILL", p.name, code)
	}
}

// columnCount counts columns named col of table in db's schema.
func columnCount(t *testing.T, db *sql.DB, table, col string) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM information_schema.columns
		WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?`, table, col).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
