package plan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/testdb"
)

func TestLimitsRefuseBeforeParsing(t *testing.T) {
	table := func(i int) string { return fmt.Sprintf("CREATE TABLE t%d (id int PRIMARY KEY);\n", i) } // 37-38 bytes
	many := func(n int) []byte {
		var b strings.Builder
		for i := range n {
			b.WriteString(table(i))
		}
		return []byte(b.String())
	}
	tests := []struct {
		name   string
		limits Limits
		files  []File
		want   string
	}{
		{"file", Limits{MaxFileBytes: 100}, []File{{"db/a.sql", many(1)}, {"db/b.sql", many(3)}},
			"db/b.sql: 114 bytes, over the limit of 100 (limits.max_file_bytes) by 14; nothing was sent to a server"},
		{"total", Limits{MaxTotalBytes: 200}, []File{{"db/a.sql", many(3)}, {"db/b.sql", many(3)}},
			"schema files in db: 228 bytes, over the limit of 200 (limits.max_total_bytes) by 28"},
		{"tables", Limits{MaxTables: 4}, []File{{"db/a.sql", many(3)}, {"db/b.sql", []byte("-- two more\n" + table(7) + table(8))}},
			"schema files in db: 5 tables, over the limit of 4 (limits.max_tables) by 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.limits.Parse(tc.files)
			var le *LimitError
			if !errors.As(err, &le) {
				t.Fatalf("error %v, want a LimitError", err)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error:\n got %q\nwant %q", err, tc.want)
			}
		})
	}
	// At the limit is fine.
	if _, err := (Limits{MaxTables: 6}).Parse([]File{{"db/a.sql", many(6)}}); err != nil {
		t.Errorf("6 tables under max_tables 6: %v", err)
	}
}

// A 50 MB file is refused by its size, unread: the default max_file_bytes
// is 1 MiB.
func TestLoadDirRefusesAHugeFileUnread(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.sql"), []byte("CREATE TABLE a (id int);\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.sql")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(50 << 20); err != nil { // sparse: costs no disk
		t.Fatal(err)
	}
	f.Close()
	_, err = LoadDir(dir, ".")
	want := "big.sql: 52428800 bytes, over the limit of 1048576 (limits.max_file_bytes) by 51380224"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
}

// Issue 12.4: a schema_dir of 20,000 tables is answered (refused: the
// default max_tables is 5000) before any server is contacted: the pools
// open no connection and the general log holds none of its text.
func Test20000TablesRefusedBeforeAnyServer(t *testing.T) {
	m := marker(t)
	dir := t.TempDir()
	const files, perFile = 200, 100
	for f := range files {
		var b strings.Builder
		for i := range perFile {
			fmt.Fprintf(&b, "CREATE TABLE %s_%d_%d (id int PRIMARY KEY, name varchar(20));\n", m, f, i)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("t%03d.sql", f)), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, liveName := testdb.Open(t, "hostile_20k")
	log := startGeneralLog(t)
	live, liveConns := countingPool(t, liveName)
	shadow, shadowConns := countingPool(t, "")

	start := time.Now()
	d, err := LoadDir(dir, ".")
	if err == nil {
		_, err = (&Planner{}).Plan(context.Background(), d, live, shadow)
	}
	elapsed := time.Since(start)

	var le *LimitError
	if !errors.As(err, &le) || le.Key != "limits.max_tables" || le.Got != files*perFile || le.Max != DefaultMaxTables {
		t.Fatalf("error %v, want max_tables refusing %d tables", err, files*perFile)
	}
	if want := "schema files: 20000 tables, over the limit of 5000 (limits.max_tables) by 15000"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want %q", err, want)
	}
	if n, s := liveConns.n.Load(), shadowConns.n.Load(); n+s > 0 {
		t.Errorf("the refused plan opened %d live and %d shadow connections", n, s)
	}
	log.assertNothingReached(m)
	t.Logf("20,000 tables in %d files refused in %s", files, elapsed.Round(time.Millisecond))
}

// Over its deadline, a plan fails naming limits.plan_timeout, and leaves
// no shadow schema behind.
func TestPlanDeadline(t *testing.T) {
	srv := testdb.Server(t)
	live, _ := testdb.Open(t, "hostile_deadline")
	before := listShadows(t, srv)
	d := mustParse(t, "CREATE TABLE a (id int PRIMARY KEY);")
	_, err := (&Planner{Limits: Limits{PlanTimeout: time.Nanosecond}}).Plan(context.Background(), d, live, srv)
	want := "the plan took longer than its deadline of 1ns (limits.plan_timeout)"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
	// A cancelled parent is not the plan's deadline.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (&Planner{}).Plan(ctx, d, live, srv); err == nil || strings.Contains(err.Error(), "plan_timeout") {
		t.Errorf("cancelled context: error %v, want one that does not blame plan_timeout", err)
	}
	if left := shadowsLeftSince(t, srv, before); len(left) > 0 {
		t.Errorf("shadow schemas left: %v", left)
	}
}
