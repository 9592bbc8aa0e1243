package plan

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ternhq/tern/internal/testdb"
)

// plannableEngines is every engine a target's allowed_engines may name,
// for tests whose schemas use them all.
var plannableEngines = []string{"InnoDB", "MyISAM", "Aria", "MEMORY"}

// marker returns a fresh token to find a test's SQL in the server's
// general log.
func marker(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "hostile_" + hex.EncodeToString(b)
}

// generalLog turns the server's general log on (to a table) for the rest
// of the test and puts it back as it was afterwards. Other packages'
// tests share the server, so it is searched by marker strings only.
type generalLog struct {
	t     *testing.T
	db    *sql.DB
	since string
}

func startGeneralLog(t *testing.T) *generalLog {
	t.Helper()
	db := testdb.Server(t)
	var on, output string
	if err := db.QueryRow("SELECT @@GLOBAL.general_log, @@GLOBAL.log_output").Scan(&on, &output); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Back as it was: a value read from the server, not from a test input.
		if _, err := db.Exec("SET GLOBAL general_log = " + map[bool]string{true: "ON", false: "OFF"}[on == "1"]); err != nil {
			t.Errorf("restore general_log: %v", err)
		}
		if _, err := db.Exec("SET GLOBAL log_output = ?", output); err != nil {
			t.Errorf("restore log_output: %v", err)
		}
	})
	if !strings.Contains(output, "TABLE") {
		if _, err := db.Exec("SET GLOBAL log_output = 'TABLE'"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec("SET GLOBAL general_log = ON"); err != nil {
		t.Fatal(err)
	}
	g := &generalLog{t: t, db: db}
	if err := db.QueryRow("SELECT NOW(6)").Scan(&g.since); err != nil {
		t.Fatal(err)
	}
	return g
}

// count returns how many logged statements since the start contain s. The
// query names s only in hex, so it does not find itself.
func (g *generalLog) count(s string) int {
	g.t.Helper()
	var n int
	if err := g.db.QueryRow("SELECT COUNT(*) FROM mysql.general_log WHERE event_time >= ? AND INSTR(argument, UNHEX(?)) > 0",
		g.since, hex.EncodeToString([]byte(s))).Scan(&n); err != nil {
		g.t.Fatal(err)
	}
	return n
}

// assertNothingReached fails the test when the server logged anything
// containing m. A probe sent afterwards must be logged, so the log was
// on all along (another test may have turned it off).
func (g *generalLog) assertNothingReached(m string) {
	g.t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		g.t.Fatal(err)
	}
	probe := "probe_" + hex.EncodeToString(b)
	if _, err := g.db.Exec("DO '" + probe + "'"); err != nil { // probe is [a-z0-9_]
		g.t.Fatal(err)
	}
	if n := g.count(probe); n == 0 {
		g.t.Fatal("the general log did not record the probe: it was off during the test, which proves nothing")
	}
	if n := g.count(m); n > 0 {
		g.t.Errorf("%d statements holding the hostile file's marker %s reached the server", n, m)
	}
}

