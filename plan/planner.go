package plan

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"vitess.io/vitess/go/mysql/collations"
	"vitess.io/vitess/go/vt/schemadiff"
	"vitess.io/vitess/go/vt/sqlparser"
	"vitess.io/vitess/go/vt/vtenv"
)

// ShadowPrefix starts the name of every shadow schema. The shadow server's
// user needs all privileges on schemas matching `_tern_shadow_%`.
const ShadowPrefix = "_tern_shadow_"

// defaultConnections is how many connections load the shadow and read
// table definitions: NOTES.md measured 6 loading connections as the floor
// on two cores, and more buy nothing there.
const defaultConnections = 6

// tempConnections is how many connections create a shadow's temporary
// tables (shadowtemp.go), beside the loading ones: such a create writes
// nothing to disk, and two keep up with the real tables' loading.
const tempConnections = 2

// Planner plans desired schemas against live ones. The zero value is
// ready to use.
type Planner struct {
	// Logger receives one line per plan. Default: discard.
	Logger *slog.Logger
	// Connections is how many connections load the shadow schema and read
	// definitions, on each server. Default 6.
	Connections int
	// FullShadow loads every desired table into the shadow schema, parses
	// every definition and orders the changes over the whole schema: the
	// plain reference the default path is tested against. By default only
	// the tables that may differ from the live ones (and their foreign-key
	// neighbours) are loaded, the others are taken from the live schema as
	// they are, and the changes are ordered among the tables they can
	// depend on, which yields the same plan faster.
	FullShadow bool
	// Limits bound the plan's input and time (the server config's
	// limits:). Default: DefaultLimits.
	Limits Limits
	// AllowedEngines are the storage engines a shadow table may come out
	// with (the target's allowed_engines). Default: DefaultEngines.
	AllowedEngines []string
}

func (p *Planner) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (p *Planner) conns() int {
	if p.Connections > 0 {
		return p.Connections
	}
	return defaultConnections
}

// change is one planned statement with the entities it goes between, for
// linting.
type change struct {
	stmt Statement
	diff schemadiff.EntityDiff
	// lifted names the foreign key this statement drops to be re-added
	// after its ends change type (fklift.go); "" for other statements.
	lifted string
}

// Plan diffs d against the live schema and lints the result. live is a
// pool whose default database is the live schema (read through
// DATABASE()); shadow is a pool on the server that holds the throwaway
// shadow schema (no default database needed). The shadow schema is always
// dropped before Plan returns.
func (p *Planner) Plan(ctx context.Context, d *Desired, live, shadow *sql.DB) (*Plan, error) {
	return p.plan(ctx, d, live, shadow, nil)
}

// plan is Plan; with cc not nil it also starts loading into cc the live
// tables the plan may alter, once the plan's own shadow is read.
func (p *Planner) plan(ctx context.Context, d *Desired, live, shadow *sql.DB, cc *costCopy) (*Plan, error) {
	lt, err := newLinter(d.Lint)
	if err != nil {
		return nil, err
	}
	changes, ls, err := p.diff(ctx, d, live, shadow, cc)
	if err != nil {
		return nil, err
	}
	pl := &Plan{desired: d, Statements: []Statement{}, Findings: []Finding{}, live: ls}
	for i, c := range changes {
		pl.Statements = append(pl.Statements, c.stmt)
		if c.diff != nil {
			pl.Findings = append(pl.Findings, lt.lint(i, c.diff)...)
		}
	}
	pl.Findings = append(pl.Findings, lt.liftFindings(changes)...)
	if pl.Findings, err = keepNonEmpty(ctx, live, pl.Findings); err != nil {
		return nil, err
	}
	return pl, nil
}

// Diff returns the ordered DDL that takes the live schema to d. The same
// change always renders the same text, so a resumed apply can compare a
// fresh Diff with the statements it was approved with.
func (p *Planner) Diff(ctx context.Context, d *Desired, live, shadow *sql.DB) ([]Statement, error) {
	changes, _, err := p.diff(ctx, d, live, shadow, nil)
	if err != nil {
		return nil, err
	}
	out := make([]Statement, len(changes))
	for i, c := range changes {
		out[i] = c.stmt
	}
	return out, nil
}

