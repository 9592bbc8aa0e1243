package plan

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/testdb"
)

// corpusDir holds real public schemas (see its README).
const corpusDir = "../testdata/schemas"

func corpus(t *testing.T) map[string]string {
	t.Helper()
	dirs, err := os.ReadDir(corpusDir)
	if err != nil {
		t.Fatalf("read corpus: %v", err)
	}
	out := map[string]string{}
	for _, d := range dirs {
		if d.IsDir() {
			out[d.Name()] = filepath.Join(corpusDir, d.Name())
		}
	}
	if len(out) < 4 {
		t.Fatalf("corpus has %d schemas, want at least 4", len(out))
	}
	return out
}

// execAll runs each statement on db over one connection with
// FOREIGN_KEY_CHECKS=0.
func execAll(t *testing.T, db *sql.DB, stmts []string) {
	t.Helper()
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION foreign_key_checks = 0"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(ctx, "SET SESSION foreign_key_checks = 1")
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			t.Fatalf("exec %s: %v", s, err)
		}
	}
}

func tableSQL(d *Desired) []string {
	out := make([]string, len(d.Tables))
	for i, t := range d.Tables {
		out[i] = t.SQL
	}
	return out
}

func ddl(stmts []Statement) []string {
	out := make([]string, len(stmts))
	for i, s := range stmts {
		out[i] = s.DDL
	}
	return out
}

// shadowsLeft lists shadow schemas on the server.
func shadowsLeft(t *testing.T, srv *sql.DB) []string {
	t.Helper()
	// Other packages' tests plan on the same server at the same time, and
	// their shadows live for a second or two. A shadow this package left
	// behind stays: report those that are still there after 30 s.
	left := listShadows(t, srv)
	for deadline := time.Now().Add(30 * time.Second); len(left) > 0 && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		now := map[string]bool{}
		for _, n := range listShadows(t, srv) {
			now[n] = true
		}
		var still []string
		for _, n := range left {
			if now[n] {
				still = append(still, n)
			}
		}
		left = still
	}
	return left
}

// listShadows lists the shadow schemas on the server.
func listShadows(t *testing.T, srv *sql.DB) []string {
	t.Helper()
	return queryStrings(t, srv, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '\\_tern\\_shadow\\_%'")
}

// queryStrings returns the one column of q's rows.
func queryStrings(t *testing.T, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestNoFalseDiffsOnCorpus(t *testing.T) {
	ctx := context.Background()
	srv := testdb.Server(t)
	for name, dir := range corpus(t) {
		t.Run(name, func(t *testing.T) {
			d, err := LoadDir(dir, ".")
			if err != nil {
				t.Fatalf("LoadDir: %v", err)
			}
			for _, full := range []bool{false, true} {
				// sakila's film_text is MyISAM: allowed as a target's allowed_engines would.
				p := (&Planner{FullShadow: full}).WithEngines(plannableEngines)
				// Loaded with the files themselves: no changes.
				live, _ := testdb.Open(t, "plan_corpus")
				execAll(t, live, tableSQL(d))
				pl, err := p.Plan(ctx, d, live, srv)
				if err != nil {
					t.Fatalf("full=%v: plan against loaded schema: %v", full, err)
				}
				if pl.HasChanges() {
					t.Fatalf("full=%v: false diff against the schema loaded from the same files:\n%s", full, strings.Join(ddl(pl.Statements), ";\n"))
				}
				// From empty: the plan creates everything; applied, it re-plans clean.
				empty, _ := testdb.Open(t, "plan_corpus_empty")
				pl, err = p.Plan(ctx, d, empty, srv)
				if err != nil {
					t.Fatalf("full=%v: plan against empty schema: %v", full, err)
				}
				if len(pl.Statements) != len(d.Tables) {
					t.Fatalf("full=%v: %d statements against an empty schema, want %d creates", full, len(pl.Statements), len(d.Tables))
				}
				execAll(t, empty, ddl(pl.Statements))
				pl, err = p.Plan(ctx, d, empty, srv)
				if err != nil {
					t.Fatalf("full=%v: re-plan: %v", full, err)
				}
				if pl.HasChanges() {
					t.Fatalf("full=%v: re-plan after applying has changes:\n%s", full, strings.Join(ddl(pl.Statements), ";\n"))
				}
			}
		})
	}
	if left := shadowsLeft(t, srv); len(left) > 0 {
		t.Errorf("shadow schemas left on the server: %v", left)
	}
}
