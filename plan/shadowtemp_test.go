package plan

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/testdb"
)

func TestPlainTable(t *testing.T) {
	const base = "CREATE TABLE `t` (`id` int NOT NULL, `name` varchar(20) DEFAULT NULL, PRIMARY KEY (`id`), KEY `name` (`name`))"
	cases := []struct {
		name, sql string
		plain     bool
	}{
		{"plain", base, true},
		{"engine innodb", base + " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4", true},
		{"lower case create", strings.Replace(base, "CREATE TABLE", "create  table", 1), true},
		{"foreign key", strings.Replace(base, "KEY `name` (`name`)", "KEY `name` (`name`), CONSTRAINT `f` FOREIGN KEY (`id`) REFERENCES `p` (`id`)", 1), false},
		{"other engine", base + " ENGINE=MyISAM", false},
		{"partitioned", base + " PARTITION BY HASH (`id`) PARTITIONS 2", false},
		{"fulltext", strings.Replace(base, "KEY `name`", "FULLTEXT KEY `name`", 1), false},
		{"row format", base + " ROW_FORMAT=COMPRESSED", false},
		{"system versioning", base + " WITH SYSTEM VERSIONING", false},
		{"executable comment", base + " /*!50100 COMMENT 'x' */", false},
		{"spatial column", strings.Replace(base, "varchar(20)", "point", 1), false},
		{"compressed column", strings.Replace(base, "varchar(20)", "varchar(20) COMPRESSED", 1), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := plainTable(Table{Name: "t", SQL: tc.sql}, nil); got != tc.plain {
				t.Errorf("plainTable(%s) = %v, want %v", tc.sql, got, tc.plain)
			}
		})
	}
	parent := Table{Name: "p", SQL: "CREATE TABLE `p` (`id` int NOT NULL, PRIMARY KEY (`id`))"}
	child := Table{Name: "c", SQL: "CREATE TABLE `c` (`id` int NOT NULL, PRIMARY KEY (`id`), CONSTRAINT `f` FOREIGN KEY (`id`) REFERENCES `p` (`id`))"}
	alone := Table{Name: "a", SQL: "CREATE TABLE `a` (`id` int NOT NULL, PRIMARY KEY (`id`))"}
	plain, real := splitPlain([]Table{parent, child, alone})
	if len(plain) != 1 || plain[0].Name != "a" || len(real) != 2 {
		t.Errorf("splitPlain: plain %v, real %v; want only a plain (p is a parent, c a child)", plain, real)
	}
}

// TestTempShadowMatchesReal: every table of the round-trip corpus and
// synth500 that goes through the shadow as a temporary table shows the
// very SHOW CREATE TABLE that it shows created for real; a table the
// server refuses as temporary (a FULLTEXT index) is created for real and
// shown as such; and a table the server refuses either way is reported
// as the real load reports it.
func TestTempShadowMatchesReal(t *testing.T) {
	ctx := context.Background()
	srv := testdb.Server(t)
	if ok, err := tempShadowOK(ctx, srv); err != nil || !ok {
		t.Fatalf("tempShadowOK = %v, %v on the test server, want true", ok, err)
	}
	var tables []Table
	for _, path := range []string{"testdata/roundtrip/desired.sql", "testdata/roundtrip/variant.sql", "../testdata/bench/synth500/desired.sql"} {
		plain, _ := splitPlain(readDesired(t, path).Tables)
		tables = append(tables, plain...)
	}
	if len(tables) < 200 {
		t.Fatalf("only %d plain tables in the corpus", len(tables))
	}
	fulltext := Table{Name: "ft", SQL: "CREATE TABLE `ft` (`id` int NOT NULL, `body` text, PRIMARY KEY (`id`), FULLTEXT KEY `body` (`body`)) ENGINE=InnoDB"}
	for i, tb := range tables {
		tables[i].Name = strings.ToLower(tb.Name) // the corpora share names
	}
	byName := map[string]Table{}
	for _, tb := range append(tables, fulltext) {
		byName[tb.Name] = tb
	}
	var load []Table
	for _, tb := range byName {
		load = append(load, tb)
	}
	// Each table is loaded on its own, as the corpora reuse names.
	for _, tb := range load {
		schemaTemp, err := shadowName(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		schemaReal := schemaTemp + "_r"
		execAll(t, srv, []string{"CREATE DATABASE " + quoteIdent(schemaTemp), "CREATE DATABASE " + quoteIdent(schemaReal)})
		got, err := loadTemp(ctx, srv, schemaTemp, []Table{tb}, 1)
		if err != nil {
			t.Fatalf("%s: %v", tb.Name, err)
		}
		if err := loadShadow(ctx, srv, schemaReal, []Table{tb}, 1); err != nil {
			t.Fatalf("%s: %v", tb.Name, err)
		}
		want, err := showCreateTables(ctx, srv, schemaReal, []string{tb.Name}, 1)
		if err != nil {
			t.Fatal(err)
		}
		if got[tb.Name] != want[tb.Name] {
			t.Errorf("%s as a temporary table:\n%s\nfor real:\n%s", tb.Name, got[tb.Name], want[tb.Name])
		}
		execAll(t, srv, []string{"DROP DATABASE " + quoteIdent(schemaTemp), "DROP DATABASE " + quoteIdent(schemaReal)})
	}
	schema, err := shadowName(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	execAll(t, srv, []string{"CREATE DATABASE " + quoteIdent(schema)})
	defer execAll(t, srv, []string{"DROP DATABASE " + quoteIdent(schema)})
	bad := Table{Name: "bad", File: "bad.sql", Line: 3, SQL: "CREATE TABLE `bad` (`id` int NOT NULL, KEY (`nope`))"}
	_, err = loadTemp(ctx, srv, schema, []Table{bad}, 1)
	if err == nil || !strings.HasPrefix(err.Error(), "bad.sql:3: table bad: the server refused it: ") || !isServerError(err) {
		t.Fatalf("loadTemp of a bad table: %v", err)
	}
}