func (p *Planner) diff(ctx context.Context, d *Desired, live, shadow *sql.DB, cc *costCopy) (_ []change, _ *liveSchema, err error) {
	if d == nil || len(d.Tables) == 0 {
		return nil, nil, errors.New("plan: no desired tables")
	}
	ctx, overdue := p.Limits.planDeadline(ctx)
	defer func() { err = overdue(err) }()
	start := time.Now()
	env, err := newEnv()
	if err != nil {
		return nil, nil, err
	}
	parsed := parseDesired(env.Parser(), d)
	if err := missingReferences(d, parsed); err != nil {
		return nil, nil, err
	}
	ls, err := p.readLive(ctx, live)
	if err != nil {
		return nil, nil, err
	}
	ls.raw = maps.Clone(ls.defs)
	// unfolded holds the live tables whose JSON-like CHECKs do not fold:
	// their desired forms stay unfolded too, so both sides compare alike.
	unfolded := map[string]bool{}
	if ls.mariadb {
		names := sortedKeys(ls.defs)
		folded := make([]string, len(names))
		parses := make([]*sqlparser.CreateTable, len(names))
		parallel(len(names), func(i int) { folded[i], parses[i] = foldJSONDefParsed(env.Parser(), ls.defs[names[i]]) })
		ls.parsed = make(map[string]*sqlparser.CreateTable)
		for i, name := range names {
			ls.defs[name] = folded[i]
			if parses[i] != nil {
				ls.parsed[name] = parses[i]
			}
			if strings.Contains(folded[i], "json_valid(") {
				unfolded[name] = true
			}
		}
	}
	load, changed := p.mayDiffer(env, d, ls, parsed)
	toQueries := make([]string, 0, len(d.Tables))
	var shadowDefs map[string]string
	rawShadow := map[string]string{} // as the server showed them
	if len(load) > 0 {
		var dropped func() error
		shadowDefs, dropped, err = p.shadowDefs(ctx, shadow, ls.charset, ls.collation, load)
		if err != nil {
			return nil, nil, err
		}
		for name, def := range shadowDefs {
			rawShadow[name] = def
			if ls.mariadb && !unfolded[name] {
				shadowDefs[name] = foldJSONDef(env.Parser(), def)
			}
		}
		// The shadow schema is gone before Plan returns, whatever happens;
		// under PlanAndCost, before it returns (its drop overlaps the cost).
		defer func() {
			if cc != nil {
				cc.planDropped = dropped
				return
			}
			if derr := dropped(); derr != nil && err == nil {
				err = derr
			}
		}()
		if err := vetShadowDefs(shadowDefs, load, p.engines()); err != nil {
			return nil, nil, err
		}
		if cc != nil {
			var copies []Table
			for _, name := range changed {
				if def, ok := ls.raw[name]; ok {
					copies = append(copies, Table{Name: name, File: "live", SQL: def})
				}
			}
			cc.load(copies)
		}
	}
	loaded := time.Now()
	// Only the tables in scope are diffed (scope.go); nil: all of them.
	var inScope map[string]bool
	if !p.FullShadow {
		inScope = diffScope(d, parsed, ls.defs, shadowDefs, load, ls.mariadb)
	}
	keep := func(name string) bool { return inScope == nil || inScope[name] }
	var desiredTables []Table
	for _, t := range d.Tables {
		if !keep(t.Name) {
			continue
		}
		desiredTables = append(desiredTables, t)
		if def, ok := shadowDefs[t.Name]; ok {
			toQueries = append(toQueries, diffForm(def, ls.mariadb))
		} else {
			toQueries = append(toQueries, diffForm(ls.defs[t.Name], ls.mariadb))
		}
	}
	fromQueries := make([]string, 0, len(ls.defs))
	liveForms := make(map[string]string, len(ls.defs))
	for _, name := range sortedKeys(ls.defs) {
		if !keep(name) {
			continue
		}
		form := diffForm(ls.defs[name], ls.mariadb)
		liveForms[name] = form
		fromQueries = append(fromQueries, form)
	}
	from, err := schemadiff.NewSchemaFromQueries(env, fromQueries)
	if err != nil {
		return nil, nil, fmt.Errorf("read live schema %s: %w", ls.name, err)
	}
	var to *schemadiff.Schema
	if p.FullShadow {
		to, err = schemadiff.NewSchemaFromQueries(env, toQueries)
	} else {
		to, err = desiredSchema(env, from, desiredTables, toQueries, liveForms)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read desired schema: %w", err)
	}
	sd, err := schemadiff.DiffSchemas(env, from, to, diffHints())
	if err != nil {
		return nil, nil, fmt.Errorf("diff schemas: %w", err)
	}
	diffed := time.Now()
	scope := len(liveForms) + len(desiredTables)
	// The changes are ordered group by group when they fall apart into
	// groups (each in its own scope); else, and to lift keys, over the
	// scope of them all (narrowToChanges), which the groups do not need.
	narrowed := p.FullShadow
	narrow := func() {
		if !narrowed {
			sd, fromQueries, to, scope = narrowToChanges(env, sd, from, to, liveForms)
			narrowed = true
		}
	}
	var out []change
	ordered, groupScope, grouped, err := orderByComponents(ctx, env, sd, from, to, liveForms)
	if grouped {
		scope = groupScope
	} else if err == nil {
		narrow()
		ordered, err = orderDiffs(ctx, env, sd, fromQueries, to)
	}
	var impossible *schemadiff.ImpossibleApplyDiffOrderError
	if errors.As(err, &impossible) {
		narrow()
		out, err = orderLiftingKeys(ctx, env, fromQueries, to, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("order changes: %w", err)
	}
	for _, od := range ordered {
		for _, sub := range schemadiff.AllSubsequent(od) {
			for _, c := range splitKeyRecreate(change{stmt: statementOf(sub), diff: sub}) {
				// A new table is created as the server showed it in the
				// shadow: schemadiff's rendering drops what it does not
				// model (integer display widths, MariaDB's JSON form).
				if def, ok := rawShadow[c.stmt.Table]; ok && c.stmt.Kind == KindCreate {
					c.stmt.DDL = def
				}
				out = append(out, c)
			}
		}
	}
	out = append(out, missedChanges(ls.defs, shadowDefs, out)...)
	p.logger().Info("planned", "live", ls.name, "desired_tables", len(d.Tables), "live_tables", len(ls.defs),
		"shadow_tables", len(load), "diffed_tables", len(liveForms)+len(desiredTables), "ordered_tables", scope, "statements", len(out), "elapsed", time.Since(start).Round(time.Millisecond),
		"read_and_load", loaded.Sub(start).Round(time.Millisecond), "diff", diffed.Sub(loaded).Round(time.Millisecond),
		"order", time.Since(diffed).Round(time.Millisecond))
	return out, ls, nil
}

// desiredSchema builds the desired schema from toQueries, the
// definitions of tables in order. A definition that is the live one,
// word for word, shares the live schema's parsed table instead of being
// parsed again: the same text yields the same table, and schemadiff never
// modifies a table in place.
func desiredSchema(env *schemadiff.Environment, from *schemadiff.Schema, tables []Table, toQueries []string, liveDefs map[string]string) (*schemadiff.Schema, error) {
	entities := make([]schemadiff.Entity, 0, len(toQueries))
	for i, q := range toQueries {
		if def, ok := liveDefs[tables[i].Name]; ok && def == q {
			if t := from.Table(tables[i].Name); t != nil {
				entities = append(entities, t)
				continue
			}
		}
		stmt, err := env.Parser().ParseStrictDDL(q)
		if err != nil {
			return nil, err
		}
		ct, ok := stmt.(*sqlparser.CreateTable)
		if !ok {
			return nil, &schemadiff.UnsupportedStatementError{Statement: sqlparser.CanonicalString(stmt)}
		}
		t, err := schemadiff.NewCreateTableEntity(env, ct)
		if err != nil {
			return nil, err
		}
		entities = append(entities, t)
	}
	return schemadiff.NewSchemaFromEntities(env, entities)
}

// newEnv returns the schemadiff environment tern diffs in.
func newEnv() (*schemadiff.Environment, error) {
	ve, err := vtenv.New(vtenv.Options{MySQLServerVersion: mysqlVersion})
	if err != nil {
		return nil, fmt.Errorf("vitess environment: %w", err)
	}
	return schemadiff.NewEnv(ve, collations.MySQL8().DefaultConnectionCharset()), nil
}

// diffHints are the schemadiff rules of a declarative plan: what the files
// say, column order and constraint names included.
func diffHints() *schemadiff.DiffHints {
	return &schemadiff.DiffHints{
		AutoIncrementStrategy:       schemadiff.AutoIncrementIgnore,
		RangeRotationStrategy:       schemadiff.RangeRotationFullSpec,
		ConstraintNamesStrategy:     schemadiff.ConstraintNamesStrict,
		ColumnRenameStrategy:        schemadiff.ColumnRenameAssumeDifferent,
		TableRenameStrategy:         schemadiff.TableRenameAssumeDifferent,
		FullTextKeyStrategy:         schemadiff.FullTextKeyDistinctStatements,
		TableCharsetCollateStrategy: schemadiff.TableCharsetCollateStrict,
		AlterTableAlgorithmStrategy: schemadiff.AlterTableAlgorithmStrategyNone,
		EnumReorderStrategy:         schemadiff.EnumReorderStrategyAllow,
		// Try strict ordering first, then relax: circular foreign keys
		// (sakila's store and staff) can only be created with
		// FOREIGN_KEY_CHECKS=0.
		ForeignKeyCheckStrategy: schemadiff.ForeignKeyCheckStrategyIgnore,
		SubsequentDiffStrategy:  schemadiff.SubsequentDiffStrategyAllow,
	}
}

func statementOf(d schemadiff.EntityDiff) Statement {
	s := Statement{Table: d.EntityName()}
	s.DDL = dropCheckAsConstraint(restoreTypes(restoreCheckNames(d.CanonicalStatementString(), s.Table)))
	switch d.(type) {
	case *schemadiff.CreateTableEntityDiff:
		s.Kind = KindCreate
	case *schemadiff.DropTableEntityDiff:
		s.Kind = KindDrop
	default:
		s.Kind = KindAlter
	}
	s.Instant = d.InstantDDLCapability() == schemadiff.InstantDDLCapabilityPossible
	return s
}

// liveSchema is what a plan reads from the live server.
type liveSchema struct {
	name, charset, collation string
	// version is the live server's VERSION().
	version string
	// mariadb is true when the live server is MariaDB.
	mariadb bool
	// defs holds the SHOW CREATE TABLE of each base table, by name, as
	// the plan diffs it; raw as the server showed it.
	defs, raw map[string]string
	// parsed holds parses of defs the JSON fold made, for the one
	// judgeTable of each table to take (and modify).
	parsed map[string]*sqlparser.CreateTable
}

// readLive reads the live schema's name, default charset and collation,
// the server's flavour, and the SHOW CREATE TABLE of each base table.
func (p *Planner) readLive(ctx context.Context, live *sql.DB) (*liveSchema, error) {
	var (
		name sql.NullString
		ls   liveSchema
	)
	if err := live.QueryRowContext(ctx, "SELECT DATABASE(), @@character_set_database, @@collation_database, VERSION()").Scan(&name, &ls.charset, &ls.collation, &ls.version); err != nil {
		return nil, fmt.Errorf("read live schema: %w", err)
	}
	if !name.Valid || name.String == "" {
		return nil, errors.New("read live schema: the live connection has no default database")
	}
	ls.name = name.String
	ls.mariadb = strings.Contains(strings.ToLower(ls.version), "mariadb")
	// Tables named _tern_... are tern's own (an online copy's shadow or old
	// table): schema files cannot declare them, and no plan drops them.
	rows, err := live.QueryContext(ctx, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') AND LEFT(TABLE_NAME, 6) <> '_tern_'")
	if err != nil {
		return nil, fmt.Errorf("list live tables of %s: %w", ls.name, err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list live tables of %s: %w", ls.name, err)
		}
		tables = append(tables, t)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("list live tables of %s: %w", ls.name, err)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list live tables of %s: %w", ls.name, err)
	}
	ls.defs, err = showCreateTables(ctx, live, "", tables, p.conns())
	if err != nil {
		return nil, fmt.Errorf("read live schema %s: %w", ls.name, err)
	}
	return &ls, nil
}

// mayDiffer returns the desired tables that must go through the shadow:
// new tables, tables whose parsed desired definition differs from the live
// one, tables with executable comments (their meaning depends on the
// server), and the foreign-key parents and children of those whose change
// may touch the reference (neighbours.go). A table outside this set is
// identical to its live definition once the server normalizes it, so its
// live definition stands for it. changed lists the tables judged changed
// (the neighbours aside), in d's order. parsed is parseDesired's;
// mayDiffer modifies its definitions.
func (p *Planner) mayDiffer(env *schemadiff.Environment, d *Desired, ls *liveSchema, parsed map[string]*parsedTable) (load map[string]Table, changed []string) {
	load = map[string]Table{}
	if p.FullShadow {
		for _, t := range d.Tables {
			load[t.Name] = t
			changed = append(changed, t.Name)
		}
		return load, changed
	}
	byName := map[string]Table{}
	keyCols := keyColumns(parsed)
	keys := map[string]bool{}
	type judged struct{ changed, keys bool }
	verdicts := make([]judged, len(d.Tables))
	parallel(len(d.Tables), func(i int) {
		t := d.Tables[i]
		verdicts[i].changed, verdicts[i].keys = judgeTable(env, t, parsed[t.Name].ct, ls.parsed[t.Name], ls.defs, ls.mariadb, keyCols[t.Name])
	})
	for i, t := range d.Tables {
		byName[t.Name] = t
		if verdicts[i].changed {
			load[t.Name] = t
			keys[t.Name] = verdicts[i].keys
			changed = append(changed, t.Name)
		}
	}
	// Foreign-key neighbours, one level each way, so that the shadow
	// server checks every reference a change may touch.
	var extra []string
	for _, t := range d.Tables {
		child := t.Name
		for _, fk := range parsed[child].fks {
			_, childLoaded := load[child]
			_, parentLoaded := load[fk.parent]
			if childLoaded && keys[child] && !parentLoaded {
				extra = append(extra, fk.parent)
			}
			if parentLoaded && keys[fk.parent] && !childLoaded {
				extra = append(extra, child)
			}
		}
	}
	for _, n := range extra {
		if t, ok := byName[n]; ok {
			load[n] = t
		}
	}
	return load, changed
}

// shadowDefs loads tables into a fresh shadow schema and returns their
// server-normalized definitions. The shadow schema is dropped in the
// background once they are read, so that the drop overlaps the diff;
// dropped waits for it and reports its error. On error the schema is
// dropped before shadowDefs returns. Drops have a context of their own,
// so that a cancelled plan still cleans up.
func (p *Planner) shadowDefs(ctx context.Context, shadow *sql.DB, charset, collation string, tables map[string]Table) (defs map[string]string, dropped func() error, err error) {
	name, err := shadowName(time.Now())
	if err != nil {
		return nil, nil, err
	}
	create := "CREATE DATABASE " + quoteIdent(name)
	if charset != "" && collation != "" {
		create += " CHARACTER SET " + quoteIdent(charset) + " COLLATE " + quoteIdent(collation)
	}
	if _, err := shadow.ExecContext(ctx, create); err != nil {
		return nil, nil, fmt.Errorf("create shadow schema %s: %w", name, err)
	}
	drop := func() error {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if _, err := shadow.ExecContext(dctx, "DROP DATABASE IF EXISTS "+quoteIdent(name)); err != nil {
			p.logger().Error("drop shadow schema", "schema", name, "err", err)
			return fmt.Errorf("drop shadow schema %s: %w", name, err)
		}
		return nil
	}
	list := make([]Table, 0, len(tables))
	for _, t := range tables {
		list = append(list, t)
	}
	// Longest first: the big tables start early and the connections finish
	// together.
	sort.Slice(list, func(i, j int) bool {
		if len(list[i].SQL) != len(list[j].SQL) {
			return len(list[i].SQL) > len(list[j].SQL)
		}
		return list[i].Name < list[j].Name
	})
	var plain []Table
	if ok, err := tempShadowOK(ctx, shadow); err != nil {
		_ = drop()
		return nil, nil, err
	} else if ok {
		plain, list = splitPlain(list)
	}
	// The plain tables load as temporary tables, beside the real ones.
	type tempResult struct {
		defs map[string]string
		err  error
	}
	temp := make(chan tempResult, 1)
	go func() {
		defs, err := loadTemp(ctx, shadow, name, plain, tempConnections)
		temp <- tempResult{defs, err}
	}()
	err = loadShadow(ctx, shadow, name, list, p.conns())
	tr := <-temp
	if err == nil || (tr.err != nil && isServerError(tr.err) && !isServerError(err)) {
		err = tr.err
	}
	if err != nil {
		_ = drop() // logged; the load error is the one to report
		return nil, nil, err
	}
	names := make([]string, len(list))
	for i, t := range list {
		names[i] = t.Name
	}
	defs, err = showCreateTables(ctx, shadow, name, names, p.conns())
	if err != nil {
		_ = drop()
		return nil, nil, fmt.Errorf("read shadow schema: %w", err)
	}
	maps.Copy(defs, tr.defs)
	done := make(chan error, 1)
	go func() { done <- drop() }()
	return defs, func() error { return <-done }, nil
}

// loadShadow runs the tables' CREATE TABLE statements in schema over n
// connections with FOREIGN_KEY_CHECKS=0. The connections are discarded
// afterwards, so their session state never returns to the pool.
func loadShadow(ctx context.Context, db *sql.DB, schema string, tables []Table, n int) error {
	return loadShadowEach(ctx, db, schema, tables, n, createTable)
}

// createFunc creates table t in the schema of conn (loadConn's), running
// its statements with qctx; ctx is the caller's (see quietErr). Its error
// is the one to report.
type createFunc func(ctx, qctx context.Context, conn *sql.Conn, t Table) error

// createTable runs t's CREATE TABLE.
func createTable(ctx, qctx context.Context, conn *sql.Conn, t Table) error {
	_, err := conn.ExecContext(qctx, t.SQL)
	if err = quietErr(ctx, err); err == nil {
		return nil
	}
	if !isServerError(err) {
		return fmt.Errorf("load shadow schema: %w", err)
	}
	return fmt.Errorf("%s:%d: table %s: the server refused it: %w", t.File, t.Line, t.Name, err)
}

// loadShadowEach is loadShadow with create making each table.
func loadShadowEach(ctx context.Context, db *sql.DB, schema string, tables []Table, n int, create createFunc) error {
	n = min(n, len(tables))
	work := make(chan Table)
	errc := make(chan error, n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- loadWorker(ctx, db, schema, work, cancel, create)
		}()
	}
	var sendErr error
send:
	for _, t := range tables {
		select {
		case work <- t:
		case <-ctx.Done():
			sendErr = ctx.Err()
			break send
		}
	}
	close(work)
	wg.Wait()
	close(errc)
	var errs []error
	for err := range errc {
		if err != nil {
			errs = append(errs, err)
		}
	}
	for _, err := range errs {
		if isServerError(err) {
			return err
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	if sendErr != nil {
		return fmt.Errorf("load shadow schema: %w", sendErr)
	}
	return nil
}

// loadConn opens a connection of db in schema with foreign key checks
// off. discard closes it for good: it carries USE, the session setting
// and any temporary tables, which the server drops with it.
// It is a quiet connection: its statements run with qctx (quietConn).
func loadConn(ctx context.Context, db *sql.DB, schema string) (conn *sql.Conn, qctx context.Context, discard func(), err error) {
	conn, qctx, done, err := quietConn(ctx, db)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load shadow schema: %w", err)
	}
	discard = func() { done(true) }
	for _, q := range []string{"SET SESSION foreign_key_checks = 0", "USE " + quoteIdent(schema)} {
		if _, err := conn.ExecContext(qctx, q); err != nil {
			discard()
			return nil, nil, nil, fmt.Errorf("load shadow schema: %s: %w", q, quietErr(ctx, err))
		}
	}
	return conn, qctx, discard, nil
}

func loadWorker(ctx context.Context, db *sql.DB, schema string, work <-chan Table, cancel func(), create createFunc) error {
	conn, qctx, discard, err := loadConn(ctx, db, schema)
	if err != nil {
		cancel()
		return err
	}
	defer discard()
	for t := range work {
		err := ctx.Err()
		if err != nil {
			err = fmt.Errorf("load shadow schema: %w", err)
		} else {
			err = create(ctx, qctx, conn, t)
		}
		if err != nil {
			cancel()
			for range work { // drain so the sender is not stuck
			}
			return err
		}
	}
	return nil
}

// isServerError reports whether err came from the server (as opposed to
// the connection or a cancelled context).
func isServerError(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me)
}

// showCreateTables reads SHOW CREATE TABLE for tables over up to n
// connections. schema "" means the pool's default database.
func showCreateTables(ctx context.Context, db *sql.DB, schema string, tables []string, n int) (map[string]string, error) {
	out := make(map[string]string, len(tables))
	if len(tables) == 0 {
		return out, nil
	}
	n = min(n, len(tables))
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		next  int
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
			cancel()
		}
		mu.Unlock()
	}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, qctx, done, err := quietConn(ctx, db)
			if err != nil {
				fail(fmt.Errorf("show create table: %w", err))
				return
			}
			defer func() { done(false) }()
			for ctx.Err() == nil {
				mu.Lock()
				if next >= len(tables) || first != nil {
					mu.Unlock()
					return
				}
				t := tables[next]
				next++
				mu.Unlock()
				q := "SHOW CREATE TABLE " + quoteIdent(t)
				if schema != "" {
					q = "SHOW CREATE TABLE " + quoteIdent(schema) + "." + quoteIdent(t)
				}
				var name, def string
				if err := conn.QueryRowContext(qctx, q).Scan(&name, &def); err != nil {
					fail(fmt.Errorf("show create table %s: %w", t, quietErr(ctx, err)))
					return
				}
				mu.Lock()
				out[t] = def
				mu.Unlock()
			}
			fail(fmt.Errorf("show create table: %w", ctx.Err()))
		}()
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return out, nil
}