// shadowsLeftSince lists shadow schemas that were not on the server in
// before and are still there after other packages' plans had 30 s to
// drop theirs. Shadows left before the test are someone else's.
func shadowsLeftSince(t *testing.T, srv *sql.DB, before []string) []string {
	t.Helper()
	old := map[string]bool{}
	for _, n := range before {
		old[n] = true
	}
	var left []string
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		left = left[:0]
		for _, n := range listShadows(t, srv) {
			if !old[n] {
				left = append(left, n)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
	}
}

// countingConnector counts the connections a pool opens.
type countingConnector struct {
	driver.Connector
	n atomic.Int64
}

func (c *countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	c.n.Add(1)
	return c.Connector.Connect(ctx)
}

// countingPool opens a pool on the test server (database db, "" for none)
// that counts its connections.
func countingPool(t *testing.T, db string) (*sql.DB, *countingConnector) {
	t.Helper()
	cfg := testdb.Config(t)
	cfg.DBName = db
	mc, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cc := &countingConnector{Connector: mc}
	pool := sql.OpenDB(cc)
	t.Cleanup(func() { pool.Close() })
	return pool, cc
}

// planAsTheBotDoes parses files and, when they pass, plans them against
// live with the shadow on the test server: the path of a PR's files.
func planAsTheBotDoes(ctx context.Context, p *Planner, files []File, live, shadow *sql.DB) (*Plan, error) {
	d, err := Parse(files)
	if err != nil {
		return nil, err
	}
	return p.Plan(ctx, d, live, shadow)
}

// Issue 12.3 and 12.7: hostile schema files are refused with file:line
// before anything of them reaches a server (the general log holds none of
// their text) and no folder is made outside the data directory.
func TestHostileFilesNeverReachTheServer(t *testing.T) {
	ctx := context.Background()
	_, liveName := testdb.Open(t, "hostile")
	cases := []struct {
		name string
		// sql is the file; %[1]s is the marker, %[2]s a directory
		// outside the data directory.
		sql  string
		want string
	}{
		{"issue's executable comment hiding DATA DIRECTORY",
			"CREATE TABLE %[1]s (id int primary key) /*!999999 COMMENT '*/ DATA DIRECTORY=\"%[2]s\" /*' */;\n",
			"db/h.sql:1: executable comment /*!999999 is not allowed"},
		{"MariaDB executable comment",
			"-- looks harmless\nCREATE TABLE %[1]s (\n  id int primary key\n) /*M!999999 COMMENT '*/ DATA DIRECTORY=\"%[2]s\" /*' */;\n",
			"db/h.sql:4: executable comment /*M!999999 is not allowed"},
		{"executable comment in a quoted string",
			"CREATE TABLE %[1]s (id int primary key COMMENT 'a /*!50000 b') COMMENT '%[2]s';\n",
			"db/h.sql:1: executable comment /*!50000 is not allowed"},
		{"SLEEP in a DEFAULT",
			"CREATE TABLE %[1]s (\n  id int primary key,\n  n int DEFAULT (SLEEP(30))\n);\n",
			"db/h.sql:3: table %[1]s: column n DEFAULT: function SLEEP()"},
		{"BENCHMARK in a generated column",
			"CREATE TABLE %[1]s (\n  id int primary key,\n  s varchar(20),\n  h int AS (BENCHMARK(100000000, MD5(s))) STORED\n);\n",
			"db/h.sql:4: table %[1]s: column h generated AS: function BENCHMARK()"},
		{"LOAD_FILE in a generated column",
			"CREATE TABLE %[1]s (\n  id int primary key,\n  f blob AS (LOAD_FILE('/etc/passwd')) VIRTUAL\n);\n",
			"db/h.sql:3: table %[1]s: column f generated AS: function LOAD_FILE()"},
		{"subquery in a CHECK",
			"CREATE TABLE %[1]s (\n  id int primary key,\n  CONSTRAINT c1 CHECK (id > (SELECT COUNT(*) FROM mysql.user))\n);\n",
			"db/h.sql:3: table %[1]s: CHECK c1: a subquery"},
		{"stored function in a DEFAULT",
			"CREATE TABLE %[1]s (id int primary key, n int DEFAULT (steal_%[1]s()));\n",
			"db/h.sql:1: table %[1]s: column n DEFAULT: function steal_%[1]s()"},
		{"qualified stored function in a CHECK",
			"CREATE TABLE %[1]s (id int primary key,\n CHECK (mysql.f(id) > 0));\n",
			"db/h.sql:2: table %[1]s: CHECK: stored function mysql.f()"},
		{"user variable in a DEFAULT",
			"CREATE TABLE %[1]s (id int primary key, n int DEFAULT (@x))\n;\n",
			"db/h.sql:1: table %[1]s: column n DEFAULT: user variable @x"},
		{"system variable in a DEFAULT",
			"CREATE TABLE %[1]s (id int primary key,\n\n h varchar(64) DEFAULT (@@hostname));\n",
			"db/h.sql:3: table %[1]s: column h DEFAULT: system variable @@hostname"},
		{"GET_LOCK in a generated column",
			"CREATE TABLE %[1]s (id int primary key, l int AS (GET_LOCK('x', 10)));\n",
			"db/h.sql:1: table %[1]s: column l generated AS: function get_lock()"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := marker(t)
			outside := filepath.Join(os.TempDir(), "tern-"+m)
			t.Cleanup(func() { os.RemoveAll(outside) })
			log := startGeneralLog(t)
			live, _ := countingPool(t, liveName)
			shadow, _ := countingPool(t, "")
			files := []File{{"db/ok.sql", []byte("CREATE TABLE fine (id int PRIMARY KEY);\n")}, {"db/h.sql", []byte(fmt.Sprintf(tc.sql, m, outside))}}
			pl, err := planAsTheBotDoes(ctx, &Planner{}, files, live, shadow)
			want := strings.ReplaceAll(tc.want, "%[1]s", m)
			if err == nil {
				t.Errorf("planned it: %+v; want %q", pl, want)
			} else if !strings.Contains(err.Error(), want) {
				t.Errorf("error:\n got %q\nwant %q", err, want)
			}
			log.assertNothingReached(m)
			if _, err := os.Stat(outside); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s exists outside the data directory (stat: %v)", outside, err)
			}
		})
	}
}

