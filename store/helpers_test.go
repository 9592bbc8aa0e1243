package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/testdb"
)

// newStore returns a migrated store on a fresh database and its DSN.
func newStore(tb testing.TB) (*Store, string) {
	tb.Helper()
	dsn, _ := testdb.New(tb, "store")
	s := openStore(tb, dsn)
	if err := s.Migrate(context.Background()); err != nil {
		tb.Fatalf("migrate: %v", err)
	}
	return s, dsn
}

// openStore opens another store (its own pool) on dsn, closed at the end.
func openStore(tb testing.TB, dsn string) *Store {
	tb.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// savePlan stores a plan for repo#pr on (db, env) with n statements.
func savePlan(tb testing.TB, s *Store, repo string, pr int, db, env string, n int) *Plan {
	tb.Helper()
	p := &Plan{Repository: repo, PR: pr, HeadSHA: "abc123", InstallationID: 42, Database: db,
		Environment: env, DesiredHash: "hash-" + db, Desired: []byte("CREATE TABLE t (id int)"), Lint: []byte("[]")}
	for i := 1; i <= n; i++ {
		p.Statements = append(p.Statements, Statement{Table: fmt.Sprintf("t%d", i), Kind: "alter",
			DDL: fmt.Sprintf("ALTER TABLE t%d ADD COLUMN c int", i), Instant: i%2 == 0})
	}
	if err := s.SavePlan(context.Background(), p); err != nil {
		tb.Fatalf("save plan: %v", err)
	}
	return p
}

// newApply saves a plan with n statements and creates its apply.
func newApply(tb testing.TB, s *Store, repo string, pr int, db, env string, n int) *Apply {
	tb.Helper()
	p := savePlan(tb, s, repo, pr, db, env, n)
	a, err := s.CreateApply(context.Background(), p, "alice", false, 5)
	if err != nil {
		tb.Fatalf("create apply: %v", err)
	}
	return a
}

// insertApplies bulk-inserts n applies of plan p in state st, each on its
// own environment envPrefix-i, already due, without tasks. It is for
// seeding volume; the store's own paths are tested through CreateApply.
func insertApplies(tb testing.TB, s *Store, p *Plan, n int, st State, envPrefix string) {
	tb.Helper()
	const chunk = 500
	for start := 0; start < n; start += chunk {
		var sb strings.Builder
		var args []any
		for i := start; i < n && i < start+chunk; i++ {
			if i > start {
				sb.WriteString(", ")
			}
			sb.WriteString(`(?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 5, 0, UTC_TIMESTAMP(6) - INTERVAL 1 SECOND, '', '', NULL, '', '',
 'alice', 0, '{}', 1, 1, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))`)
			args = append(args, p.ID, p.Repository, p.PR, p.HeadSHA, p.InstallationID, p.Database,
				fmt.Sprintf("%s-%d", envPrefix, i), p.DesiredHash, string(st))
		}
		_, err := s.DB().Exec(`INSERT INTO tern_applies (plan_id, repository, pr, head_sha, installation_id,
 database_name, environment, desired_hash, state, attempt, max_attempts, rescues, next_attempt_at, lease_owner,
 lease_token, lease_expires_at, last_error, error_class, requested_by, allow_unsafe, engine_state, version,
 reported_version, created_at, updated_at) VALUES `+sb.String(), args...)
		if err != nil {
			tb.Fatalf("insert applies: %v", err)
		}
	}
}

// rawApply reads an apply's state and version straight from the table.
func rawApply(tb testing.TB, s *Store, id int64) (State, int64) {
	tb.Helper()
	var st State
	var v int64
	if err := s.DB().QueryRow(`SELECT state, version FROM tern_applies WHERE id = ?`, id).Scan(&st, &v); err != nil {
		tb.Fatalf("read apply %d: %v", id, err)
	}
	return st, v
}

func taskStates(tb testing.TB, s *Store, id int64) []State {
	tb.Helper()
	ts, err := s.Tasks(context.Background(), id)
	if err != nil {
		tb.Fatal(err)
	}
	var out []State
	for _, t := range ts {
		out = append(out, t.State)
	}
	return out
}

func isConflict(err error) bool {
	var ce *ConflictError
	return errors.As(err, &ce) && errors.Is(err, ErrConflict)
}

func isTransition(err error) bool {
	var te *TransitionError
	return errors.As(err, &te)
}
