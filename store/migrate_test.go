package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ternhq/tern/internal/testdb"
)

var ledgerTables = []string{"tern_applies", "tern_deliveries", "tern_events", "tern_github_refs", "tern_locks",
	"tern_plans", "tern_schema_migrations", "tern_tasks"}

func tables(tb testing.TB, s *Store) string {
	tb.Helper()
	rows, err := s.DB().Query(`SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name`)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		names = append(names, n)
	}
	return strings.Join(names, " ")
}

func migrationRows(tb testing.TB, s *Store) int {
	tb.Helper()
	var n int
	if err := s.DB().QueryRow(`SELECT COUNT(*) FROM tern_schema_migrations`).Scan(&n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	dsn, _ := testdb.New(t, "migrate")
	s := openStore(t, dsn)
	latest := LatestVersion()
	if latest < 1 {
		t.Fatalf("LatestVersion = %d", latest)
	}

	t.Run("from empty", func(t *testing.T) {
		if v, err := s.SchemaVersion(ctx); err != nil || v != 0 {
			t.Fatalf("version of an empty database = %d, %v", v, err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if v, err := s.SchemaVersion(ctx); err != nil || v != latest {
			t.Fatalf("version = %d, %v; want %d", v, err, latest)
		}
		if got, want := tables(t, s), strings.Join(ledgerTables, " "); got != want {
			t.Fatalf("tables:\n got %s\nwant %s", got, want)
		}
	})
	t.Run("re-run is a no-op", func(t *testing.T) {
		var before string
		s.DB().QueryRow(`SELECT GROUP_CONCAT(CONCAT(version, '@', applied_at)) FROM tern_schema_migrations`).Scan(&before)
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		var after string
		s.DB().QueryRow(`SELECT GROUP_CONCAT(CONCAT(version, '@', applied_at)) FROM tern_schema_migrations`).Scan(&after)
		if before != after || migrationRows(t, s) != latest {
			t.Fatalf("re-run changed tern_schema_migrations: %q -> %q", before, after)
		}
	})
	t.Run("newer database refused", func(t *testing.T) {
		if _, err := s.DB().Exec(`INSERT INTO tern_schema_migrations (version, name, applied_at) VALUES (?, 'future', UTC_TIMESTAMP(6))`, latest+1); err != nil {
			t.Fatal(err)
		}
		err := s.Migrate(ctx)
		want := fmt.Sprintf("store schema is at version %d but this tern knows up to %d: upgrade tern", latest+1, latest)
		var tn *SchemaTooNewError
		if !errors.As(err, &tn) || err.Error() != want {
			t.Fatalf("Migrate = %v, want %q", err, want)
		}
	})
}

func TestMigrateConcurrentStores(t *testing.T) {
	dsn, _ := testdb.New(t, "migrate")
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		s := openStore(t, dsn)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = s.Migrate(context.Background())
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migrator %d: %v", i, err)
		}
	}
	s := openStore(t, dsn)
	if got := migrationRows(t, s); got != LatestVersion() {
		t.Fatalf("%d migration rows, want %d", got, LatestVersion())
	}
}

// TestMigrateProcesses runs 4 `tern migrate` processes at once on an empty
// database.
func TestMigrateProcesses(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "tern")
	build := exec.Command("go", "build", "-o", bin, "github.com/ternhq/tern/cmd/tern")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/tern: %v\n%s", err, out)
	}
	dsn, _ := testdb.New(t, "migrate")
	cfg := filepath.Join(dir, "tern.yaml")
	// The DSN comes through the environment, as in production.
	if err := os.WriteFile(cfg, []byte("store:\n  dsn: ${TERN_STORE_DSN}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const n = 4
	type result struct {
		out, errOut string
		err         error
	}
	res := make([]result, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cmd := exec.Command(bin, "migrate", "--config", cfg)
			cmd.Env = append(os.Environ(), "TERN_STORE_DSN="+dsn)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			res[i] = result{stdout.String(), stderr.String(), err}
		}(i)
	}
	wg.Wait()
	want := fmt.Sprintf("store migrated to version %d\n", LatestVersion())
	for i, r := range res {
		if r.err != nil || r.out != want {
			t.Errorf("process %d: %v, stdout %q, stderr %q; want %q", i, r.err, r.out, r.errOut, want)
		}
	}
	s := openStore(t, dsn)
	if got := migrationRows(t, s); got != LatestVersion() {
		t.Fatalf("%d migration rows, want %d", got, LatestVersion())
	}
	if got, want := tables(t, s), strings.Join(ledgerTables, " "); got != want {
		t.Fatalf("tables:\n got %s\nwant %s", got, want)
	}

	// A store it cannot reach: exit 1, the password never printed.
	if err := os.WriteFile(cfg, []byte("store:\n  dsn: \"tern:s3cretpw@tcp(127.0.0.1:1)/tern\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "migrate", "--config", cfg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("unreachable store: %v, want exit 1", err)
	}
	if strings.Contains(stderr.String(), "s3cretpw") || !strings.Contains(stderr.String(), "tern migrate:") {
		t.Fatalf("stderr = %q", stderr.String())
	}
}

// TestOpenSession: Open forces UTC and READ COMMITTED sessions and keeps
// the user's own parameters. (tx_isolation: the test server is MariaDB.)
func TestOpenSession(t *testing.T) {
	dsn, _ := testdb.New(t, "open")
	s := openStore(t, dsn+"&wait_timeout=1234")
	var tz, iso string
	var wait int
	if err := s.DB().QueryRow(`SELECT @@session.time_zone, @@session.wait_timeout, @@session.tx_isolation`).Scan(&tz, &wait, &iso); err != nil {
		t.Fatal(err)
	}
	if tz != "+00:00" || wait != 1234 || iso != "READ-COMMITTED" {
		t.Fatalf("session time_zone %q wait_timeout %d isolation %s; want +00:00, 1234, READ-COMMITTED", tz, wait, iso)
	}
	if _, err := Open(context.Background(), "root@tcp(127.0.0.1:3306)/"); err == nil {
		t.Fatal("Open accepted a DSN without a database")
	}
}
