package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// privateMariaDB is a mariadbd of the test's own (own datadir, port and
// socket, the shape of scripts/ensure-mariadb.sh), so that the soak can
// stop and restart it without touching the shared server other tests use.
type privateMariaDB struct {
	t    *testing.T
	bin  string
	dir  string // datadir
	port int
	args []string

	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	log  *bytes.Buffer
}

// DSN is the root DSN of the server, no database.
func (m *privateMariaDB) DSN() string { return fmt.Sprintf("root@tcp(127.0.0.1:%d)/", m.port) }

// lookMariaDB finds a program of the MariaDB server package.
func lookMariaDB(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	t.Fatalf("%s not found: the soak runs a MariaDB server of its own; ./scripts/test installs it (or: apt-get install mariadb-server)", name)
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// startPrivateMariaDB makes a datadir under the test's temp dir and starts
// mariadbd on a free port; the server is stopped when the test ends.
// maxConn is its max_connections.
func startPrivateMariaDB(t *testing.T, maxConn int) *privateMariaDB {
	t.Helper()
	install := lookMariaDB(t, "mariadb-install-db")
	m := &privateMariaDB{t: t, bin: lookMariaDB(t, "mariadbd"), dir: filepath.Join(t.TempDir(), "data")}
	out, err := exec.Command(install, "--no-defaults", "--user=root", "--datadir="+m.dir,
		"--auth-root-authentication-method=normal", "--skip-test-db").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	m.args = []string{"--no-defaults", "--user=root", "--datadir=" + m.dir, "--socket=" + m.dir + ".sock",
		fmt.Sprintf("--port=%d", m.port), "--bind-address=127.0.0.1", "--skip-name-resolve",
		"--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci",
		fmt.Sprintf("--max-connections=%d", maxConn),
		// The shared disk: group commits; a killed mariadbd loses nothing
		// (the OS still has the log), only a machine crash would.
		"--innodb-flush-log-at-trx-commit=2", "--innodb-buffer-pool-size=256M",
		"--log-error=" + m.dir + ".err"}
	if err := m.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.stop(syscall.SIGTERM) })
	return m
}

// start starts mariadbd on the datadir and waits until it answers.
func (m *privateMariaDB) start() error {
	m.log = &bytes.Buffer{}
	m.cmd = exec.Command(m.bin, m.args...)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		return fmt.Errorf("start mariadbd: %w", err)
	}
	m.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(m.cmd, m.done)
	db, err := sql.Open("mysql", m.DSN())
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := db.PingContext(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-m.done:
			errLog, _ := os.ReadFile(m.dir + ".err")
			return fmt.Errorf("mariadbd exited at start: %s\n%s", m.log, tail(string(errLog), 4000))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("mariadbd on port %d did not answer within 2 minutes: %w", m.port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends sig (SIGTERM: a clean shutdown; SIGKILL: a crash) to mariadbd
// and waits for it to exit.
func (m *privateMariaDB) stop(sig syscall.Signal) {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	select {
	case <-m.done:
		return
	default:
	}
	m.cmd.Process.Signal(sig)
	select {
	case <-m.done:
	case <-time.After(2 * time.Minute):
		m.cmd.Process.Kill()
		<-m.done
	}
}

// restart stops mariadbd with sig and starts it again on the same datadir,
// port and socket (after a SIGKILL, InnoDB recovers the datadir first).
func (m *privateMariaDB) restart(sig syscall.Signal) error {
	m.stop(sig)
	return m.start()
}
