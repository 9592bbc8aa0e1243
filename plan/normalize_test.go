package plan

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/testdb"
	"vitess.io/vitess/go/vt/sqlparser"
)

// TestPreComparison checks, on the real server, which desired tables the
// pre-comparison lets skip the shadow schema: only those the server
// renders exactly like the live table. For every case the partial-shadow
// plan must equal the full-shadow plan, and the full-shadow plan says
// whether the two definitions really differ.
func TestPreComparison(t *testing.T) {
	const tail = ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"
	const parent = "CREATE TABLE p (id int NOT NULL PRIMARY KEY) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;\n"
	tests := []struct {
		name          string
		live, desired string // the table t; both also hold the table p
		// skip: the pre-comparison takes t from the live schema.
		skip bool
		// changes: the full-shadow plan has DDL for t.
		changes bool
	}{
		// Provably the same column or key: no shadow.
		{name: "json", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json" + tail,
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json" + tail, skip: true},
		{name: "json in a latin1 table", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json) DEFAULT CHARSET=latin1",
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json) DEFAULT CHARSET=latin1", skip: true},
		{name: "json with attributes", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json NOT NULL DEFAULT '{}' COMMENT 'a (json) CHECK', k json DEFAULT NULL INVISIBLE" + tail,
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json NOT NULL DEFAULT '{}' COMMENT 'a (json) CHECK', k json INVISIBLE" + tail, skip: true},
		{name: "json column named with a backtick", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, `we``ird` json" + tail,
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, `we``ird` json" + tail, skip: true},
		{name: "json spelled out live", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin CHECK (json_valid(j))" + tail,
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json" + tail, skip: true},
		{name: "json beside a column check", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json, n int CHECK (n > 0), k json" + tail,
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json, n int CHECK (n > 0), k json" + tail, skip: true},
		{name: "on delete restrict", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, p_id int, CONSTRAINT fk FOREIGN KEY (p_id) REFERENCES p (id)" + tail,
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, p_id int, CONSTRAINT fk FOREIGN KEY (p_id) REFERENCES p (id) ON DELETE RESTRICT ON UPDATE RESTRICT" + tail, skip: true},
		{name: "decimal default", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, d decimal(12,2) NOT NULL DEFAULT 0" + tail,
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, d decimal(12,2) NOT NULL DEFAULT 0" + tail, skip: true},

		// Different, or not provably the same: through the shadow.
		{name: "json with another collation", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json COLLATE utf8mb4_general_ci" + tail,
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json" + tail, changes: true},
		{name: "json with a check of its own live", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json CHECK (j <> '[]')" + tail,
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json" + tail, changes: true},
		{name: "json with a check of its own desired", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json" + tail,
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json CHECK (j <> '[]')" + tail, changes: true},
		{name: "longtext utf8mb4_bin without the check", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" + tail,
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json" + tail, changes: true},
		{name: "json to longtext", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json" + tail,
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin" + tail, changes: true},
		{name: "json to not null", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json" + tail,
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json NOT NULL" + tail, changes: true},
		{name: "json check text inside a comment", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin COMMENT ' CHECK (json_valid(`j`))'" + tail,
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json COMMENT ' CHECK (json_valid(`j`))'" + tail, changes: true},
		{name: "json check on another column", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, x int CHECK (json_valid(j))" + tail,
			// The CHECK sits on x in live and on j in desired: MariaDB shows
			// them apart, and the plan moves it.
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json, x int" + tail, changes: true},
		{name: "generated json", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json, v json AS (j) VIRTUAL" + tail,
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, j json, v json AS (j) VIRTUAL" + tail},
		{name: "no action is not restrict", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, p_id int, CONSTRAINT fk FOREIGN KEY (p_id) REFERENCES p (id) ON DELETE NO ACTION" + tail,
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, p_id int, CONSTRAINT fk FOREIGN KEY (p_id) REFERENCES p (id) ON DELETE RESTRICT" + tail, changes: true},
		{name: "restrict is not no action", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, p_id int, CONSTRAINT fk FOREIGN KEY (p_id) REFERENCES p (id)" + tail,
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, p_id int, CONSTRAINT fk FOREIGN KEY (p_id) REFERENCES p (id) ON UPDATE NO ACTION" + tail, changes: true},
		{name: "restrict is not cascade", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, p_id int, CONSTRAINT fk FOREIGN KEY (p_id) REFERENCES p (id) ON DELETE RESTRICT" + tail,
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, p_id int, CONSTRAINT fk FOREIGN KEY (p_id) REFERENCES p (id) ON DELETE CASCADE" + tail, changes: true},
		{name: "decimal default with more decimals", live: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, d decimal(12,2) NOT NULL DEFAULT 0" + tail,
			desired: "CREATE TABLE t (id int NOT NULL PRIMARY KEY, d decimal(12,2) NOT NULL DEFAULT 0.004" + tail},
	}
	ctx := context.Background()
	srv := testdb.Server(t)
	env, err := newEnv()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live, _ := testdb.Open(t, "plan_precmp")
			execAll(t, live, tableSQL(mustParse(t, parent+tt.live+";")))
			d := mustParse(t, parent+tt.desired+";")
			ls, err := (&Planner{}).readLive(ctx, live)
			if err != nil {
				t.Fatal(err)
			}
			if !ls.mariadb {
				t.Fatal("these cases are about MariaDB's renderings; the test server is not MariaDB")
			}
			var desired Table
			for _, tb := range d.Tables {
				if tb.Name == "t" {
					desired = tb
				}
			}
			if got := !maybeChanged(env, desired, ls.defs, true); got != tt.skip {
				t.Errorf("skips the shadow = %v, want %v\nlive:    %s\ndesired: %s", got, tt.skip, ls.defs["t"], desired.SQL)
			}
			if tt.skip && !maybeChanged(env, desired, ls.defs, false) && strings.Contains(tt.name, "json") {
				t.Error("a MySQL live server must not fold MariaDB's JSON rendering")
			}
			partial, err := (&Planner{}).Diff(ctx, d, live, srv)
			if err != nil {
				t.Fatalf("partial-shadow plan: %v", err)
			}
			full, err := (&Planner{FullShadow: true}).Diff(ctx, d, live, srv)
			if err != nil {
				t.Fatalf("full-shadow plan: %v", err)
			}
			if !slices.Equal(ddl(partial), ddl(full)) {
				t.Errorf("partial and full shadow differ:\npartial %q\nfull    %q", ddl(partial), ddl(full))
			}
			if got := len(full) > 0; got != tt.changes {
				t.Errorf("full-shadow plan has changes = %v, want %v: %q", got, tt.changes, ddl(full))
			}
		})
	}
}

func TestFoldJSONLine(t *testing.T) {
	tests := []struct {
		line, name, want string
	}{
		{"  `j` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL CHECK (json_valid(`j`)),", "j", "  `j` json DEFAULT NULL,"},
		{"  `j` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL CHECK (json_valid(`j`))", "j", "  `j` json NOT NULL"},
		{"  `a``b` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin CHECK (json_valid(`a``b`)),", "a`b", "  `a``b` json,"},
		// Not MariaDB's JSON rendering.
		{"  `j` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL CHECK (json_valid(`k`)),", "", ""},
		{"  `j` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci DEFAULT NULL CHECK (json_valid(`j`)),", "", ""},
		{"  `j` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL,", "", ""},
		{"  `j` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_binx CHECK (json_valid(`j`)),", "", ""},
		{"  `j` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin COMMENT 'x CHECK (json_valid(`j`))',", "", ""},
		{"  CONSTRAINT `c` CHECK (json_valid(`j`))", "", ""},
	}
	for _, tt := range tests {
		name, got, ok := foldJSONLine(tt.line)
		if ok != (tt.want != "") || got != tt.want || name != tt.name {
			t.Errorf("foldJSONLine(%q) = %q, %q, %v; want %q, %q", tt.line, name, got, ok, tt.name, tt.want)
		}
	}
}

// TestFoldParsedIsTheParseOfTheFoldedText: for every table of synth500
// and the round-trip corpus that MariaDB shows with its JSON rendering,
// the fold made on the parse (foldParsed) is exactly the parse of the
// folded text, so the pre-comparison may take it instead of parsing again.
func TestFoldParsedIsTheParseOfTheFoldedText(t *testing.T) {
	srv := testdb.Server(t)
	p := newParser()
	folded := 0
	for i, path := range []string{"../testdata/bench/synth500/live.sql", "testdata/roundtrip/desired.sql", "testdata/roundtrip/variant.sql"} {
		_, schema := testdb.Open(t, fmt.Sprintf("plan_fold_parsed_%d", i))
		d := loadFile(t, srv, schema, path, defaultConnections)
		names := make([]string, len(d.Tables))
		for j, tb := range d.Tables {
			names[j] = tb.Name
		}
		defs, err := showCreateTables(context.Background(), srv, schema, names, defaultConnections)
		if err != nil {
			t.Fatal(err)
		}
		for name, def := range defs {
			if !strings.Contains(def, "json_valid(") {
				continue
			}
			form, _ := vitessForm(def)
			ct, err := parseCreateTable(p, form)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			text, out, _, ok := foldJSONText(p, def, ct)
			if !ok {
				continue
			}
			textForm, _ := vitessForm(text)
			want, err := parseCreateTable(p, textForm)
			if err != nil {
				t.Fatalf("%s: the folded text does not parse: %v\n%s", name, err, text)
			}
			if !sqlparser.Equals.RefOfCreateTable(out, want) {
				t.Errorf("%s: folded on the parse:\n%s\nthe folded text parsed:\n%s", name, sqlparser.CanonicalString(out), sqlparser.CanonicalString(want))
			}
			folded++
		}
	}
	if folded < 50 {
		t.Fatalf("only %d tables folded", folded)
	}
}
