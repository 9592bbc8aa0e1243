package plan

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/testdb"
)

func TestParseRefuses(t *testing.T) {
	ok := "CREATE TABLE ok (id int PRIMARY KEY);\n"
	tests := []struct {
		name  string
		files []File
		want  string
	}{
		{"DML", []File{{"db/a.sql", []byte(ok + "\n-- seed\nINSERT INTO ok VALUES (1);\n")}}, "db/a.sql:4: only CREATE TABLE statements are allowed, found INSERT"},
		{"drop", []File{{"db/a.sql", []byte("DROP TABLE ok;")}}, "db/a.sql:1: only CREATE TABLE statements are allowed, found DROP TABLE"},
		{"view", []File{{"db/a.sql", []byte(ok + "CREATE OR REPLACE VIEW v AS SELECT 1;")}}, "db/a.sql:2: only CREATE TABLE statements are allowed, found CREATE VIEW"},
		{"syntax error", []File{{"db/a.sql", []byte("CREATE TABLE t (\n  id int,\n  name varchar(10) NOT NUL\n);")}}, `db/a.sql:3: syntax error near "NUL"`},
		{"duplicate table", []File{{"db/a.sql", []byte(ok)}, {"db/b.sql", []byte("\n" + ok)}}, "db/b.sql:2: table ok is defined twice: also in db/a.sql:1"},
		{"select", []File{{"db/a.sql", []byte("CREATE TABLE t SELECT * FROM mysql.user;")}}, "db/a.sql:1: CREATE TABLE t ... SELECT: not allowed"},
		{"like", []File{{"db/a.sql", []byte("CREATE TABLE t LIKE mysql.user;")}}, "db/a.sql:1: CREATE TABLE t LIKE: not allowed"},
		{"temporary", []File{{"db/a.sql", []byte("CREATE TEMPORARY TABLE t (id int);")}}, "db/a.sql:1: CREATE TEMPORARY TABLE t: temporary tables are not allowed"},
		{"data directory", []File{{"db/a.sql", []byte("CREATE TABLE t (id int) DATA DIRECTORY='/tmp';")}}, "db/a.sql:1: table t: DATA DIRECTORY is not allowed"},
		{"index directory", []File{{"db/a.sql", []byte("CREATE TABLE t (id int) INDEX DIRECTORY='/tmp';")}}, "db/a.sql:1: table t: INDEX DIRECTORY is not allowed"},
		{"connect engine", []File{{"db/a.sql", []byte("CREATE TABLE t (id int) ENGINE=CONNECT;")}}, "db/a.sql:1: table t: ENGINE=CONNECT is not allowed (allowed: InnoDB, MyISAM, Aria, MEMORY)"},
		{"federated engine", []File{{"db/a.sql", []byte("CREATE TABLE t (id int) ENGINE=FEDERATED CONNECTION='mysql://u@h/db/t';")}}, "db/a.sql:1: table t: ENGINE=FEDERATED is not allowed"},
		{"spider engine", []File{{"db/a.sql", []byte("CREATE TABLE t (id int) ENGINE=SPIDER;")}}, "db/a.sql:1: table t: ENGINE=SPIDER is not allowed"},
		{"merge union", []File{{"db/a.sql", []byte("CREATE TABLE t (id int) UNION=(a,b);")}}, "db/a.sql:1: table t: UNION (MERGE tables) is not allowed"},
		{"partition data directory", []File{{"db/a.sql", []byte("CREATE TABLE t (id int) PARTITION BY RANGE (id) (PARTITION p0 VALUES LESS THAN (10) DATA DIRECTORY='/tmp');")}}, "db/a.sql:1: table t: partition p0: DATA DIRECTORY / INDEX DIRECTORY is not allowed"},
		{"other schema", []File{{"db/a.sql", []byte("CREATE TABLE mysql.t (id int);")}}, "db/a.sql:1: table mysql.t: a schema-qualified name is not allowed"},
		{"foreign key to other schema", []File{{"db/a.sql", []byte("CREATE TABLE t (id int, FOREIGN KEY (id) REFERENCES mysql.user (id));")}}, "db/a.sql:1: table t: foreign key to mysql.user: references to another schema are not allowed"},
		{"hidden in MariaDB executable comment", []File{{"db/a.sql", []byte("CREATE TABLE t (id int) /*M!100100 DATA DIRECTORY='/tmp' */;")}}, "db/a.sql:1: executable comment /*M!100100 is not allowed"},
		{"hidden in versioned comment", []File{{"db/a.sql", []byte("CREATE TABLE t (id int) /*!99999 ENGINE=CONNECT */;")}}, "db/a.sql:1: executable comment /*!99999 is not allowed"},
		{"statement in executable comment", []File{{"db/a.sql", []byte(ok + "/*!40101 SET NAMES latin1 */;")}}, "db/a.sql:2: executable comment /*!40101 is not allowed"},
		{"only comments", []File{{"db/a.sql", []byte("-- nothing\n/* here */\n")}}, "no CREATE TABLE statements in db/a.sql: refusing to plan"},
		{"unterminated quote", []File{{"db/a.sql", []byte("CREATE TABLE t (id int COMMENT 'x);")}}, "db/a.sql:1: unterminated ' quote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.files)
			if err == nil {
				t.Fatalf("Parse accepted it; want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error:\n got %q\nwant prefix %q", err, tt.want)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	src := "-- a comment; with a semicolon\n# another; one\n/* block; */\nCREATE TABLE `a;b` (\n  id int COMMENT 'it''s; fine', -- trailing; comment\n  s varchar(10) DEFAULT \"x;\\\"y\"\n) /* 50705 COMMENT='v' */;\nCREATE TABLE c (id int);"
	d, err := Parse([]File{{"db/x.sql", []byte(src)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Tables) != 2 || d.Tables[0].Name != "a;b" || d.Tables[0].Line != 4 || d.Tables[1].Name != "c" || d.Tables[1].Line != 8 {
		t.Fatalf("tables: %+v", d.Tables)
	}
}

func TestHashIgnoresNamesCommentsOrder(t *testing.T) {
	a := mustParse(t, "CREATE TABLE a (id int);\nCREATE TABLE b (id int);")
	b, err := Parse([]File{
		{"z.sql", []byte("-- b first\nCREATE TABLE b (\n  id INT\n);")},
		{"y.sql", []byte("/* a */ create table a (id int) ;")},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := mustParse(t, "CREATE TABLE a (id bigint);\nCREATE TABLE b (id int);")
	if a.Hash() != b.Hash() {
		t.Errorf("same tables, different hashes: %s %s", a.Hash(), b.Hash())
	}
	if a.Hash() == c.Hash() {
		t.Error("different tables, same hash")
	}
	// Marshal round trip; a tampered copy is refused.
	got, err := UnmarshalDesired(b.Marshal())
	if err != nil || got.Hash() != b.Hash() || len(got.Tables) != 2 {
		t.Fatalf("round trip: %v %+v", err, got)
	}
	bad := strings.Replace(string(b.Marshal()), "id INT", "id BIGINT", 1)
	if _, err := UnmarshalDesired([]byte(bad)); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("tampered desired schema: got %v", err)
	}
}

func TestLoadDir(t *testing.T) {
	root := t.TempDir()
	if _, err := LoadDir(root, "db/shop"); err == nil || err.Error() != "schema_dir db/shop does not exist (check its spelling in tern.yaml)" {
		t.Errorf("missing dir: %v", err)
	}
	os.MkdirAll(filepath.Join(root, "db/shop/sub"), 0o755)
	if _, err := LoadDir(root, "db/shop"); err == nil || err.Error() != "no *.sql files in db/shop: refusing to plan (it would drop every table)" {
		t.Errorf("empty dir: %v", err)
	}
	os.WriteFile(filepath.Join(root, "db/shop/sub/b.sql"), []byte("CREATE TABLE b (id int);"), 0o644)
	os.WriteFile(filepath.Join(root, "db/shop/a.sql"), []byte("CREATE TABLE a (id int);"), 0o644)
	os.WriteFile(filepath.Join(root, "db/shop/README.md"), []byte("DROP TABLE a;"), 0o644)
	d, err := LoadDir(root, "./db/shop/")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Tables) != 2 || d.Tables[0].File != "db/shop/a.sql" || d.Tables[1].File != "db/shop/sub/b.sql" {
		t.Errorf("tables: %+v", d.Tables)
	}
}

// TestServerRefusalLeavesNoShadow: SQL that parses but that the server
// refuses fails the plan with file:line, and the shadow is dropped.
func TestServerRefusalLeavesNoShadow(t *testing.T) {
	srv := testdb.Server(t)
	live, _ := testdb.Open(t, "plan_refused")
	d := mustParse(t, "CREATE TABLE a (id int PRIMARY KEY);\n\nCREATE TABLE b (id int, KEY k (nope));")
	_, err := (&Planner{}).Plan(context.Background(), d, live, srv)
	if err == nil || !strings.HasPrefix(err.Error(), "db/schema.sql:3: table b: the server refused it:") {
		t.Fatalf("got %v", err)
	}
	if left := shadowsLeft(t, srv); len(left) > 0 {
		t.Errorf("shadow schemas left: %v", left)
	}
	// A cancelled context still drops the shadow.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (&Planner{}).Plan(ctx, mustParse(t, "CREATE TABLE a (id int);"), live, srv); err == nil {
		t.Fatal("plan with a cancelled context succeeded")
	}
	if left := shadowsLeft(t, srv); len(left) > 0 {
		t.Errorf("shadow schemas left: %v", left)
	}
}

func TestCleanupShadows(t *testing.T) {
	srv := testdb.Server(t)
	old := ShadowPrefix + "1000000000_deadbeef"
	if _, err := srv.Exec("CREATE DATABASE " + quoteIdent(old)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Exec("DROP DATABASE IF EXISTS " + quoteIdent(old)) })
	n, err := CleanupShadows(context.Background(), srv, time.Hour)
	if err != nil || n < 1 {
		t.Fatalf("CleanupShadows = %d, %v", n, err)
	}
	for _, s := range listShadows(t, srv) {
		if s == old {
			t.Errorf("%s survived", old)
		}
	}
}

// TestParseAcceptsUnfamiliar: what the servers' CREATE TABLE reference
// pages allow but vitess's parser does not know is accepted, and hostile
// options are refused in those statements too.
func TestParseAcceptsUnfamiliar(t *testing.T) {
	for _, sql := range []string{
		"CREATE TABLE t (id SERIAL)",
		"CREATE TABLE t (id int NOT NULL SERIAL DEFAULT VALUE)",
		"CREATE TABLE t (id int PRIMARY KEY, u uuid DEFAULT uuid(), ip inet6, ip4 inet4)",
		"CREATE TABLE t (id int PRIMARY KEY, x int) WITH SYSTEM VERSIONING",
		"CREATE TABLE t (id int PRIMARY KEY, x int WITHOUT SYSTEM VERSIONING) WITH SYSTEM VERSIONING",
		"CREATE TABLE t (id int PRIMARY KEY, v double precision)",
		"CREATE TABLE t (id int PRIMARY KEY, n national varchar(10), c nchar(3), d nvarchar(4))",
		"CREATE TABLE t (id int PRIMARY KEY, b blob COMPRESSED, c text COMPRESSED=zlib)",
		"CREATE TABLE t (id int PRIMARY KEY, d date DEFAULT curdate())",
	} {
		if _, err := Parse([]File{{"db/x.sql", []byte(sql + ";")}}); err != nil {
			t.Errorf("Parse(%s): %v", sql, err)
		}
	}
	_, err := Parse([]File{{"db/x.sql", []byte("CREATE TABLE t (id SERIAL, u uuid) DATA DIRECTORY='/tmp';")}})
	if err == nil || !strings.Contains(err.Error(), "DATA DIRECTORY is not allowed") {
		t.Errorf("hostile option in an unfamiliar statement: %v", err)
	}
}

func TestVitessForm(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"CREATE TABLE t (serial int, `uuid` uuid)", "CREATE TABLE t (serial int, `uuid` enum('__tern_uuid__'))"},
		{"CREATE TABLE t (c varchar(9) DEFAULT 'uuid DEFAULT curdate()')", "CREATE TABLE t (c varchar(9) DEFAULT 'uuid DEFAULT curdate()')"},
		{"CREATE TABLE t (d date DEFAULT curdate(), e datetime DEFAULT current_timestamp())", "CREATE TABLE t (d date DEFAULT (curdate()), e datetime DEFAULT current_timestamp())"},
		{"CREATE TABLE t (v DOUBLE PRECISION, n NATIONAL VARCHAR(3))", "CREATE TABLE t (v double, n VARCHAR(3))"},
	} {
		if got, _ := vitessForm(tc.in); got != tc.want {
			t.Errorf("vitessForm(%s)\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
	if got := restoreTypes("ALTER TABLE `t` ADD COLUMN `u` enum('__tern_uuid__') DEFAULT NULL"); got != "ALTER TABLE `t` ADD COLUMN `u` uuid DEFAULT NULL" {
		t.Errorf("restoreTypes: %s", got)
	}
}

// TestPlainForVitessMissesNothing: whenever plainForVitess says a text is
// its own vitess form, rewriting it indeed changes nothing: over every
// statement of the round-trip corpus, the public schemas, synth500 and
// texts made to come close.
func TestPlainForVitessMissesNothing(t *testing.T) {
	texts := []string{
		"CREATE TABLE t (d date DEFAULT curdate())", "CREATE TABLE t (d date DEFAULT\n\tCURDATE ())",
		"CREATE TABLE t (d datetime DEFAULT current_timestamp())", "CREATE TABLE t (d int DEFAULT (1 + 2))",
		"CREATE TABLE t (s SERIAL)", "CREATE TABLE t (i INT) WITH SYSTEM VERSIONING", "CREATE TABLE t (c DOUBLE /* x */ PRECISION)",
		"CREATE TABLE t (k int, KEY (k) IGNORED)", "CREATE TABLE t (i int) PAGE_COMPRESSED=1", "CREATE TABLE t (é int DEFAULT é(1))",
	}
	var files []string
	for _, glob := range []string{"testdata/roundtrip/*.sql", corpusDir + "/*/*.sql", synthDir + "/*.sql"} {
		m, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 6 {
		t.Fatalf("only %d corpus files", len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		st, err := splitStatements(string(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, s := range st {
			texts = append(texts, s.Text, s.Expanded)
		}
	}
	plain := 0
	for _, s := range texts {
		if !plainForVitess(s) {
			continue
		}
		plain++
		if got, changed := rewriteForVitess(s); changed || got != s {
			t.Errorf("plainForVitess took a text that rewrites:\n%s\n->\n%s", s, got)
		}
	}
	if plain == 0 || plain == len(texts) {
		t.Fatalf("%d of %d texts plain: the test proves nothing", plain, len(texts))
	}
}

func TestStatementKind(t *testing.T) {
	cases := map[string]string{
		"":                                     "an empty statement",
		"  \n ":                                "an empty statement",
		"create table t (id int)":              "CREATE TABLE",
		"CREATE OR REPLACE TABLE t (id int)":   "CREATE TABLE",
		"create temporary table t (id int)":    "CREATE TABLE",
		"CREATE DEFINER=`a`@`b` VIEW v AS 1":   "CREATE VIEW",
		"create unique index i on t (a)":       "CREATE INDEX",
		"CREATE TABLE IF NOT EXISTS t (a int)": "CREATE TABLE",
		"drop\ttable t":                        "DROP TABLE",
		"ALTER":                                "ALTER",
		"insert into t values (1)":             "INSERT",
		"CREATE PROCEDURE(":                    "CREATE PROCEDURE",
	}
	for sql, want := range cases {
		if got := statementKind(sql); got != want {
			t.Errorf("statementKind(%q) = %q, want %q", sql, got, want)
		}
	}
}
