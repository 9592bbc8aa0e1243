package plan

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// A plain table goes through the shadow as a TEMPORARY table on MariaDB:
// its SHOW CREATE TABLE is the real table's with TEMPORARY added (both
// come from the same table definition), and creating and dropping it
// costs a tenth of a real one, which writes the server's DDL log, its .frm
// and its tablespace, and syncs each. The real tables of a plan's shadow
// are the server's serial bottleneck (benchmarks/scale.md).
// A table is plain when none of tempUnsafe occurs in its text: foreign
// keys (a temporary table has none, and a parent must be real for the
// server to check its children), and what InnoDB refuses or treats
// differently in a temporary table. The words are matched anywhere, also
// in names and comments, which only sends a plain table the real way.
// A temporary create the server refuses is retried as a real one.
var tempUnsafe = []string{
	"foreign", "references", "partition", "fulltext", "spatial", "row_format", "key_block_size",
	"compress", "encrypt", "directory", "versioning", "period", "page_", "transactional",
	"union", "tablespace", "stats_", "sequence", "engine", "/*", "--", "#",
	"geometry", "point", "linestring", "polygon", "vector",
}

var (
	createTablePrefix = regexp.MustCompile(`(?i)^CREATE\s+TABLE\s`)
	engineInnoDB      = regexp.MustCompile(`(?i)\bENGINE\s*=?\s*InnoDB\b`)
)

// tempPrefix starts SHOW CREATE TABLE of a temporary table.
const tempPrefix = "CREATE TEMPORARY TABLE "

// plainTable reports whether t may go through the shadow as a temporary
// table: no word of tempUnsafe, ENGINE=InnoDB aside, and no other loaded
// table's foreign key references it (referenced).
func plainTable(t Table, referenced map[string]bool) bool {
	if referenced[strings.ToLower(t.Name)] || !createTablePrefix.MatchString(t.SQL) {
		return false
	}
	text := strings.ToLower(engineInnoDB.ReplaceAllString(t.SQL, ""))
	for _, w := range tempUnsafe {
		if strings.Contains(text, w) {
			return false
		}
	}
	return true
}

// tempShadowOK reports whether the shadow server creates a temporary
// table as it creates a real one: MariaDB (the one this is tested on),
// InnoDB the default engine of both kinds of table.
func tempShadowOK(ctx context.Context, shadow *sql.DB) (bool, error) {
	var version, engine string
	var tmpEngine sql.NullString
	if err := shadow.QueryRowContext(ctx, "SELECT VERSION(), @@default_storage_engine, @@default_tmp_storage_engine").Scan(&version, &engine, &tmpEngine); err != nil {
		if isServerError(err) {
			return false, nil // a server without these variables: real tables
		}
		return false, fmt.Errorf("read the shadow server's engines: %w", err)
	}
	tmp := tmpEngine.String
	return strings.Contains(strings.ToLower(version), "mariadb") && strings.EqualFold(engine, "InnoDB") &&
		(tmp == "" || strings.EqualFold(tmp, "InnoDB")), nil
}

// splitPlain splits tables (in order) into the plain ones and the others.
func splitPlain(tables []Table) (plain, real []Table) {
	referenced := map[string]bool{}
	for _, t := range tables {
		for _, r := range referencedNames(t.SQL) {
			referenced[strings.ToLower(r)] = true
		}
	}
	for _, t := range tables {
		if plainTable(t, referenced) {
			plain = append(plain, t)
		} else {
			real = append(real, t)
		}
	}
	return plain, real
}

// loadTemp creates each of tables in schema as a temporary table over up
// to n connections and returns their SHOW CREATE TABLE, TEMPORARY taken
// out. A table the server refuses as temporary is created for real on
// the same connection (and read from there). The connections are
// discarded afterwards, which drops their temporary tables.
func loadTemp(ctx context.Context, db *sql.DB, schema string, tables []Table, n int) (map[string]string, error) {
	var mu sync.Mutex
	out := make(map[string]string, len(tables))
	if len(tables) == 0 {
		return out, nil
	}
	err := loadShadowEach(ctx, db, schema, tables, n, func(ctx, qctx context.Context, conn *sql.Conn, t Table) error {
		def, err := createTemp(ctx, qctx, conn, t)
		if err == nil {
			mu.Lock()
			out[t.Name] = def
			mu.Unlock()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// createTemp creates t on conn as a temporary table, or for real when the
// server refuses that, and returns its SHOW CREATE TABLE as a real
// table's.
func createTemp(ctx, qctx context.Context, conn *sql.Conn, t Table) (string, error) {
	_, err := conn.ExecContext(qctx, createTablePrefix.ReplaceAllLiteralString(t.SQL, tempPrefix))
	if err = quietErr(ctx, err); err != nil && !isServerError(err) {
		return "", fmt.Errorf("load shadow schema: %w", err)
	}
	isTemp := err == nil
	if !isTemp {
		if err := createTable(ctx, qctx, conn, t); err != nil {
			return "", err
		}
	}
	var name, def string
	if err := conn.QueryRowContext(qctx, "SHOW CREATE TABLE "+quoteIdent(t.Name)).Scan(&name, &def); err != nil {
		return "", fmt.Errorf("read shadow schema: show create table %s: %w", t.Name, quietErr(ctx, err))
	}
	if !isTemp {
		return def, nil
	}
	rest, ok := strings.CutPrefix(def, tempPrefix)
	if !ok {
		return "", fmt.Errorf("read shadow schema: show create table %s: a temporary table shown as %.40q", t.Name, def)
	}
	return "CREATE TABLE " + rest, nil
}
