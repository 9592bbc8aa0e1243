package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one versioned step of the ledger's schema.
type migration struct {
	version    int
	name       string
	statements []string
}

// migrateLockTimeout bounds how long Migrate waits for another process
// that is migrating the same database.
const migrateLockTimeout = 120 * time.Second

// loadMigrations reads the embedded migrations, ordered by version. A file
// is named NNNN_name.sql and holds statements ending with ";" at the end
// of a line.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a version number", name)
		}
		b, err := migrationFiles.ReadFile("migrations/" + name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(name, ".sql"), statements: splitStatements(string(b))})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := range ms {
		if ms[i].version != i+1 {
			return nil, fmt.Errorf("migrations: expected version %d, found %s", i+1, ms[i].name)
		}
	}
	return ms, nil
}

// splitStatements splits SQL text at semicolons that end a line, dropping
// comment-only lines.
func splitStatements(text string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// LatestVersion is the newest ledger schema version this binary knows.
func LatestVersion() int {
	ms, err := loadMigrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// SchemaVersion returns the version the ledger's database is at (0 when
// it has never been migrated).
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'tern_schema_migrations'`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("read store schema version: %w", err)
	}
	if n == 0 {
		return 0, nil
	}
	return currentVersion(ctx, s.db)
}

type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func currentVersion(ctx context.Context, q queryer) (int, error) {
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT MAX(version) FROM tern_schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read store schema version: %w", err)
	}
	return int(v.Int64), nil
}

// migrate runs the pending migrations on one connection holding a named
// lock, so that processes starting together take turns and the later ones
// find nothing to do.
func (s *Store) migrate(ctx context.Context) (err error) {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	latest := ms[len(ms)-1].version
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate store: %w", err)
	}
	defer conn.Close()

	var got sql.NullInt64
	err = conn.QueryRowContext(ctx, `SELECT GET_LOCK(LEFT(CONCAT('tern_migrate.', DATABASE()), 64), ?)`,
		int(migrateLockTimeout/time.Second)).Scan(&got)
	if err != nil {
		return fmt.Errorf("migrate store: take migration lock: %w", err)
	}
	if got.Int64 != 1 {
		return fmt.Errorf("migrate store: another process held the migration lock for %s", migrateLockTimeout)
	}
	defer func() {
		// A fresh context: release the lock even when ctx was cancelled.
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, rerr := conn.ExecContext(rctx, `DO RELEASE_LOCK(LEFT(CONCAT('tern_migrate.', DATABASE()), 64))`); rerr != nil && err == nil {
			err = fmt.Errorf("migrate store: release migration lock: %w", rerr)
		}
	}()

	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS tern_schema_migrations (
  version INT NOT NULL,
  name VARCHAR(200) NOT NULL,
  applied_at DATETIME(6) NOT NULL,
  PRIMARY KEY (version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`); err != nil {
		return fmt.Errorf("migrate store: create tern_schema_migrations: %w", err)
	}
	cur, err := currentVersion(ctx, conn)
	if err != nil {
		return err
	}
	if cur > latest {
		return &SchemaTooNewError{Version: cur, Known: latest}
	}
	for _, m := range ms {
		if m.version <= cur {
			continue
		}
		for i, stmt := range m.statements {
			if _, err := conn.ExecContext(ctx, stmt); err != nil && !alreadyDone(err) {
				return fmt.Errorf("migrate store to version %d (%s), statement %d: %w", m.version, m.name, i+1, err)
			}
		}
		if _, err := conn.ExecContext(ctx,
			`INSERT INTO tern_schema_migrations (version, name, applied_at) VALUES (?, ?, UTC_TIMESTAMP(6))`,
			m.version, m.name); err != nil {
			return fmt.Errorf("migrate store: record version %d: %w", m.version, err)
		}
	}
	return nil
}

// alreadyDone reports whether a migration statement failed because what it
// adds is there already (a run cut short between a statement and the
// version's record): a duplicate column (1060) or key (1061).
func alreadyDone(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1060 || me.Number == 1061)
}

// SchemaTooNewError is returned by Migrate when the database was migrated
// by a newer tern than this one.
type SchemaTooNewError struct {
	Version int // the database's version
	Known   int // the newest version this binary knows
}

// Error says which version the database is at and asks for an upgrade.
func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("store schema is at version %d but this tern knows up to %d: upgrade tern", e.Version, e.Known)
}
