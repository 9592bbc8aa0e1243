package plan

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/ternhq/tern/config"
	"vitess.io/vitess/go/vt/schemadiff"
	"vitess.io/vitess/go/vt/sqlparser"
)

// referencedTables returns the tables ct's foreign keys point at.
func referencedTables(ct *schemadiff.CreateTableEntity) []string {
	var out []string
	for _, c := range ct.TableSpec.Constraints {
		if fk, ok := c.Details.(*sqlparser.ForeignKeyDefinition); ok && fk.ReferenceDefinition != nil {
			out = append(out, fk.ReferenceDefinition.ReferencedTable.Name.String())
		}
	}
	for _, col := range ct.TableSpec.Columns {
		if col.Type != nil && col.Type.Options != nil && col.Type.Options.Reference != nil {
			out = append(out, col.Type.Options.Reference.ReferencedTable.Name.String())
		}
	}
	return out
}

// missingReferences reports, as file:line, the first foreign key of d that
// references a table no desired file creates: the desired schema is the
// whole schema, so such a table would not exist after the apply.
func missingReferences(d *Desired, parsed map[string]*parsedTable) error {
	names := map[string]bool{}
	for _, t := range d.Tables {
		names[strings.ToLower(t.Name)] = true
	}
	for _, t := range d.Tables {
		// A table that does not parse has no keys here: the shadow
		// server reports it with its file:line.
		for _, fk := range parsed[t.Name].fks {
			if names[strings.ToLower(fk.parent)] {
				continue
			}
			return fmt.Errorf("%s:%d: table %s: a foreign key references table %s, which no schema file creates",
				t.File, t.Line+referenceLine(t.SQL, fk.parent), quoteIdent(t.Name), quoteIdent(fk.parent))
		}
	}
	return nil
}

// referenceLine is the line, counted from 0 within sql, of the first
// REFERENCES clause naming table, or 0.
func referenceLine(sql, table string) int {
	re := regexp.MustCompile("(?i)\\bREFERENCES\\s+(`[^`]*`\\.)?`?" + regexp.QuoteMeta(table) + "\\b")
	loc := re.FindStringIndex(sql)
	if loc == nil {
		return 0
	}
	return strings.Count(sql[:loc[0]], "\n")
}

// Ids of the lint checks. They are stable: tern.yaml's lint.checks names
// them.
const (
	CheckDropTable           = "drop-table"
	CheckDropColumn          = "drop-column"
	CheckLossyColumnChange   = "lossy-column-change"
	CheckPrimaryKeyChange    = "primary-key-change"
	CheckUniqueKeyChange     = "unique-key-change"
	CheckColumnNotNull       = "column-not-null"
	CheckNotNullNoDefault    = "not-null-without-default"
	CheckDropIndex           = "drop-index"
	CheckAddUniqueKey        = "add-unique-key"
	CheckForeignKeyChange    = "foreign-key-change"
	CheckEngineChange        = "engine-change"
	CheckNoPrimaryKey        = "no-primary-key"
	CheckCharset             = "charset"
	CheckLongIndexPrefix     = "long-index-prefix"
	CheckAutoIncrementSigned = "auto-increment-signed"
	CheckForeignKeyLifted    = "foreign-key-lifted"
)

// LintCheck is one lint check: its id, its level when tern.yaml does not
// set one (config.LintError, config.LintWarning), and what it finds.
type LintCheck struct {
	ID, Level, Doc string
}

