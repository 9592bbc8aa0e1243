package engine_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ternhq/tern/engine"
	"github.com/ternhq/tern/internal/testdb"
)

// provoke runs fn against a fresh database and returns the error it got.
type provoke func(t *testing.T, db *sql.DB, name string) error

func TestClassifyMySQL(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		err       provoke
		class     string
		retryable bool
	}{
		{"syntax", func(t *testing.T, db *sql.DB, _ string) error {
			_, err := db.Exec("SELEC 1")
			return err
		}, engine.ClassSyntax, false},
		{"duplicate key", func(t *testing.T, db *sql.DB, _ string) error {
			mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)")
			_, err := db.Exec("INSERT INTO t VALUES (1)")
			return err
		}, engine.ClassDuplicate, false},
		{"unique index over duplicate rows", func(t *testing.T, db *sql.DB, _ string) error {
			mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY, v INT)", "INSERT INTO t VALUES (1, 7), (2, 7)")
			_, err := db.Exec("ALTER TABLE t ADD UNIQUE KEY uv (v)")
			return err
		}, engine.ClassDuplicate, false},
		{"table exists", func(t *testing.T, db *sql.DB, _ string) error {
			mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
			_, err := db.Exec("CREATE TABLE t (id INT PRIMARY KEY)")
			return err
		}, engine.ClassDuplicate, false},
		{"missing table", func(t *testing.T, db *sql.DB, _ string) error {
			_, err := db.Exec("ALTER TABLE nope ADD COLUMN c INT")
			return err
		}, engine.ClassMissingObject, false},
		{"missing column", func(t *testing.T, db *sql.DB, _ string) error {
			mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
			_, err := db.Exec("ALTER TABLE t DROP COLUMN nope")
			return err
		}, engine.ClassMissingObject, false},
		{"data truncation", func(t *testing.T, db *sql.DB, _ string) error {
			mustExec(t, db, "SET SESSION sql_mode = 'STRICT_ALL_TABLES'", "CREATE TABLE t (id INT PRIMARY KEY, s VARCHAR(2))")
			_, err := db.Exec("INSERT INTO t VALUES (1, 'abc')")
			return err
		}, engine.ClassDataTruncation, false},
		{"permission", provokePermission, engine.ClassPermission, false},
		{"lock wait on a held metadata lock", provokeLockWait, engine.ClassLockWaitTimeout, true},
		{"deadlock", provokeDeadlock, engine.ClassDeadlock, true},
		// MariaDB drops the killed session: the driver sees an invalid connection.
		{"killed connection", provokeKill, engine.ClassConnectionLost, true},
		{"connection killed (MariaDB 1927)", constructed(1927), engine.ClassConnectionKilled, true},
		{"query interrupted", constructed(1317), engine.ClassConnectionKilled, true},
		{"read only transaction", func(t *testing.T, db *sql.DB, _ string) error {
			mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
			tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			_, err = tx.Exec("INSERT INTO t VALUES (1)")
			return err
		}, engine.ClassReadOnly, true},
		{"statement deadline", func(t *testing.T, db *sql.DB, _ string) error {
			c, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			_, err := db.ExecContext(c, "SELECT SLEEP(10)")
			return err
		}, engine.ClassTimeout, true},
		{"connection refused", func(t *testing.T, _ *sql.DB, _ string) error {
			db, err := sql.Open("mysql", "root@tcp(127.0.0.1:1)/")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			return db.Ping()
		}, engine.ClassConnectionLost, true},
		// Not provokable on one shared server: constructed.
		{"server read_only (failover)", constructed(1290), engine.ClassReadOnly, true},
		{"super_read_only", constructed(1836), engine.ClassReadOnly, true},
		{"too many connections", constructed(1040), engine.ClassTooManyConnections, true},
		{"server shutdown", constructed(1053), engine.ClassServerShutdown, true},
		{"client 2002", constructed(2002), engine.ClassConnectionLost, true},
		{"client 2003", constructed(2003), engine.ClassConnectionLost, true},
		{"client 2006 gone away", constructed(2006), engine.ClassConnectionLost, true},
		{"client 2013 lost", constructed(2013), engine.ClassConnectionLost, true},
		{"syntax 1149", constructed(1149), engine.ClassSyntax, false},
		{"duplicate 1826", constructed(1826), engine.ClassDuplicate, false},
		{"unknown number", constructed(4242), "unknown_4242", false},
		{"bad conn", plain(driver.ErrBadConn), engine.ClassConnectionLost, true},
		{"invalid conn", plain(mysql.ErrInvalidConn), engine.ClassConnectionLost, true},
		{"eof", plain(io.EOF), engine.ClassConnectionLost, true},
		{"unexpected eof", plain(io.ErrUnexpectedEOF), engine.ClassConnectionLost, true},
		{"unknown", plain(errors.New("something odd")), engine.ClassUnknown, false},
		{"wrapped", plain(fmt.Errorf("alter t: %w", &mysql.MySQLError{Number: 1213})), engine.ClassDeadlock, true},
		{"already classified", plain(fmt.Errorf("x: %w", &engine.PermanentError{Class: "drift", Err: io.EOF})), "drift", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, name := testdb.Open(t, "engine")
			raw := tt.err(t, db, name)
			if raw == nil {
				t.Fatal("provocation returned no error")
			}
			err := engine.ClassifyMySQL(raw)
			if got := engine.Class(err); got != tt.class {
				t.Errorf("Class(%v) = %q, want %q", raw, got, tt.class)
			}
			if got := engine.Class(raw); got != tt.class {
				t.Errorf("Class(raw %v) = %q, want %q", raw, got, tt.class)
			}
			if got := engine.IsRetryable(err); got != tt.retryable {
				t.Errorf("IsRetryable(%v) = %v, want %v", raw, got, tt.retryable)
			}
			if !errors.Is(err, raw) {
				t.Errorf("classified error does not wrap the original")
			}
			if engine.IsRetryable(fmt.Errorf("task 3: %w", &engine.TaskError{Seq: 3, Err: err})) != tt.retryable {
				t.Errorf("IsRetryable does not look through TaskError and wrapping")
			}
		})
	}
}

