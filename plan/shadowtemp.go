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
	out := make(map[string]string, len(tables))
	if len(tables) == 0 {
		return out, nil
	}
	var (
		mu   sync.Mutex
		next int
		errs []error
		wg   sync.WaitGroup
	)
	ctx, abort := context.WithCancel(ctx)
	defer abort()
	for range min(n, len(tables)) {
		wg.Go(func() {
			err := tempWorker(ctx, db, schema, func() (Table, bool) {
				mu.Lock()
				defer mu.Unlock()
				if next >= len(tables) || len(errs) > 0 {
					return Table{}, false
				}
				next++
				return tables[next-1], true
			}, func(name, def string) {
				mu.Lock()
				out[name] = def
				mu.Unlock()
			})
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				abort()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if isServerError(err) {
			return nil, err
		}
	}
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return out, nil
}

// tempWorker is one connection of loadTemp: it takes tables from next
// until it reports none, and hands each definition to got.
func tempWorker(ctx context.Context, db *sql.DB, schema string, next func() (Table, bool), got func(name, def string)) error {
	conn, qctx, discard, err := loadConn(ctx, db, schema)
	if err != nil {
		return err
	}
	defer discard() // and with the connection its temporary tables
	exec := func(q string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, err := conn.ExecContext(qctx, q)
		return quietErr(ctx, err)
	}
	for t, ok := next(); ok; t, ok = next() {
		err := exec(createTablePrefix.ReplaceAllLiteralString(t.SQL, tempPrefix))
		if err != nil && !isServerError(err) {
			return fmt.Errorf("load shadow schema: %w", err)
		}
		isTemp := err == nil
		if !isTemp {
			if err := exec(t.SQL); err != nil {
				if !isServerError(err) {
					return fmt.Errorf("load shadow schema: %w", err)
				}
				return fmt.Errorf("%s:%d: table %s: the server refused it: %w", t.File, t.Line, t.Name, err)
			}
		}
		var name, def string
		if err := conn.QueryRowContext(qctx, "SHOW CREATE TABLE "+quoteIdent(t.Name)).Scan(&name, &def); err != nil {
			return fmt.Errorf("read shadow schema: show create table %s: %w", t.Name, quietErr(ctx, err))
		}
		if isTemp {
			rest, ok := strings.CutPrefix(def, tempPrefix)
			if !ok {
				return fmt.Errorf("read shadow schema: show create table %s: a temporary table shown as %.40q", t.Name, def)
			}
			def = "CREATE TABLE " + rest
		}
		got(t.Name, def)
	}
	return nil
}