// LintChecks lists every lint check, in the order the README's config
// reference lists them.
func LintChecks() []LintCheck {
	return []LintCheck{
		{CheckDropTable, config.LintError, "drops a table: its rows are lost"},
		{CheckDropColumn, config.LintError, "drops a column: its data is lost"},
		{CheckLossyColumnChange, config.LintError, "changes a column's type, length, scale, sign, values or character set so that stored values can be lost or altered"},
		{CheckPrimaryKeyChange, config.LintError, "drops or changes the primary key"},
		{CheckUniqueKeyChange, config.LintError, "drops or changes a unique key"},
		{CheckColumnNotNull, config.LintWarning, "makes a nullable column NOT NULL: rows holding NULL fail or get zero values"},
		{CheckNotNullNoDefault, config.LintWarning, "adds a NOT NULL column without a default to a table that holds rows"},
		{CheckDropIndex, config.LintWarning, "drops an index: queries that use it get slower"},
		{CheckAddUniqueKey, config.LintWarning, "adds a unique key to an existing table: fails if rows hold duplicates"},
		{CheckForeignKeyChange, config.LintWarning, "drops or changes a foreign key: it is not enforced meanwhile"},
		{CheckEngineChange, config.LintWarning, "changes a table's storage engine: the table is rebuilt"},
		{CheckNoPrimaryKey, config.LintWarning, "creates a table without a primary key"},
		{CheckCharset, config.LintWarning, "a new or changed table or column whose character set is not lint.charset (default utf8mb4)"},
		{CheckLongIndexPrefix, config.LintWarning, "a new or changed index whose key is longer than lint.max_index_bytes (default 767 bytes)"},
		{CheckAutoIncrementSigned, config.LintWarning, "a new or changed AUTO_INCREMENT column that is not UNSIGNED (half its range is never used)"},
		{CheckForeignKeyLifted, config.LintWarning, "drops a foreign key and adds it back around changing the type of both its ends: rows written in between are not checked"},
	}
}

// Defaults of tern.yaml's lint: key.
const (
	defaultLintCharset   = "utf8mb4"
	defaultMaxIndexBytes = 767
)

// linter runs the checks at the levels a tern.yaml's lint: key sets.
type linter struct {
	levels        map[string]string
	charset       string
	maxIndexBytes int
}

// newLinter returns the linter of policy l; an unknown check id is an
// error naming the key.
func newLinter(l config.Lint) (*linter, error) {
	lt := &linter{levels: map[string]string{}, charset: strings.ToLower(l.Charset), maxIndexBytes: l.MaxIndexBytes}
	var ids []string
	for _, c := range LintChecks() {
		lt.levels[c.ID] = c.Level
		ids = append(ids, c.ID)
	}
	for _, id := range slices.Sorted(maps.Keys(l.Checks)) {
		if _, ok := lt.levels[id]; !ok {
			return nil, fmt.Errorf("tern.yaml: lint.checks.%s: unknown check (known: %s)", id, strings.Join(ids, ", "))
		}
		lt.levels[id] = l.Checks[id]
	}
	if lt.charset == "" {
		lt.charset = defaultLintCharset
	}
	if lt.charset == "utf8" {
		lt.charset = "utf8mb3"
	}
	if lt.maxIndexBytes == 0 {
		lt.maxIndexBytes = defaultMaxIndexBytes
	}
	return lt, nil
}

// findings collects the findings of one statement.
type findings struct {
	lt    *linter
	stmt  int
	table string
	out   []Finding
}

// add records a finding of check, at the level the policy gives it.
func (f *findings) add(check, col, idx, format string, a ...any) {
	sev := SeverityWarning
	switch f.lt.levels[check] {
	case config.LintOff:
		return
	case config.LintError:
		sev = SeverityError
	}
	f.out = append(f.out, Finding{Check: check, Severity: sev, Table: f.table, Column: col, Index: idx, Statement: f.stmt, Message: fmt.Sprintf(format, a...)})
}