// Harmless expressions stay accepted: the refusals are for what is
// hostile, not for what is unfamiliar.
func TestExpressionsAccepted(t *testing.T) {
	src := `CREATE TABLE t (
  id int PRIMARY KEY,
  a int DEFAULT (1 + 2),
  b varchar(40) DEFAULT (concat(lower('A'), 'x')),
  c int AS (id * 2) VIRTUAL,
  d varchar(80) AS (concat_ws('-', b, coalesce(a, 0))) STORED,
  e timestamp DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
  f char(36) DEFAULT (uuid()),
  g datetime DEFAULT (now() + INTERVAL 1 DAY),
  h json DEFAULT (json_object('k', 1)),
  i varchar(10) DEFAULT (IF(1 > 0, 'y', 'n')),
  j int AS (CASE WHEN id > 0 THEN abs(id) ELSE 0 END) VIRTUAL,
  k varchar(10) COMMENT 'SLEEP(1) and @x and (SELECT 1) in a comment are text',
  CONSTRAINT pos CHECK (id > 0 AND a BETWEEN 0 AND 100),
  CHECK (json_valid(h))
) PARTITION BY RANGE (id) (PARTITION p0 VALUES LESS THAN (100), PARTITION p1 VALUES LESS THAN MAXVALUE);`
	if _, err := Parse([]File{{"db/t.sql", []byte(src)}}); err != nil {
		t.Fatal(err)
	}
}

// Issue 12.3, the second wall: whatever the files said, no plan is made
// from a shadow table the server created with DATA/INDEX DIRECTORY,
// CONNECTION or an engine outside the target's allowed_engines. The
// desired schema here is built by hand, past Parse, as a lexer gap
// between tern and a server would let it through.
func TestShadowWallRefusesWhatTheServerMade(t *testing.T) {
	ctx := context.Background()
	srv := testdb.Server(t)
	live, _ := testdb.Open(t, "hostile_wall")
	before := listShadows(t, srv)
	outside := filepath.Join(os.TempDir(), "tern-"+marker(t))
	t.Cleanup(func() { os.RemoveAll(outside) })
	cases := []struct {
		name, sql string
		engines   []string
		want      string
	}{
		{"data directory", "CREATE TABLE w (id int PRIMARY KEY) DATA DIRECTORY='" + outside + "'", nil, "db/w.sql:1: table w: the shadow server created it with DATA DIRECTORY"},
		{"MyISAM by default", "CREATE TABLE w (id int PRIMARY KEY) ENGINE=MyISAM", nil, "db/w.sql:1: table w: the shadow server created it with ENGINE=MyISAM (allowed_engines: InnoDB)"},
		{"partition engine", "CREATE TABLE w (id int PRIMARY KEY) ENGINE=Aria PARTITION BY HASH (id) PARTITIONS 2", []string{"InnoDB", "MyISAM"}, "ENGINE=Aria (allowed_engines: InnoDB, MyISAM)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, full := range []bool{false, true} {
				d := &Desired{Tables: []Table{{Name: "w", File: "db/w.sql", Line: 1, SQL: tc.sql}}}
				p := (&Planner{FullShadow: full}).WithEngines(tc.engines)
				pl, err := p.Plan(ctx, d, live, srv)
				if err == nil {
					t.Fatalf("full=%v: planned %+v; want %q", full, pl.Statements, tc.want)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Errorf("full=%v: error:\n got %q\nwant %q", full, err, tc.want)
				}
			}
		})
	}
	// An engine the target allows plans.
	d := &Desired{Tables: []Table{{Name: "w", File: "db/w.sql", Line: 1, SQL: "CREATE TABLE w (id int PRIMARY KEY) ENGINE=MyISAM"}}}
	pl, err := (&Planner{}).WithEngines([]string{"innodb", "myisam"}).Plan(ctx, d, live, srv)
	if err != nil || len(pl.Statements) != 1 {
		t.Fatalf("allowed MyISAM: %v %+v", err, pl)
	}
	if left := shadowsLeftSince(t, srv, before); len(left) > 0 {
		t.Errorf("shadow schemas left: %v", left)
	}
}

