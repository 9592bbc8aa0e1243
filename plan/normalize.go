package plan

import (
	"strings"

	"vitess.io/vitess/go/vt/schemadiff"
	"vitess.io/vitess/go/vt/sqlparser"
)

// This file holds the pre-comparison that decides which desired tables
// may skip the shadow schema. Every rewrite here must be exact: two
// definitions it makes equal must be rendered identically by the server,
// or the plan would miss a change. When in doubt a table goes through the
// shadow, which is always correct, only slower.

// maybeChanged reports whether t may differ from its live definition.
// mariadb says the live server is MariaDB, whose renderings of JSON
// columns and RESTRICT foreign keys are then taken into account.
func maybeChanged(env *schemadiff.Environment, t Table, liveDefs map[string]string, mariadb bool) bool {
	desired, _ := parseCreateTable(env.Parser(), t.SQL)
	changed, _ := judgeTable(env, t, desired, nil, liveDefs, mariadb, nil)
	return changed
}

// judgeTable reports whether t may differ from its live definition (as
// maybeChanged), and whether that change may touch the foreign-key
// references the table takes part in (touchesKeys; keyCols are the
// table's key columns). desired is t parsed, nil when it does not parse;
// judgeTable may modify it.
//
// live, when not nil, is the live definition parsed (judgeTable may modify
// it too); nil: judgeTable parses it.
func judgeTable(env *schemadiff.Environment, t Table, desired, live *sqlparser.CreateTable, liveDefs map[string]string, mariadb bool, keyCols map[string]bool) (changed, keys bool) {
	liveDef, ok := liveDefs[t.Name]
	if !ok || desired == nil {
		return true, true
	}
	// Without "/*" there is no executable comment, and without ";" one
	// statement: no need to split.
	if strings.Contains(t.SQL, "/*") || strings.Contains(t.SQL, ";") {
		st, err := splitStatements(t.SQL)
		if err != nil || len(st) != 1 || st[0].HasExecComment {
			return true, true
		}
	}
	p := env.Parser()
	la := live
	if la == nil {
		var err error
		if la, err = parseCreateTable(p, liveDef); err != nil {
			return true, true
		}
	}
	if mariadb {
		la = foldMariaDBJSON(p, liveDef, la)
	}
	lb := desired
	if keptApart(la, lb) {
		return true, true
	}
	padDecimalDefaults(la)
	padDecimalDefaults(lb)
	if mariadb {
		dropRestrictActions(la)
		dropRestrictActions(lb)
	}
	d, err := schemadiff.DiffTables(env, la, lb, diffHints())
	if err != nil {
		return true, true
	}
	if d.IsEmpty() {
		return false, false
	}
	return true, touchesKeys(d, la, keyCols)
}

func parseCreateTable(p *sqlparser.Parser, sql string) (*sqlparser.CreateTable, error) {
	stmt, err := p.ParseStrictDDL(sql)
	if err != nil {
		return nil, err
	}
	ct, ok := stmt.(*sqlparser.CreateTable)
	if !ok || ct.TableSpec == nil {
		return nil, errNotCreateTable
	}
	return ct, nil
}

type notCreateTableError struct{}

func (notCreateTableError) Error() string { return "not a CREATE TABLE with columns" }

var errNotCreateTable error = notCreateTableError{}

// MariaDB's JSON type is an alias: a column declared `json` is stored, and
// shown by SHOW CREATE TABLE, as
//
//	`c` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin <attributes> CHECK (json_valid(`c`))
//
// whatever the table's character set (checked on MariaDB 10.11 with
// latin1, utf8mb3 and utf8mb4 tables). A column declared so by hand is the
// same column. A `json` column with a CHECK of its own, or a COLLATE, is
// shown differently (the CHECK replaces json_valid, the collation is
// kept) and is left alone here.
const (
	mariaJSONType  = " longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
	mariaJSONCheck = " CHECK (json_valid(%s))"
)