func TestClassNil(t *testing.T) {
	if engine.ClassifyMySQL(nil) != nil || engine.Class(nil) != "" || engine.IsRetryable(nil) {
		t.Fatal("nil must stay nil")
	}
}

func constructed(n uint16) provoke {
	return plain(&mysql.MySQLError{Number: n, Message: "constructed"})
}

func plain(err error) provoke {
	return func(*testing.T, *sql.DB, string) error { return err }
}

func mustExec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// conn takes one dedicated connection, closed when the test ends.
func conn(t *testing.T, db *sql.DB) *sql.Conn {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func connExec(t *testing.T, c *sql.Conn, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := c.ExecContext(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func connID(t *testing.T, c *sql.Conn) int64 {
	t.Helper()
	var id int64
	if err := c.QueryRowContext(context.Background(), "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// provokeLockWait holds a metadata lock (an open transaction that read
// the table) while another session ALTERs it with lock_wait_timeout=1.
func provokeLockWait(t *testing.T, db *sql.DB, _ string) error {
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	holder := conn(t, db)
	connExec(t, holder, "BEGIN", "SELECT * FROM t")
	alter := conn(t, db)
	connExec(t, alter, "SET SESSION lock_wait_timeout = 1")
	_, err := alter.ExecContext(context.Background(), "ALTER TABLE t ADD COLUMN c INT")
	connExec(t, holder, "ROLLBACK")
	return err
}

// provokeDeadlock makes two transactions wait for each other's row.
func provokeDeadlock(t *testing.T, db *sql.DB, _ string) error {
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY, v INT)", "INSERT INTO t VALUES (1, 0), (2, 0)")
	a, b := conn(t, db), conn(t, db)
	connExec(t, a, "SET SESSION innodb_lock_wait_timeout = 30", "BEGIN", "UPDATE t SET v = 1 WHERE id = 1")
	connExec(t, b, "SET SESSION innodb_lock_wait_timeout = 30", "BEGIN", "UPDATE t SET v = 1 WHERE id = 2")
	errs := make(chan error, 2)
	go func() {
		_, err := a.ExecContext(context.Background(), "UPDATE t SET v = 2 WHERE id = 2")
		errs <- err
	}()
	go func() {
		_, err := b.ExecContext(context.Background(), "UPDATE t SET v = 2 WHERE id = 1")
		errs <- err
	}()
	// The victim fails at once; its rollback lets the other finish.
	e1, e2 := <-errs, <-errs
	connExec(t, a, "ROLLBACK")
	connExec(t, b, "ROLLBACK")
	if e1 != nil {
		return e1
	}
	return e2
}

// provokeKill kills a session while it waits on a held metadata lock.
func provokeKill(t *testing.T, db *sql.DB, _ string) error {
	mustExec(t, db, "CREATE TABLE t (id INT PRIMARY KEY)")
	holder := conn(t, db)
	connExec(t, holder, "BEGIN", "SELECT * FROM t")
	victim := conn(t, db)
	connExec(t, victim, "SET SESSION lock_wait_timeout = 600")
	id := connID(t, victim)
	done := make(chan error, 1)
	go func() {
		_, err := victim.ExecContext(context.Background(), "ALTER TABLE t ADD COLUMN c INT")
		done <- err
	}()
	waitForState(t, db, id, "Waiting for table metadata lock")
	mustExec(t, db, fmt.Sprintf("KILL %d", id))
	err := <-done
	connExec(t, holder, "ROLLBACK")
	return err
}

// waitForState polls the process list until session id shows state.
func waitForState(t *testing.T, db *sql.DB, id int64, state string) {
	t.Helper()
	for i := 0; ; i++ {
		var n int
		err := db.QueryRow("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ? AND STATE = ?", id, state).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if i > 3000 {
			t.Fatalf("session %d never reached state %q", id, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// provokePermission connects as a user with no grants.
func provokePermission(t *testing.T, db *sql.DB, name string) error {
	b := make([]byte, 4)
	rand.Read(b)
	user := "tern_nogrant_" + hex.EncodeToString(b)
	mustExec(t, db, fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY 'pw'", user))
	t.Cleanup(func() { db.Exec(fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", user)) })
	cfg := testdb.Config(t)
	cfg.User, cfg.Passwd = user, "pw"
	udb, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer udb.Close()
	_, err = udb.Exec("CREATE TABLE `" + name + "`.t (id INT)")
	return err
}
