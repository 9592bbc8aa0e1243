package plan

import (
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"vitess.io/vitess/go/vt/schemadiff"
	"vitess.io/vitess/go/vt/sqlparser"
)

// This file holds what the server keeps in a table definition but
// schemadiff does not model, so that applying a plan gives exactly the
// desired SHOW CREATE TABLE: integer display widths (schemadiff judges by
// MySQL 8's rules, which drop them; MariaDB keeps and shows them, ZEROFILL
// pads to them), a dropped AVG_ROW_LENGTH (schemadiff skips it as
// MyISAM-only; MariaDB keeps it on any engine), MariaDB's COMPRESSED
// columns and WITH SYSTEM VERSIONING (which vitessForm hides from
// schemadiff). Both sides of the
// comparison are the same server's SHOW CREATE TABLE, so a difference in
// their text is a difference in the tables.

// intWidth matches an integer type with a display width in a column line.
var intWidth = regexp.MustCompile("(?i)^(  `(?:[^`]|``)+` (?:tinyint|smallint|mediumint|int|integer|bigint))\\(\\d+\\)")

// missedChanges returns an ALTER per table for the differences between
// its live definition and its server-normalized desired one (shadowDefs)
// that planned does not carry out.
func missedChanges(liveDefs, shadowDefs map[string]string, planned []change) []change {
	touched := map[string]map[string]bool{} // table -> lowered column names
	whole := map[string]bool{}              // tables created or dropped
	added := map[string][]string{}          // table -> lowered names of added columns
	for _, c := range planned {
		if c.diff == nil {
			continue // tern's own statements: lifted foreign keys
		}
		name := c.diff.EntityName()
		switch d := c.diff.(type) {
		case *schemadiff.AlterTableEntityDiff:
			if touched[name] == nil {
				touched[name] = map[string]bool{}
			}
			alter, ok := d.Statement().(*sqlparser.AlterTable)
			if !ok {
				whole[name] = true
				continue
			}
			for _, o := range alter.AlterOptions {
				switch o := o.(type) {
				case *sqlparser.ModifyColumn:
					touched[name][o.NewColDefinition.Name.Lowered()] = true
				case *sqlparser.ChangeColumn:
					touched[name][o.OldColumn.Name.Lowered()] = true
					touched[name][o.NewColDefinition.Name.Lowered()] = true
				case *sqlparser.DropColumn:
					touched[name][o.Name.Name.Lowered()] = true
				case *sqlparser.AddColumns:
					for _, c := range o.Columns {
						added[name] = append(added[name], c.Name.Lowered())
					}
				}
			}
		default:
			whole[name] = true
		}
	}
	names := make([]string, 0, len(shadowDefs))
	for n := range shadowDefs {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []change
	for _, name := range names {
		liveDef, ok := liveDefs[name]
		if !ok || whole[name] {
			continue
		}
		clauses := missedClauses(liveDef, shadowDefs[name], touched[name], added[name])
		if len(clauses) == 0 {
			continue
		}
		out = append(out, change{stmt: Statement{
			Table: name,
			Kind:  KindAlter,
			DDL:   "ALTER TABLE " + quoteIdent(name) + " " + strings.Join(clauses, ", "),
		}})
	}
	return out
}

// missedClauses compares two SHOW CREATE TABLE texts of one table and
// returns the ALTER clauses for the differences schemadiff leaves out.
// touched holds the columns a planned statement already changes.
func missedClauses(liveDef, desiredDef string, touched map[string]bool, added []string) []string {
	liveCols := columnLines(liveDef)
	var clauses []string
	for _, cl := range orderedColumnLines(desiredDef) {
		if slices.Contains(added, cl.key) {
			// schemadiff's ADD COLUMN leaves out what it does not model.
			if _, check := columnCheck(cl.line); check != "" || strings.Contains(cl.line, compressedAttr) || nonDefaultWidth(cl.line) {
				clauses = append(clauses, "MODIFY COLUMN "+strings.TrimSpace(cl.line))
			}
			continue
		}
		l, ok := liveCols[cl.key]
		if !ok || l == cl.line || touched[cl.key] {
			continue
		}
		// Only what schemadiff does not see differs: the rest of the line
		// is the same text.
		if unmodelled(l) == unmodelled(cl.line) {
			clauses = append(clauses, "MODIFY COLUMN "+strings.TrimSpace(cl.line))
		}
	}
	if defOption(liveDef, "AVG_ROW_LENGTH") != "" && defOption(desiredDef, "AVG_ROW_LENGTH") == "" {
		clauses = append(clauses, "AVG_ROW_LENGTH=0")
	}
	for _, opt := range sortedOptionNames() {
		lv, dv := defOption(liveDef, opt), defOption(desiredDef, opt)
		switch {
		case lv == dv:
		case dv == "":
			clauses = append(clauses, opt+"=DEFAULT")
		default:
			clauses = append(clauses, opt+"="+dv)
		}
	}
	clauses = append(clauses, ignoredIndexClauses(liveDef, desiredDef)...)
	switch lv, dv := systemVersioned(liveDef), systemVersioned(desiredDef); {
	case dv && !lv:
		clauses = append(clauses, "ADD SYSTEM VERSIONING")
	case lv && !dv:
		clauses = append(clauses, "DROP SYSTEM VERSIONING")
	}
	return clauses
}

// compressedAttr is how MariaDB shows a COMPRESSED column.
const compressedAttr = " /*M!100301 COMPRESSED*/"

// unmodelled returns a column line without what schemadiff does not
// model: integer display widths and MariaDB's COMPRESSED attribute.
func unmodelled(line string) string {
	line, _ = columnCheck(line)
	return strings.Replace(intWidth.ReplaceAllString(line, "$1"), compressedAttr, "", 1)
}

// systemVersioned reports whether def's table options end WITH SYSTEM
// VERSIONING.
func systemVersioned(def string) bool {
	i := strings.LastIndex(def, "\n)")
	return i >= 0 && strings.Contains(def[i:], " WITH SYSTEM VERSIONING")
}

type columnLine struct{ key, line string }

// orderedColumnLines returns def's column lines (without their trailing
// comma) in order, keyed by lowered column name.
func orderedColumnLines(def string) []columnLine {
	var out []columnLine
	for _, line := range strings.Split(def, "\n") {
		if name, _, ok := columnName(line); ok {
			out = append(out, columnLine{key: strings.ToLower(name), line: strings.TrimSuffix(line, ",")})
		}
	}
	return out
}

// columnName returns the name of the column a SHOW CREATE TABLE line
// defines ("  `name` type ...") and the rest of the line after the name.
func columnName(line string) (name, rest string, ok bool) {
	body, found := strings.CutPrefix(line, "  `")
	if !found {
		return "", "", false
	}
	// The quoted name ends at the first backtick that is not doubled.
	for i := 0; i < len(body); i++ {
		if body[i] != '`' {
			continue
		}
		if i+1 < len(body) && body[i+1] == '`' {
			i++
			continue
		}
		return strings.ReplaceAll(body[:i], "``", "`"), body[i+1:], true
	}
	return "", "", false
}

func columnLines(def string) map[string]string {
	m := map[string]string{}
	for _, c := range orderedColumnLines(def) {
		m[c.key] = c.line
	}
	return m
}

// defOption returns the value of a NAME=value option on the table
// options line of def (the last line), or "".
func defOption(def, name string) string {
	i := strings.LastIndex(def, "\n)")
	if i < 0 {
		return ""
	}
	for _, f := range strings.Fields(def[i+2:]) {
		if v, ok := strings.CutPrefix(f, name+"="); ok {
			return v
		}
	}
	return ""
}

// intWidthOf matches an integer column's type, width and signedness.
var intWidthOf = regexp.MustCompile("(?i)^  `(?:[^`]|``)+` (tinyint|smallint|mediumint|int|integer|bigint)\\((\\d+)\\)( unsigned| zerofill)?")

// nonDefaultWidth reports whether a column line shows an integer display
// width other than the one the server gives the type by default.
func nonDefaultWidth(line string) bool {
	m := intWidthOf.FindStringSubmatch(line)
	if m == nil {
		return false
	}
	w, err := strconv.Atoi(m[2])
	if err != nil {
		return false
	}
	def, _ := defaultIntWidth(&sqlparser.ColumnType{Type: m[1], Unsigned: m[3] != ""})
	return w != def
}

func sortedOptionNames() []string {
	out := make([]string, 0, len(unknownTableOptions))
	for k := range unknownTableOptions {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ignoredIndexClauses returns ALTER INDEX ... [NOT] IGNORED for the
// indexes of desiredDef whose IGNORED mark differs from liveDef's (or that
// are new and ignored: schemadiff's ADD KEY leaves the mark out).
func ignoredIndexClauses(liveDef, desiredDef string) []string {
	live, desired := indexLines(liveDef), indexLines(desiredDef)
	var out []string
	for _, name := range sortedKeys(desired) {
		d := desired[name]
		l, ok := live[name]
		dIgn := strings.HasSuffix(d, " IGNORED")
		lIgn := ok && strings.HasSuffix(l, " IGNORED")
		switch {
		case dIgn && !lIgn:
			out = append(out, "ALTER INDEX "+name+" IGNORED")
		case !dIgn && lIgn && strings.TrimSuffix(l, " IGNORED") == d:
			out = append(out, "ALTER INDEX "+name+" NOT IGNORED")
		}
	}
	return out
}

// indexLines returns def's KEY lines (without trailing comma) by quoted
// index name.
func indexLines(def string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(def, "\n") {
		line = strings.TrimSuffix(line, ",")
		t := strings.TrimSpace(line)
		for _, p := range []string{"KEY ", "UNIQUE KEY ", "FULLTEXT KEY ", "SPATIAL KEY "} {
			if rest, ok := strings.CutPrefix(t, p); ok && strings.HasPrefix(rest, "`") {
				if end := strings.Index(rest[1:], "` "); end >= 0 {
					m[rest[:end+2]] = t
				}
			}
		}
	}
	return m
}
