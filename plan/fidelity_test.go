package plan

import (
	"context"
	"database/sql"
	"regexp"
	"slices"
	"testing"

	"github.com/ternhq/tern/internal/testdb"
)

// fidelityCase is a live schema and a desired one that differ in a way
// the plan must carry out exactly.
type fidelityCase struct {
	name, live, desired string
}

// fidelityCases are the differences the pre-comparison and the differ
// have missed or mis-planned before. Every one is planned both ways (with
// the skip and with every table through the shadow) and applied.
var fidelityCases = []fidelityCase{
	{"engine defaulted", "CREATE TABLE t (id int NOT NULL PRIMARY KEY) ENGINE=MyISAM;", "CREATE TABLE t (id int NOT NULL PRIMARY KEY);"},
	{"avg_row_length removed", "CREATE TABLE t (id int NOT NULL PRIMARY KEY) AVG_ROW_LENGTH=100;", "CREATE TABLE t (id int NOT NULL PRIMARY KEY);"},
	{"row_format removed", "CREATE TABLE t (id int NOT NULL PRIMARY KEY) ROW_FORMAT=COMPACT;", "CREATE TABLE t (id int NOT NULL PRIMARY KEY);"},
	{"comment removed", "CREATE TABLE t (id int NOT NULL PRIMARY KEY) COMMENT='x';", "CREATE TABLE t (id int NOT NULL PRIMARY KEY);"},
	{"display width changed", "CREATE TABLE t (id int NOT NULL PRIMARY KEY, a int(5));", "CREATE TABLE t (id int NOT NULL PRIMARY KEY, a int(8));"},
	{"display width to default", "CREATE TABLE t (id int NOT NULL PRIMARY KEY, a int(5));", "CREATE TABLE t (id int NOT NULL PRIMARY KEY, a int);"},
	{"zerofill width changed", "CREATE TABLE t (id int NOT NULL PRIMARY KEY, a int(5) unsigned zerofill);", "CREATE TABLE t (id int NOT NULL PRIMARY KEY, a int(7) unsigned zerofill);"},
	// Desired files written as the server shows them, so the skip compares
	// them with the live ones instead of sending them to the shadow.
	{"normalized: display width to default", "CREATE TABLE t (id int(11) NOT NULL, a int(5) DEFAULT NULL, PRIMARY KEY (id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;",
		"CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `a` int DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;"},
	{"normalized: display width changed", "CREATE TABLE t (id int(11) NOT NULL, a int(5) DEFAULT NULL, PRIMARY KEY (id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;",
		"CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `a` int(6) DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;"},
	{"normalized: engine defaulted", "CREATE TABLE t (id int(11) NOT NULL, PRIMARY KEY (id)) ENGINE=MyISAM DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;",
		"CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;"},
	{"normalized: avg_row_length removed", "CREATE TABLE t (id int(11) NOT NULL, PRIMARY KEY (id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci AVG_ROW_LENGTH=100;",
		"CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;"},
	{"normalized: unchanged", "CREATE TABLE t (id int(11) NOT NULL, a int(5) DEFAULT NULL, PRIMARY KEY (id)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;",
		"CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `a` int(5) DEFAULT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;"},
	{"live default curdate", "CREATE TABLE t (id int NOT NULL PRIMARY KEY, d date DEFAULT (CURRENT_DATE));", "CREATE TABLE t (id int NOT NULL PRIMARY KEY, d date DEFAULT (CURRENT_DATE), b int);"},
	{"serial", "CREATE TABLE u (id int NOT NULL PRIMARY KEY);", "CREATE TABLE u (id int NOT NULL PRIMARY KEY); CREATE TABLE t (id SERIAL, v double precision, n national varchar(10));"},
	{"uuid inet6", "CREATE TABLE t (id int NOT NULL PRIMARY KEY);", "CREATE TABLE t (id int NOT NULL PRIMARY KEY, u uuid, ip inet6);"},
	{"compressed", "CREATE TABLE t (id int NOT NULL PRIMARY KEY);", "CREATE TABLE t (id int NOT NULL PRIMARY KEY, b blob COMPRESSED);"},
	{"system versioning", "CREATE TABLE u (id int NOT NULL PRIMARY KEY);", "CREATE TABLE u (id int NOT NULL PRIMARY KEY); CREATE TABLE t (id int NOT NULL PRIMARY KEY, x int) WITH SYSTEM VERSIONING;"},
	{"wide column added", "CREATE TABLE t (id int NOT NULL PRIMARY KEY);", "CREATE TABLE t (id int NOT NULL PRIMARY KEY, a int(4) unsigned zerofill, b tinyint(1), c bigint);"},
	{"compressed column modified", "CREATE TABLE t (id int NOT NULL PRIMARY KEY, b text);", "CREATE TABLE t (id int NOT NULL PRIMARY KEY, b text COMPRESSED);"},
	{"system versioning added", "CREATE TABLE t (id int NOT NULL PRIMARY KEY, x int);", "CREATE TABLE t (id int NOT NULL PRIMARY KEY, x int) WITH SYSTEM VERSIONING;"},
	{"json column added", "CREATE TABLE t (id int NOT NULL PRIMARY KEY);", "CREATE TABLE t (id int NOT NULL PRIMARY KEY, doc json);"},
	{"json table created", "CREATE TABLE u (id int NOT NULL PRIMARY KEY);", "CREATE TABLE u (id int NOT NULL PRIMARY KEY); CREATE TABLE t (id int NOT NULL PRIMARY KEY, doc json NOT NULL);"},
	{"json unchanged", "CREATE TABLE t (id int NOT NULL PRIMARY KEY, doc json);", "CREATE TABLE t (id int NOT NULL PRIMARY KEY, doc json, b int);"},
}