// foldMariaDBJSON returns the live table with every column that MariaDB
// shows in its JSON rendering written back as `json` with the same
// attributes and without the json_valid CHECK, which is how a desired file
// writes it. def is ct's SHOW CREATE TABLE text: the rendering is
// recognised line by line, so that the CHECK is known to sit on that very
// column. Columns with attributes other than NULL, NOT NULL, DEFAULT,
// COMMENT and INVISIBLE are left alone; if anything does not add up the
// table is returned unchanged.
func foldMariaDBJSON(p *sqlparser.Parser, def string, ct *sqlparser.CreateTable) *sqlparser.CreateTable {
	if _, out, _, ok := foldJSONText(p, def, ct); ok {
		return out
	}
	return ct
}

// foldJSONDef returns the SHOW CREATE TABLE text def with MariaDB's JSON
// renderings written back as `json`, as foldMariaDBJSON does, or def
// itself when nothing folds. Diffing the folded forms plans a JSON column
// as `json`, which MariaDB stores exactly as the desired file's; the
// unfolded form would be planned as longtext with a separately named
// CHECK constraint, a different table.
func foldJSONDef(p *sqlparser.Parser, def string) string {
	text, _ := foldJSONDefParsed(p, def)
	return text
}

// foldJSONDefParsed is foldJSONDef, and returns the parse of the folded
// text too when def is parsed as it is (not through vitessForm); nil
// otherwise. The caller may modify it.
func foldJSONDefParsed(p *sqlparser.Parser, def string) (string, *sqlparser.CreateTable) {
	if !strings.Contains(def, "json_valid(") {
		return def, nil
	}
	form, _ := vitessForm(def)
	ct, err := parseCreateTable(p, form)
	if err != nil {
		return def, nil
	}
	if text, out, asIs, ok := foldJSONText(p, def, ct); ok {
		if asIs && form == def {
			return text, out
		}
		return text, nil
	}
	return def, nil
}

// foldJSONText folds def (whose parse is ct) and reports whether every
// folded column checks out.
//
// out is text parsed as ct was (of its vitessForm when ct was of def's);
// asIs reports that the vitessForm of text is text itself.
func foldJSONText(p *sqlparser.Parser, def string, ct *sqlparser.CreateTable) (text string, out *sqlparser.CreateTable, asIs, ok bool) {
	if !strings.Contains(def, "json_valid(") {
		return "", nil, false, false
	}
	lines := strings.Split(def, "\n")
	var folded []string
	for i, line := range lines {
		if name, rewritten, ok := foldJSONLine(line); ok {
			lines[i] = rewritten
			folded = append(folded, name)
		}
	}
	if len(folded) == 0 {
		return "", nil, false, false
	}
	text = strings.Join(lines, "\n")
	form, _ := vitessForm(text)
	// The parse of the folded text is ct with the same change made
	// (foldParsed; TestFoldParsedIsTheParseOfTheFoldedText): no need to
	// parse it again.
	out = foldParsed(ct, folded)
	if uncheckedCount(out)+len(folded) != uncheckedCount(ct) { // a folded column had no CHECK of its own
		return "", nil, false, false
	}
	for _, name := range folded {
		if !plainJSONColumn(out, name) {
			return "", nil, false, false
		}
	}
	return text, out, form == text, true
}

// foldParsed returns a copy of ct, the parse of a SHOW CREATE TABLE
// text, with what foldJSONLine does to the lines of the columns named:
// each becomes `json`, without its charset and collation, and loses its
// own CHECK (json_valid(column)), the unnamed one.
func foldParsed(ct *sqlparser.CreateTable, names []string) *sqlparser.CreateTable {
	out := sqlparser.Clone(ct)
	fold := map[string]bool{}
	for _, n := range names {
		fold[n] = true
	}
	for _, c := range out.TableSpec.Columns {
		if !fold[c.Name.String()] || c.Type == nil {
			continue
		}
		c.Type.Type = "json"
		c.Type.Charset = sqlparser.ColumnCharset{}
		if c.Type.Options != nil {
			c.Type.Options.Collate = ""
		}
	}
	kept := out.TableSpec.Constraints[:0]
	for _, c := range out.TableSpec.Constraints {
		if chk, ok := c.Details.(*sqlparser.CheckConstraintDefinition); ok && c.Name.IsEmpty() {
			if col := jsonValidColumn(chk.Expr); col != "" && fold[col] {
				delete(fold, col) // one CHECK per column
				continue
			}
		}
		kept = append(kept, c)
	}
	out.TableSpec.Constraints = kept
	return out
}

