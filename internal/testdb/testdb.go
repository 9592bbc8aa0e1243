// Package testdb gives tests their own uniquely named database on the MySQL
// or MariaDB server at TERN_TEST_DSN (default root@tcp(127.0.0.1:3306)/), and
// drops it when the test ends, so packages can run in parallel.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// DefaultDSN is used when TERN_TEST_DSN is unset.
const DefaultDSN = "root@tcp(127.0.0.1:3306)/"

// ServerDSN returns the test server's DSN without a database name.
func ServerDSN() string {
	if v := os.Getenv("TERN_TEST_DSN"); v != "" {
		return v
	}
	return DefaultDSN
}

// Config returns the parsed server DSN, with parseTime on.
func Config(tb testing.TB) *mysql.Config {
	tb.Helper()
	cfg, err := mysql.ParseDSN(ServerDSN())
	if err != nil {
		tb.Fatalf("TERN_TEST_DSN: %v", err)
	}
	cfg.ParseTime = true
	cfg.DBName = ""
	return cfg
}

// Server opens a pool on the test server with no default database. It is
// closed when the test ends.
func Server(tb testing.TB) *sql.DB {
	tb.Helper()
	db, err := sql.Open("mysql", Config(tb).FormatDSN())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		tb.Fatalf("test MySQL server at TERN_TEST_DSN unreachable (run ./scripts/test, which starts one): %v", err)
	}
	return db
}

// New creates a fresh database named tern_test_<prefix>_<random> and
// returns its DSN (parseTime on). The database is dropped when the test
// ends.
func New(tb testing.TB, prefix string) (dsn, name string) {
	tb.Helper()
	srv := Server(tb)
	b := make([]byte, 5)
	rand.Read(b)
	name = "tern_test_" + strings.ReplaceAll(prefix, "-", "_") + "_" + hex.EncodeToString(b)
	if _, err := srv.Exec("CREATE DATABASE `" + name + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		db, err := sql.Open("mysql", Config(tb).FormatDSN())
		if err != nil {
			return
		}
		defer db.Close()
		db.Exec("DROP DATABASE IF EXISTS `" + name + "`")
	})
	cfg := Config(tb)
	cfg.DBName = name
	return cfg.FormatDSN(), name
}

// Open is New plus a pool on the new database, closed when the test ends.
func Open(tb testing.TB, prefix string) (*sql.DB, string) {
	tb.Helper()
	dsn, name := New(tb, prefix)
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db, name
}

// WaitForMetadataLockWait polls the process list until a session in
// database name runs an ALTER TABLE that waits for a metadata lock, and
// returns its connection id (to KILL it, say). It fails the test after
// about 30 s.
func WaitForMetadataLockWait(tb testing.TB, db *sql.DB, name string) int64 {
	tb.Helper()
	for i := 0; ; i++ {
		var id int64
		err := db.QueryRow(`SELECT ID FROM information_schema.PROCESSLIST
			WHERE DB = ? AND INFO LIKE '%ALTER TABLE%' AND STATE = 'Waiting for table metadata lock'`, name).Scan(&id)
		if err == nil {
			return id
		}
		if !errors.Is(err, sql.ErrNoRows) {
			tb.Fatal(err)
		}
		if i > 3000 {
			tb.Fatal("no ALTER TABLE ever waited on the metadata lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