// lint returns the findings for statement i, which applies d.
func (lt *linter) lint(i int, d schemadiff.EntityDiff) []Finding {
	f := &findings{lt: lt, stmt: i, table: d.EntityName()}
	switch d := d.(type) {
	case *schemadiff.DropTableEntityDiff:
		f.add(CheckDropTable, "", "", "drops table %s: its rows are lost", d.EntityName())
	case *schemadiff.CreateTableEntityDiff:
		_, to := d.Entities()
		if t, ok := to.(*schemadiff.CreateTableEntity); ok {
			lt.lintCreate(f, t)
		}
	case *schemadiff.AlterTableEntityDiff:
		from, to := d.Entities()
		ft, ok1 := from.(*schemadiff.CreateTableEntity)
		tt, ok2 := to.(*schemadiff.CreateTableEntity)
		if ok1 && ok2 {
			lt.lintAlter(f, ft, tt)
		}
	}
	return f.out
}

// lintCreate checks a new table: its primary key, and every column and
// index as new.
func (lt *linter) lintCreate(f *findings, t *schemadiff.CreateTableEntity) {
	hasPK := false
	for _, ix := range t.TableSpec.Indexes {
		if ix.Info.Type == sqlparser.IndexTypePrimary {
			hasPK = true
		}
	}
	for _, c := range t.TableSpec.Columns {
		if c.Type.Options != nil && c.Type.Options.KeyOpt == sqlparser.ColKeyPrimary {
			hasPK = true
		}
	}
	if !hasPK {
		f.add(CheckNoPrimaryKey, "", "", "creates table %s without a primary key: rows have no identity, and replication and online schema changes need one", t.Name())
	}
	tcs := tableCharset(t.CreateTable)
	if tcs != "" && tcs != lt.charset {
		f.add(CheckCharset, "", "", "uses character set %s, not %s (lint.charset): mixed character sets convert in every join and comparison", tcs, lt.charset)
	}
	cols := map[string]*sqlparser.ColumnDefinition{}
	for _, c := range t.TableSpec.Columns {
		cols[c.Name.Lowered()] = c
		lt.lintNewColumn(f, c, tcs)
	}
	for _, ix := range t.TableSpec.Indexes {
		lt.lintNewIndex(f, ix, cols, tcs)
	}
}

// lintNewColumn checks a new or changed column's character set and
// auto-increment sign.
func (lt *linter) lintNewColumn(f *findings, c *sqlparser.ColumnDefinition, tableCS string) {
	name := c.Name.String()
	if isText(strings.ToLower(c.Type.Type)) {
		if cs := colCharset(c.Type, tableCS); cs != "" && cs != tableCS && cs != lt.charset && cs != "binary" {
			f.add(CheckCharset, name, "", "column %s uses character set %s, not %s (lint.charset): mixed character sets convert in every join and comparison", name, cs, lt.charset)
		}
	}
	if o := c.Type.Options; o != nil && o.Autoincrement && !c.Type.Unsigned {
		f.add(CheckAutoIncrementSigned, name, "", "AUTO_INCREMENT column %s is not UNSIGNED: its negative half is never used, and it runs out twice as soon", name)
	}
}

// lintNewIndex checks a new or changed index's key length.
func (lt *linter) lintNewIndex(f *findings, ix *sqlparser.IndexDefinition, cols map[string]*sqlparser.ColumnDefinition, tableCS string) {
	if ix.Info.Type == sqlparser.IndexTypeFullText || ix.Info.Type == sqlparser.IndexTypeSpatial {
		return
	}
	n := 0
	for _, ic := range ix.Columns {
		c, ok := cols[ic.Column.Lowered()]
		if !ok {
			continue // an expression
		}
		chars := lengthOf(c.Type)
		if ic.Length != nil {
			chars = *ic.Length
		}
		if chars < 0 {
			continue
		}
		t := strings.ToLower(c.Type.Type)
		switch {
		case isBinary(t):
			n += chars
		case isText(t):
			n += chars * charsetWidth(colCharset(c.Type, tableCS))
		}
	}
	if n > lt.maxIndexBytes {
		f.add(CheckLongIndexPrefix, "", indexName(ix), "index %s has a key of up to %d bytes, over %d (lint.max_index_bytes): a shorter prefix keeps the index small and within every row format's limit", indexName(ix), n, lt.maxIndexBytes)
	}
}