// jsonValidColumn returns the column e is json_valid of, or "".
func jsonValidColumn(e sqlparser.Expr) string {
	f, ok := e.(*sqlparser.JSONAttributesExpr)
	if !ok || f.Type != sqlparser.ValidAttributeType || f.Path != nil {
		return ""
	}
	col, ok := f.JSONDoc.(*sqlparser.ColName)
	if !ok || !col.Qualifier.IsEmpty() {
		return ""
	}
	return col.Name.String()
}

// foldJSONLine rewrites one column line of SHOW CREATE TABLE output from
// MariaDB's JSON rendering to `json`. It returns the column's name.
func foldJSONLine(line string) (name, rewritten string, ok bool) {
	body, comma := strings.CutSuffix(line, ",")
	name, rest, found := columnName(body)
	if !found {
		return "", "", false
	}
	q := quoteIdent(name)
	attrs, found := strings.CutPrefix(rest, mariaJSONType)
	if !found {
		return "", "", false
	}
	attrs, found = strings.CutSuffix(attrs, strings.Replace(mariaJSONCheck, "%s", q, 1))
	if !found || (attrs != "" && attrs[0] != ' ') {
		return "", "", false
	}
	rewritten = "  " + q + " json" + attrs
	if comma {
		rewritten += ","
	}
	return name, rewritten, true
}

// uncheckedCount counts ct's CHECK constraints without a name: those
// written on a column.
func uncheckedCount(ct *sqlparser.CreateTable) int {
	n := 0
	for _, c := range ct.TableSpec.Constraints {
		if _, ok := c.Details.(*sqlparser.CheckConstraintDefinition); ok && c.Name.IsEmpty() {
			n++
		}
	}
	return n
}

// plainJSONColumn reports whether ct's column name is a `json` column
// whose only attributes are NULL or NOT NULL, a literal DEFAULT, COMMENT
// and INVISIBLE: attributes MariaDB renders the same on a json column as
// on its longtext form.
func plainJSONColumn(ct *sqlparser.CreateTable, name string) bool {
	for _, c := range ct.TableSpec.Columns {
		if c.Name.String() != name {
			continue
		}
		t := c.Type
		if t == nil || !strings.EqualFold(t.Type, "json") || t.Charset.Name != "" || t.Charset.Binary || t.Unsigned || t.Zerofill ||
			t.Length != nil || t.Scale != nil || len(t.EnumValues) > 0 {
			return false
		}
		o := t.Options
		if o == nil {
			return true
		}
		if o.Autoincrement || o.OnUpdate != nil || o.As != nil || o.Collate != "" ||
			o.Reference != nil || o.KeyOpt != sqlparser.ColKeyNone || o.Format != sqlparser.UnspecifiedFormat ||
			o.EngineAttribute != nil || o.SecondaryEngineAttribute != nil || o.SRID != nil {
			return false
		}
		switch o.Default.(type) {
		case nil, *sqlparser.Literal, *sqlparser.NullVal:
			return true
		}
		return false
	}
	return false
}

// dropRestrictActions removes ON DELETE RESTRICT and ON UPDATE RESTRICT
// from ct's foreign keys. On MariaDB, RESTRICT is what a foreign key does
// when no action is given: the server stores both the same way and shows
// neither (NO ACTION is stored and shown as such, and is left alone).
func dropRestrictActions(ct *sqlparser.CreateTable) {
	for _, c := range ct.TableSpec.Constraints {
		fk, ok := c.Details.(*sqlparser.ForeignKeyDefinition)
		if !ok || fk.ReferenceDefinition == nil {
			continue
		}
		if fk.ReferenceDefinition.OnDelete == sqlparser.Restrict {
			fk.ReferenceDefinition.OnDelete = sqlparser.DefaultAction
		}
		if fk.ReferenceDefinition.OnUpdate == sqlparser.Restrict {
			fk.ReferenceDefinition.OnUpdate = sqlparser.DefaultAction
		}
	}
}

