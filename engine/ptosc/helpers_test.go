package ptosc

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/internal/enginetest"
	"github.com/ternhq/tern/internal/testdb"
)

// needTool fails the test when pt-online-schema-change is missing: the
// test script installs it.
func needTool(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(Tool); err != nil {
		t.Fatalf("%s is not installed: run ./scripts/ensure-percona-toolkit.sh (./scripts/test runs it)", Tool)
	}
}

// recorder keeps what an engine records.
type recorder = enginetest.Recorder

// target is a fresh database reached as a user of its own with a
// password, the way a real target is.
type target struct {
	db       *sql.DB // as root, on the database
	name     string
	password string
	dsn      string // the user's DSN, naming no database
}

// newTarget makes a database and a user with a random password that may
// do everything tern and the tool need in it.
func newTarget(t *testing.T) *target {
	t.Helper()
	needTool(t)
	db, name := testdb.Open(t, "ptosc")
	b := make([]byte, 8)
	rand.Read(b)
	user := "tern_ptosc_" + hex.EncodeToString(b[:4])
	password := "pw-" + hex.EncodeToString(b)
	srv := testdb.Server(t)
	for _, s := range []string{
		"CREATE USER '" + user + "'@'%' IDENTIFIED BY '" + password + "'",
		"GRANT ALL ON `" + name + "`.* TO '" + user + "'@'%'",
	} {
		if _, err := srv.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	t.Cleanup(func() { srv.Exec("DROP USER IF EXISTS '" + user + "'@'%'") })
	cfg := testdb.Config(t)
	cfg.User, cfg.Passwd = user, password
	return &target{db: db, name: name, password: password, dsn: cfg.FormatDSN()}
}

// engine returns an engine on the target.
func (tg *target) engine(t *testing.T, lockWait time.Duration, opts Options) *Engine {
	t.Helper()
	e, err := New(config.MySQL{DSN: tg.dsn, LockWaitTimeout: config.Duration(lockWait), ProgressInterval: config.Duration(time.Millisecond)}, tg.name, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// leftovers lists the triggers and _tern_ tables in the target's schema.
func (tg *target) leftovers(t *testing.T) string {
	t.Helper()
	var out []string
	for _, q := range []string{
		"SELECT CONCAT('trigger ', TRIGGER_NAME) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()",
		"SELECT CONCAT('table ', TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE '\\_tern\\_%'",
	} {
		rows, err := tg.db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		rows.Close()
	}
	return strings.Join(out, ", ")
}

// columnType returns the column's COLUMN_TYPE.
func (tg *target) columnType(t *testing.T, table, column string) string {
	t.Helper()
	var typ string
	if err := tg.db.QueryRow("SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = ?", table, column).Scan(&typ); err != nil {
		t.Fatal(err)
	}
	return typ
}

// waitFor polls cond until it holds, failing the test after about a
// minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 6000 {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// copyWaiting returns the connection id of a statement copying into a
// _tern_ shadow table that waits for a row lock, or 0.
func (tg *target) copyWaiting(t *testing.T) int64 {
	t.Helper()
	var id int64
	err := tg.db.QueryRow(`SELECT ID FROM information_schema.PROCESSLIST
 WHERE DB = DATABASE() AND INFO LIKE '%INTO ` + "`" + `%` + "`" + `.` + "`" + `\_tern\_%\_new\_%' AND ID <> CONNECTION_ID() LIMIT 1`).Scan(&id)
	if err == sql.ErrNoRows {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// toolArgv returns the command lines of running pt-online-schema-change
// processes, as /proc shows them to every local user.
func toolArgv(t *testing.T) []string {
	t.Helper()
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var out []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), Tool) || !strings.Contains(string(b), "--alter") {
			continue
		}
		out = append(out, strings.ReplaceAll(string(b), "\x00", " "))
	}
	return out
}

// holdLastRow waits until the tool's triggers are on the table (before,
// an open transaction on the table would hold them up), then locks the
// table's last row FOR UPDATE in a transaction of its own, so that the
// copy, which goes in primary-key order, stalls at its last chunk until
// the returned release is called (or the tool gives up on it, after about
// ten seconds).
func (tg *target) holdLastRow(t *testing.T, table string) (release func()) {
	t.Helper()
	waitFor(t, "the tool's triggers", func() bool {
		var n int
		if err := tg.db.QueryRow("SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME LIKE 'pt\\_osc\\_%'").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 3
	})
	tx, err := tg.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("SELECT id FROM `" + table + "` WHERE id = (SELECT MAX(id) FROM `" + table + "`) FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { tx.Rollback() }) }
	t.Cleanup(release)
	return release
}

// renameWaiting reports whether a RENAME TABLE waits for a metadata lock
// in the target's schema.
func (tg *target) renameWaiting(t *testing.T) bool {
	t.Helper()
	var n int
	if err := tg.db.QueryRow(`SELECT COUNT(*) FROM information_schema.PROCESSLIST
 WHERE DB = DATABASE() AND INFO LIKE 'RENAME TABLE%' AND STATE LIKE 'Waiting for table metadata lock%'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}