// charsetWidth is the most bytes one character of cs takes.
func charsetWidth(cs string) int {
	switch cs {
	case "latin1", "ascii", "binary", "latin2", "cp1250", "cp1251", "cp1252":
		return 1
	case "utf8mb3", "utf8":
		return 3
	case "ucs2":
		return 2
	}
	return 4
}

func (lt *linter) lintAlter(f *findings, from, to *schemadiff.CreateTableEntity) {
	add := f.add
	fromCharset, toCharset := tableCharset(from.CreateTable), tableCharset(to.CreateTable)
	if toCharset != fromCharset && toCharset != "" && toCharset != lt.charset {
		add(CheckCharset, "", "", "changes the character set to %s, not %s (lint.charset): mixed character sets convert in every join and comparison", toCharset, lt.charset)
	}
	toCols := map[string]*sqlparser.ColumnDefinition{}
	for _, c := range to.TableSpec.Columns {
		toCols[c.Name.Lowered()] = c
	}
	fromCols := map[string]*sqlparser.ColumnDefinition{}
	changed := map[string]bool{} // columns whose definition changes
	for _, c := range from.TableSpec.Columns {
		fromCols[c.Name.Lowered()] = c
		name := c.Name.String()
		nc, ok := toCols[c.Name.Lowered()]
		if !ok {
			add(CheckDropColumn, name, "", "drops column %s: its data is lost", name)
			continue
		}
		if why := lossyChange(c.Type, nc.Type, fromCharset, toCharset); why != "" {
			add(CheckLossyColumnChange, name, "", "changes column %s from %s to %s: %s", name, typeString(c.Type), typeString(nc.Type), why)
		}
		if nullable(c.Type) && !nullable(nc.Type) {
			add(CheckColumnNotNull, name, "", "makes column %s NOT NULL: fails, or turns NULLs into zero values, where rows hold NULL", name)
		}
		if sqlparser.CanonicalString(c) != sqlparser.CanonicalString(nc) {
			changed[c.Name.Lowered()] = true
			lt.lintNewColumn(f, nc, toCharset)
		}
	}
	for _, c := range to.TableSpec.Columns {
		if _, ok := fromCols[c.Name.Lowered()]; ok {
			continue
		}
		lt.lintNewColumn(f, c, toCharset)
		o := c.Type.Options
		if o != nil && o.Null != nil && !*o.Null && o.Default == nil && !o.Autoincrement && o.As == nil {
			add(CheckNotNullNoDefault, c.Name.String(), "", "adds NOT NULL column %s without a default to a table that holds rows: existing rows get the type's zero value, and the statement fails in strict mode on some servers", c.Name.String())
		}
	}
	toIdx := map[string]*sqlparser.IndexDefinition{}
	for _, ix := range to.TableSpec.Indexes {
		toIdx[indexKey(ix)] = ix
	}
	fromIdx := map[string]*sqlparser.IndexDefinition{}
	for _, ix := range from.TableSpec.Indexes {
		key := indexKey(ix)
		fromIdx[key] = ix
		nix, ok := toIdx[key]
		name := indexName(ix)
		switch {
		case ok && sqlparser.CanonicalString(ix) == sqlparser.CanonicalString(nix):
			continue
		case ix.Info.Type == sqlparser.IndexTypePrimary:
			add(CheckPrimaryKeyChange, "", name, "drops or changes the primary key: rows lose their identity and duplicates become possible")
		case ix.Info.Type == sqlparser.IndexTypeUnique:
			add(CheckUniqueKeyChange, "", name, "drops or changes unique key %s: duplicates it prevented become possible, and code relying on it breaks", name)
		case !ok:
			add(CheckDropIndex, "", name, "drops index %s: queries that use it get slower", name)
		}
	}
	for _, ix := range to.TableSpec.Indexes {
		old, existed := fromIdx[indexKey(ix)]
		if !existed && ix.Info.IsUnique() {
			add(CheckAddUniqueKey, "", indexName(ix), "adds unique key %s to an existing table: fails if rows hold duplicates", indexName(ix))
		}
		if !existed || sqlparser.CanonicalString(old) != sqlparser.CanonicalString(ix) ||
			slices.ContainsFunc(ix.Columns, func(c *sqlparser.IndexColumn) bool { return changed[c.Column.Lowered()] }) {
			lt.lintNewIndex(f, ix, toCols, toCharset)
		}
	}
	toFK := map[string]bool{}
	for _, c := range to.TableSpec.Constraints {
		if _, ok := c.Details.(*sqlparser.ForeignKeyDefinition); ok {
			toFK[sqlparser.CanonicalString(c)] = true
		}
	}
	for _, c := range from.TableSpec.Constraints {
		if _, ok := c.Details.(*sqlparser.ForeignKeyDefinition); ok && !toFK[sqlparser.CanonicalString(c)] {
			add(CheckForeignKeyChange, "", c.Name.String(), "drops or changes foreign key %s: the database stops enforcing it meanwhile", c.Name.String())
		}
	}
	if fe, te := tableOption(from.CreateTable, "engine"), tableOption(to.CreateTable, "engine"); !strings.EqualFold(fe, te) {
		add(CheckEngineChange, "", "", "changes the storage engine from %s to %s: the table is rebuilt", fe, te)
	}
}