// padDecimalDefaults writes a DECIMAL column's numeric default with as
// many decimals as the column's scale, as the server shows it (DEFAULT 0
// on decimal(12,2) reads back as 0.00). Only exact rewrites are made: a
// default with more decimals than the scale is left alone.
func padDecimalDefaults(ct *sqlparser.CreateTable) {
	if ct.TableSpec == nil {
		return
	}
	for _, c := range ct.TableSpec.Columns {
		typ := c.Type
		if typ == nil || typ.Options == nil || !strings.EqualFold(typ.Type, "decimal") {
			continue
		}
		lit, ok := typ.Options.Default.(*sqlparser.Literal)
		if !ok || (lit.Type != sqlparser.IntVal && lit.Type != sqlparser.DecimalVal) {
			continue
		}
		scale := 0
		if typ.Scale != nil {
			scale = *typ.Scale
		}
		whole, frac, _ := strings.Cut(lit.Val, ".")
		if len(frac) > scale || whole == "" {
			continue
		}
		v := whole
		if scale > 0 {
			v += "." + frac + strings.Repeat("0", scale-len(frac))
		}
		typ.Options.Default = &sqlparser.Literal{Type: sqlparser.DecimalVal, Val: v}
		if scale == 0 {
			typ.Options.Default = &sqlparser.Literal{Type: sqlparser.IntVal, Val: v}
		}
	}
}

// keptApart reports whether the server keeps live and desired apart in
// ways schemadiff's comparison does not see: an integer display width
// (schemadiff drops them, MariaDB shows them) or a table option the live
// table has and the desired file leaves out, which schemadiff ignores for
// some options (ENGINE, AVG_ROW_LENGTH) although the server then applies
// its default. Only an ENGINE=InnoDB left out is the same table.
func keptApart(live, desired *sqlparser.CreateTable) bool {
	liveCols := map[string]*sqlparser.ColumnDefinition{}
	for _, c := range live.TableSpec.Columns {
		liveCols[c.Name.Lowered()] = c
	}
	for _, c := range desired.TableSpec.Columns {
		l, ok := liveCols[c.Name.Lowered()]
		if !ok || c.Type == nil || l.Type == nil {
			continue
		}
		def, integral := defaultIntWidth(c.Type)
		if !integral || !strings.EqualFold(c.Type.Type, l.Type.Type) {
			continue
		}
		switch {
		case c.Type.Length != nil && (l.Type.Length == nil || *c.Type.Length != *l.Type.Length):
			return true
		case c.Type.Length == nil && l.Type.Length != nil && *l.Type.Length != def:
			return true
		}
	}
	has := map[string]bool{}
	for _, o := range desired.TableSpec.Options {
		has[strings.ToLower(o.Name)] = true
	}
	for _, o := range live.TableSpec.Options {
		name := strings.ToLower(o.Name)
		switch {
		case has[name], name == "auto_increment", name == "charset", name == "collate":
		case name == "engine" && strings.EqualFold(o.String, "InnoDB"):
		default:
			return true
		}
	}
	return false
}

// defaultIntWidth returns the display width MariaDB shows for an integer
// type declared without one, and whether t is an integer type at all.
// ZEROFILL implies UNSIGNED.
func defaultIntWidth(t *sqlparser.ColumnType) (int, bool) {
	unsigned := t.Unsigned || t.Zerofill
	var signed, uns int
	switch strings.ToLower(t.Type) {
	case "tinyint":
		signed, uns = 4, 3
	case "smallint":
		signed, uns = 6, 5
	case "mediumint":
		signed, uns = 9, 8
	case "int", "integer":
		signed, uns = 11, 10
	case "bigint":
		signed, uns = 20, 20
	default:
		return 0, false
	}
	if unsigned {
		return uns, true
	}
	return signed, true
}