func TestSkipAsStrictAsShadow(t *testing.T) {
	ctx := context.Background()
	srv := testdb.Server(t)
	for _, tc := range fidelityCases {
		t.Run(tc.name, func(t *testing.T) {
			live, _ := testdb.Open(t, "plan_fid")
			execAll(t, live, tableSQL(mustParse(t, tc.live)))
			d := mustParse(t, tc.desired)
			skip, err := (&Planner{}).Diff(ctx, d, live, srv)
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			full, err := (&Planner{FullShadow: true}).Diff(ctx, d, live, srv)
			if err != nil {
				t.Fatalf("plan, full shadow: %v", err)
			}
			if !slices.Equal(ddl(skip), ddl(full)) {
				t.Errorf("the skip plans %q, every table through the shadow plans %q", ddl(skip), ddl(full))
			}
			execAll(t, live, ddl(full))
			want, _ := testdb.Open(t, "plan_fidw")
			execAll(t, want, tableSQL(d))
			if got, w := showCreateAll(t, live), showCreateAll(t, want); !mapsEqual(got, w) {
				t.Errorf("after the plan the schema is not the desired one:\n got %q\nwant %q", got, w)
			}
			again, err := (&Planner{}).Diff(ctx, d, live, srv)
			if err != nil {
				t.Fatalf("re-plan: %v", err)
			}
			if len(again) > 0 {
				t.Errorf("re-plan after applying has changes: %q", ddl(again))
			}
		})
	}
}

// showCreateAll returns the SHOW CREATE TABLE of every table of db's
// default schema, without AUTO_INCREMENT counters.
func showCreateAll(t *testing.T, db *sql.DB) map[string]string {
	t.Helper()
	rows, err := db.Query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	defs, err := showCreateTables(context.Background(), db, "", names, 1)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range defs {
		defs[k] = autoIncRE.ReplaceAllString(v, "")
	}
	return defs
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

var autoIncRE = regexp.MustCompile(` AUTO_INCREMENT=\d+`)