func TestShadowDefProblem(t *testing.T) {
	innodb := []string{"InnoDB"}
	tests := []struct{ def, want string }{
		{"CREATE TABLE `t` (\n  `id` int(11) NOT NULL\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4", ""},
		{"CREATE TABLE `t` (\n  `id` int(11) NOT NULL COMMENT 'DATA DIRECTORY=x ENGINE=CONNECT CONNECTION='\n) ENGINE=InnoDB", ""},
		{"CREATE TABLE `connection` (\n  `engine` int(11) NOT NULL\n) ENGINE=InnoDB", ""},
		{"CREATE TABLE `t` (\n  `id` int(11) NOT NULL\n) ENGINE=InnoDB DATA DIRECTORY='/x/'", "DATA DIRECTORY"},
		{"CREATE TABLE `t` (\n  `id` int(11) NOT NULL\n) ENGINE=MyISAM INDEX DIRECTORY='/x/'", "ENGINE=MyISAM (allowed_engines: InnoDB)"},
		{"CREATE TABLE `t` (\n  `id` int(11) NOT NULL\n) ENGINE=InnoDB INDEX DIRECTORY='/x/'", "INDEX DIRECTORY"},
		{"CREATE TABLE `t` (\n  `id` int(11) NOT NULL\n) ENGINE=FEDERATED CONNECTION='mysql://x'", "ENGINE=FEDERATED (allowed_engines: InnoDB)"},
		{"CREATE TABLE `t` (\n  `id` int(11) NOT NULL\n) ENGINE=InnoDB CONNECTION='mysql://x'", "CONNECTION"},
		{"CREATE TABLE `t` (\n  `id` int(11) NOT NULL\n) ENGINE=InnoDB\n PARTITION BY HASH (`id`)\n(PARTITION `p0` ENGINE = InnoDB,\n PARTITION `p1` ENGINE = CONNECT)", "ENGINE=CONNECT (allowed_engines: InnoDB)"},
		{"CREATE TABLE `t` (\n  `id` int(11) NOT NULL\n) ENGINE=InnoDB /*!50100 PARTITION BY HASH (id) (PARTITION p0 DATA DIRECTORY = '/x' ENGINE = InnoDB) */", "DATA DIRECTORY"},
	}
	for _, tc := range tests {
		if got := shadowDefProblem(tc.def, innodb); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.def, got, tc.want)
		}
	}
}

func TestHostileLine(t *testing.T) {
	src := "CREATE TABLE f (\n  id int PRIMARY KEY,\n  a int,\n  b int DEFAULT (\nsleep(1))\n);"
	_, err := Parse([]File{{"db/f.sql", []byte(src)}})
	if err == nil || !strings.HasPrefix(err.Error(), "db/f.sql:5: table f: column b DEFAULT: function sleep()") {
		t.Fatalf("error %v", err)
	}
}
