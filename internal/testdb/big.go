package testdb

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// BigTable creates table (id INT PRIMARY KEY AUTO_INCREMENT, v INT, s
// VARCHAR(100)) in db's default database with at least rows rows, built
// fast by doubling with INSERT ... SELECT, so that a copying ALTER of it
// takes seconds.
func BigTable(tb testing.TB, db *sql.DB, table string, rows int) {
	tb.Helper()
	stmts := []string{
		"CREATE TABLE `" + table + "` (id INT NOT NULL AUTO_INCREMENT, v INT NOT NULL, s VARCHAR(100) NOT NULL, PRIMARY KEY (id)) ENGINE=InnoDB",
		"INSERT INTO `" + table + "` (v, s) VALUES (1, REPEAT('x', 100))",
	}
	for n := 1; n < rows; n *= 2 {
		stmts = append(stmts, "INSERT INTO `"+table+"` (v, s) SELECT v + 1, s FROM `"+table+"`")
	}
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			tb.Fatalf("%s: %v", s, err)
		}
	}
}

// WaitForStage polls the process list until a session in database name
// runs a statement containing text whose STATE starts with stage (for
// example "copy to tmp table"), and returns its connection id. It fails the
// test after about 60 s.
func WaitForStage(tb testing.TB, db *sql.DB, name, text, stage string) int64 {
	tb.Helper()
	like := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	for i := 0; ; i++ {
		var id int64
		err := db.QueryRow(`SELECT ID FROM information_schema.PROCESSLIST
			WHERE DB = ? AND INFO LIKE ? AND STATE LIKE ? AND ID <> CONNECTION_ID() LIMIT 1`,
			name, "%"+like.Replace(text)+"%", like.Replace(stage)+"%").Scan(&id)
		if err == nil {
			return id
		}
		if !errors.Is(err, sql.ErrNoRows) {
			tb.Fatal(err)
		}
		if i > 6000 {
			tb.Fatalf("no statement %q ever reached stage %q", text, stage)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Running returns the process-list rows of database name whose statement
// contains text, as "id: state: info" lines ("" when none runs).
func Running(tb testing.TB, db *sql.DB, name, text string) string {
	tb.Helper()
	like := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	rows, err := db.Query(`SELECT ID, COALESCE(STATE, ''), INFO FROM information_schema.PROCESSLIST
		WHERE DB = ? AND INFO LIKE ? AND ID <> CONNECTION_ID()`, name, "%"+like.Replace(text)+"%")
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id int64
		var state, info string
		if err := rows.Scan(&id, &state, &info); err != nil {
			tb.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d: %s: %s", id, state, info))
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return strings.Join(out, "\n")
}