// keepNonEmpty drops the not-null-without-default findings about tables
// of the live schema that hold no rows: there, no row gets a zero value.
func keepNonEmpty(ctx context.Context, live *sql.DB, fs []Finding) ([]Finding, error) {
	empty := map[string]bool{}
	out := fs[:0]
	for _, f := range fs {
		if f.Check == CheckNotNullNoDefault {
			e, ok := empty[f.Table]
			if !ok {
				var one int
				err := live.QueryRowContext(ctx, "SELECT 1 FROM "+quoteIdent(f.Table)+" LIMIT 1").Scan(&one)
				switch {
				case errors.Is(err, sql.ErrNoRows):
					e = true
				case err != nil:
					return nil, fmt.Errorf("lint: read whether %s holds rows: %w", f.Table, err)
				}
				empty[f.Table] = e
			}
			if e {
				continue
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// lossyChange says why changing a column from a to b can lose data, or "".
func lossyChange(a, b *sqlparser.ColumnType, fromCharset, toCharset string) string {
	at, bt := strings.ToLower(a.Type), strings.ToLower(b.Type)
	if ca, cb := colCharset(a, fromCharset), colCharset(b, toCharset); ca != "" && cb != "" && ca != cb && isText(at) && isText(bt) {
		if !(ca == "utf8mb3" && cb == "utf8mb4") && !(ca == "ascii" && (cb == "utf8mb3" || cb == "utf8mb4")) {
			return fmt.Sprintf("the character set changes from %s to %s, and characters it cannot hold are lost", ca, cb)
		}
	}
	if at == bt {
		switch {
		case a.Unsigned != b.Unsigned && isInt(at):
			return "the signedness changes, so values out of the new range are clipped"
		case lengthOf(b) < lengthOf(a):
			return "the new type is narrower, so longer values are truncated"
		case scaleOf(b) < scaleOf(a):
			return "fewer decimal places: values are rounded"
		case (at == "enum" || at == "set") && !isPrefixOrSuperset(a.EnumValues, b.EnumValues):
			return "values are removed from the list: rows holding them become invalid"
		}
		if at == "decimal" && lengthOf(b)-scaleOf(b) < lengthOf(a)-scaleOf(a) {
			return "fewer integer digits: large values no longer fit"
		}
		return ""
	}
	if ra, okA := intRank[at]; okA {
		if rb, okB := intRank[bt]; okB {
			if rb < ra || a.Unsigned != b.Unsigned {
				return "the new integer type is narrower or has another sign, so values out of its range are clipped"
			}
			return ""
		}
	}
	if ra, okA := textRank[at]; okA {
		if rb, okB := textRank[bt]; okB {
			if rb < ra || (isBinary(at) != isBinary(bt)) {
				return "the new type holds less, so longer values are truncated"
			}
			return ""
		}
	}
	if (at == "char" && bt == "varchar") || (at == "binary" && bt == "varbinary") {
		if lengthOf(b) < lengthOf(a) {
			return "the new type is narrower, so longer values are truncated"
		}
		return ""
	}
	if (at == "varchar" || at == "char") && textRank[bt] > 0 && !isBinary(bt) {
		return "" // to TEXT types: wider
	}
	if at == "float" && bt == "double" {
		return ""
	}
	return "the type changes, so values that do not convert are lost or altered"
}

var intRank = map[string]int{"tinyint": 1, "smallint": 2, "mediumint": 3, "int": 4, "integer": 4, "bigint": 5}

var textRank = map[string]int{"tinytext": 1, "text": 2, "mediumtext": 3, "longtext": 4,
	"tinyblob": 1, "blob": 2, "mediumblob": 3, "longblob": 4}

func isInt(t string) bool    { _, ok := intRank[t]; return ok }
func isBinary(t string) bool { return strings.HasSuffix(t, "blob") || strings.HasSuffix(t, "binary") }
func isText(t string) bool {
	switch t {
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set":
		return true
	}
	return false
}

func lengthOf(t *sqlparser.ColumnType) int {
	if t.Length != nil {
		return *t.Length
	}
	return -1
}

func scaleOf(t *sqlparser.ColumnType) int {
	if t.Scale != nil {
		return *t.Scale
	}
	return 0
}

func isPrefixOrSuperset(a, b []string) bool {
	for _, v := range a {
		if !slices.Contains(b, v) {
			return false
		}
	}
	return true
}

func nullable(t *sqlparser.ColumnType) bool {
	return t.Options == nil || t.Options.Null == nil || *t.Options.Null
}

func typeString(t *sqlparser.ColumnType) string {
	c := *t
	c.Options = nil
	return sqlparser.CanonicalString(&c)
}

// colCharset is the column's character set, or its table's.
func colCharset(t *sqlparser.ColumnType, table string) string {
	cs := strings.ToLower(t.Charset.Name)
	if cs == "" && t.Options != nil && t.Options.Collate != "" {
		cs, _, _ = strings.Cut(strings.ToLower(t.Options.Collate), "_")
	}
	if cs == "" {
		cs = table
	}
	if cs == "utf8" {
		cs = "utf8mb3"
	}
	return cs
}

func tableCharset(ct *sqlparser.CreateTable) string {
	cs := tableOption(ct, "charset")
	if cs == "" {
		cs = tableOption(ct, "character set")
	}
	if cs == "" {
		if coll := tableOption(ct, "collate"); coll != "" {
			cs, _, _ = strings.Cut(coll, "_")
		}
	}
	cs = strings.ToLower(cs)
	if cs == "utf8" {
		cs = "utf8mb3"
	}
	return cs
}

func tableOption(ct *sqlparser.CreateTable, name string) string {
	if ct.TableSpec == nil {
		return ""
	}
	for _, o := range ct.TableSpec.Options {
		if strings.EqualFold(o.Name, name) {
			if o.String != "" {
				return o.String
			}
			if o.Value != nil {
				return o.Value.Val
			}
		}
	}
	return ""
}

func indexKey(ix *sqlparser.IndexDefinition) string {
	if ix.Info.Type == sqlparser.IndexTypePrimary {
		return "PRIMARY"
	}
	return strings.ToLower(ix.Info.Name.String())
}

func indexName(ix *sqlparser.IndexDefinition) string {
	if ix.Info.Type == sqlparser.IndexTypePrimary {
		return "PRIMARY"
	}
	return ix.Info.Name.String()
}
