package plan

import (
	"fmt"
	"slices"
	"strings"

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

// lint returns the findings for statement i, which applies d.
func lint(i int, d schemadiff.EntityDiff) []Finding {
	switch d := d.(type) {
	case *schemadiff.DropTableEntityDiff:
		return []Finding{{Severity: SeverityError, Table: d.EntityName(), Statement: i,
			Message: fmt.Sprintf("drops table %s: its rows are lost", d.EntityName())}}
	case *schemadiff.AlterTableEntityDiff:
		from, to := d.Entities()
		f, ok1 := from.(*schemadiff.CreateTableEntity)
		t, ok2 := to.(*schemadiff.CreateTableEntity)
		if !ok1 || !ok2 {
			return nil
		}
		return lintAlter(i, f, t)
	}
	return nil
}

func lintAlter(i int, from, to *schemadiff.CreateTableEntity) []Finding {
	table := from.Name()
	var out []Finding
	add := func(sev, col, idx, format string, a ...any) {
		out = append(out, Finding{Severity: sev, Table: table, Column: col, Index: idx, Statement: i, Message: fmt.Sprintf(format, a...)})
	}
	fromCharset, toCharset := tableCharset(from.CreateTable), tableCharset(to.CreateTable)
	toCols := map[string]*sqlparser.ColumnDefinition{}
	for _, c := range to.TableSpec.Columns {
		toCols[c.Name.Lowered()] = c
	}
	fromCols := map[string]*sqlparser.ColumnDefinition{}
	for _, c := range from.TableSpec.Columns {
		fromCols[c.Name.Lowered()] = c
		name := c.Name.String()
		nc, ok := toCols[c.Name.Lowered()]
		if !ok {
			add(SeverityError, name, "", "drops column %s: its data is lost", name)
			continue
		}
		if why := lossyChange(c.Type, nc.Type, fromCharset, toCharset); why != "" {
			add(SeverityError, name, "", "changes column %s from %s to %s: %s", name, typeString(c.Type), typeString(nc.Type), why)
		}
		if nullable(c.Type) && !nullable(nc.Type) {
			add(SeverityWarning, name, "", "makes column %s NOT NULL: fails, or turns NULLs into zero values, where rows hold NULL", name)
		}
	}
	for _, c := range to.TableSpec.Columns {
		if _, ok := fromCols[c.Name.Lowered()]; ok {
			continue
		}
		o := c.Type.Options
		if o != nil && o.Null != nil && !*o.Null && o.Default == nil && !o.Autoincrement && o.As == nil {
			add(SeverityWarning, c.Name.String(), "", "adds NOT NULL column %s without a default to an existing table: existing rows get the type's zero value, and the statement fails in strict mode on some servers", c.Name.String())
		}
	}
	toIdx := map[string]*sqlparser.IndexDefinition{}
	for _, ix := range to.TableSpec.Indexes {
		toIdx[indexKey(ix)] = ix
	}
	fromIdx := map[string]bool{}
	for _, ix := range from.TableSpec.Indexes {
		key := indexKey(ix)
		fromIdx[key] = true
		nix, ok := toIdx[key]
		name := indexName(ix)
		switch {
		case ok && sqlparser.CanonicalString(ix) == sqlparser.CanonicalString(nix):
			continue
		case ix.Info.Type == sqlparser.IndexTypePrimary:
			add(SeverityError, "", name, "drops or changes the primary key: rows lose their identity and duplicates become possible")
		case ix.Info.Type == sqlparser.IndexTypeUnique:
			add(SeverityError, "", name, "drops or changes unique key %s: duplicates it prevented become possible, and code relying on it breaks", name)
		case !ok:
			add(SeverityWarning, "", name, "drops index %s: queries that use it get slower", name)
		}
	}
	for _, ix := range to.TableSpec.Indexes {
		key := indexKey(ix)
		if !fromIdx[key] && ix.Info.IsUnique() {
			add(SeverityWarning, "", indexName(ix), "adds unique key %s to an existing table: fails if rows hold duplicates", indexName(ix))
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
			add(SeverityWarning, "", c.Name.String(), "drops or changes foreign key %s: the database stops enforcing it meanwhile", c.Name.String())
		}
	}
	if fe, te := tableOption(from.CreateTable, "engine"), tableOption(to.CreateTable, "engine"); !strings.EqualFold(fe, te) {
		add(SeverityWarning, "", "", "changes the storage engine from %s to %s: the table is rebuilt", fe, te)
	}
	return out
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
