// Package localdb finds a MySQL-compatible server for `tern demo`, or starts
// a private MariaDB the way the test script does (installing it with apt
// when it is missing and tern runs as root).
package localdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Server is a reachable server.
type Server struct {
	// DSN has no database name.
	DSN string
	// Started is true when this process started the server; Stop ends it.
	Started bool
	cmd     *exec.Cmd
	dir     string
}

// Stop ends a server this process started and removes its data.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	_ = os.RemoveAll(s.dir)
}

// Ensure returns the server at dsn when it answers; otherwise it starts a
// private MariaDB on a free loopback port. Progress goes to log.
func Ensure(ctx context.Context, dsn string, log io.Writer) (*Server, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse DSN: %w", err)
	}
	cfg.DBName = ""
	if answers(ctx, cfg.FormatDSN()) {
		return &Server{DSN: cfg.FormatDSN()}, nil
	}
	fmt.Fprintf(log, "no MySQL server answers at %s; starting a private MariaDB\n", cfg.Addr)
	bin, err := mariadbd(ctx, log)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tern-demo-mariadb-")
	if err != nil {
		return nil, err
	}
	install := exec.CommandContext(ctx, "mariadb-install-db", "--no-defaults", "--user=root", "--datadir="+dir,
		"--auth-root-authentication-method=normal", "--skip-test-db")
	if out, err := install.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("mariadb-install-db: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	cmd := exec.Command(bin, "--no-defaults", "--user=root", "--datadir="+dir, "--socket="+filepath.Join(dir, "sock"),
		"--port="+strconv.Itoa(port), "--bind-address=127.0.0.1",
		"--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci")
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start mariadbd: %w", err)
	}
	s := &Server{DSN: fmt.Sprintf("root@tcp(127.0.0.1:%d)/", port), Started: true, cmd: cmd, dir: dir}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if answers(ctx, s.DSN) {
			return s, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.Stop()
	return nil, errors.New("the private MariaDB did not start within 30s")
}

func answers(ctx context.Context, dsn string) bool {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return false
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return db.PingContext(ctx) == nil
}

func mariadbd(ctx context.Context, log io.Writer) (string, error) {
	for _, p := range []string{"mariadbd", "/usr/sbin/mariadbd"} {
		if path, err := exec.LookPath(p); err == nil {
			return path, nil
		}
	}
	if os.Geteuid() != 0 {
		return "", errors.New("MariaDB is not installed: install mariadb-server, or point TERN_DEMO_DSN at a MySQL 8 / MariaDB 10.6+ server")
	}
	fmt.Fprintln(log, "installing mariadb-server with apt-get (about 20 s)")
	for _, args := range [][]string{{"update", "-qq"}, {"install", "-y", "-qq", "mariadb-server", "mariadb-client"}} {
		c := exec.CommandContext(ctx, "apt-get", args...)
		c.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := c.CombinedOutput(); err != nil {
			return "", fmt.Errorf("apt-get %s: %w: %s", args[0], err, out)
		}
	}
	return exec.LookPath("/usr/sbin/mariadbd")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