// shadowName returns _tern_shadow_<unixtime>_<random>.
func shadowName(now time.Time) (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("shadow schema name: %w", err)
	}
	return ShadowPrefix + strconv.FormatInt(now.Unix(), 10) + "_" + hex.EncodeToString(b), nil
}

// CleanupShadows drops shadow schemas left behind (by a killed process)
// that are older than olderThan, judged by the time in their names. It
// returns how many it dropped.
func CleanupShadows(ctx context.Context, shadow *sql.DB, olderThan time.Duration) (int, error) {
	rows, err := shadow.QueryContext(ctx, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '\\_tern\\_shadow\\_%'")
	if err != nil {
		return 0, fmt.Errorf("list shadow schemas: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return 0, fmt.Errorf("list shadow schemas: %w", err)
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("list shadow schemas: %w", err)
	}
	cutoff := time.Now().Add(-olderThan)
	dropped := 0
	for _, n := range names {
		ts, _, ok := strings.Cut(strings.TrimPrefix(n, ShadowPrefix), "_")
		if !ok {
			continue
		}
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || !time.Unix(sec, 0).Before(cutoff) {
			continue
		}
		if _, err := shadow.ExecContext(ctx, "DROP DATABASE IF EXISTS "+quoteIdent(n)); err != nil {
			return dropped, fmt.Errorf("drop shadow schema %s: %w", n, err)
		}
		dropped++
	}
	return dropped, nil
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
