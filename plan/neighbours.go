package plan

import (
	"strings"

	"vitess.io/vitess/go/vt/schemadiff"
	"vitess.io/vitess/go/vt/sqlparser"
)

// A changed table goes through the shadow; so do its foreign-key
// neighbours (the parents it references, the children that reference it)
// when its change may touch one of those references, so that the shadow
// server checks each reference as the target will. A change that touches
// no key column, no index over one and no foreign key leaves every
// reference as the live server already accepted it.

// foreignKey is one foreign key of a desired table.
type foreignKey struct {
	parent string
	// cols are the child's columns, parentCols the parent's, lowered.
	cols, parentCols []string
}

// parsedTable is a desired table parsed once per plan: its definition
// (nil when it does not parse; the shadow server then says why) and its
// foreign keys.
type parsedTable struct {
	ct  *sqlparser.CreateTable
	fks []foreignKey
}

// parseDesired parses each of d's tables (or copies the parse Parse
// made of it).
func parseDesired(p *sqlparser.Parser, d *Desired) map[string]*parsedTable {
	out := make(map[string]*parsedTable, len(d.Tables))
	for _, t := range d.Tables {
		pt := &parsedTable{}
		if ct, ok := d.written[t.Name]; ok && ct.TableSpec != nil {
			pt.ct = sqlparser.Clone(ct)
		} else if ct, err := parseCreateTable(p, t.SQL); err == nil {
			pt.ct = ct
		}
		if pt.ct != nil {
			pt.fks = foreignKeys(pt.ct)
		}
		out[t.Name] = pt
	}
	return out
}

// foreignKeys returns ct's foreign keys, constraints and column-level
// REFERENCES alike.
func foreignKeys(ct *sqlparser.CreateTable) []foreignKey {
	var out []foreignKey
	lowered := func(cs sqlparser.Columns) []string {
		s := make([]string, len(cs))
		for i, c := range cs {
			s[i] = c.Lowered()
		}
		return s
	}
	for _, c := range ct.TableSpec.Constraints {
		if fk, ok := c.Details.(*sqlparser.ForeignKeyDefinition); ok && fk.ReferenceDefinition != nil {
			out = append(out, foreignKey{parent: fk.ReferenceDefinition.ReferencedTable.Name.String(),
				cols: lowered(fk.Source), parentCols: lowered(fk.ReferenceDefinition.ReferencedColumns)})
		}
	}
	for _, col := range ct.TableSpec.Columns {
		if col.Type != nil && col.Type.Options != nil && col.Type.Options.Reference != nil {
			ref := col.Type.Options.Reference
			out = append(out, foreignKey{parent: ref.ReferencedTable.Name.String(),
				cols: []string{col.Name.Lowered()}, parentCols: lowered(ref.ReferencedColumns)})
		}
	}
	return out
}

// keyColumns returns, for each table, its columns that take part in a
// foreign key of the desired schema: as the child's columns or as the
// parent's.
func keyColumns(parsed map[string]*parsedTable) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	add := func(table string, cols []string) {
		if out[table] == nil {
			out[table] = map[string]bool{}
		}
		for _, c := range cols {
			out[table][c] = true
		}
	}
	for name, pt := range parsed {
		for _, fk := range pt.fks {
			add(name, fk.cols)
			add(fk.parent, fk.parentCols)
		}
	}
	return out
}

// touchesKeys reports whether the change d of the table live may touch a
// foreign-key reference the table takes part in: it adds or drops a
// foreign key; changes, renames or drops a column of keyCols or drops an
// index over one; changes the table's engine, character set or
// partitioning; or does something this function does not know.
func touchesKeys(d schemadiff.EntityDiff, live *sqlparser.CreateTable, keyCols map[string]bool) bool {
	for _, sub := range schemadiff.AllSubsequent(d) {
		ad, ok := sub.(*schemadiff.AlterTableEntityDiff)
		if !ok {
			return true
		}
		at := ad.AlterTable()
		if at == nil || at.PartitionSpec != nil || at.PartitionOption != nil {
			return true
		}
		for _, opt := range at.AlterOptions {
			if optionTouchesKeys(opt, live, keyCols) {
				return true
			}
		}
	}
	return false
}

func optionTouchesKeys(opt sqlparser.AlterOption, live *sqlparser.CreateTable, keyCols map[string]bool) bool {
	col := func(c *sqlparser.ColName) bool { return c == nil || keyCols[c.Name.Lowered()] }
	switch o := opt.(type) {
	case *sqlparser.AddColumns:
		for _, c := range o.Columns {
			if c.Type == nil || c.Type.Options == nil || c.Type.Options.Reference != nil {
				return true
			}
		}
		return false
	case *sqlparser.AddIndexDefinition, *sqlparser.AlterCheck, *sqlparser.RenameIndex:
		return false
	case *sqlparser.AddConstraintDefinition:
		_, fk := o.ConstraintDefinition.Details.(*sqlparser.ForeignKeyDefinition)
		return fk
	case *sqlparser.AlterColumn:
		return col(o.Column)
	case *sqlparser.ModifyColumn:
		return o.NewColDefinition == nil || keyCols[o.NewColDefinition.Name.Lowered()]
	case *sqlparser.ChangeColumn:
		return col(o.OldColumn) || o.NewColDefinition == nil || keyCols[o.NewColDefinition.Name.Lowered()]
	case *sqlparser.RenameColumn:
		return col(o.OldName)
	case *sqlparser.DropColumn:
		return col(o.Name)
	case *sqlparser.DropKey:
		switch o.Type {
		case sqlparser.CheckKeyType:
			return false
		case sqlparser.ForeignKeyType:
			return true
		}
		idx := liveIndex(live, o)
		if idx == nil {
			return true
		}
		for _, c := range idx.Columns {
			if c.Expression != nil || keyCols[c.Column.Lowered()] {
				return true
			}
		}
		return false
	case sqlparser.TableOptions:
		for _, to := range o {
			name := strings.ToUpper(to.Name)
			if strings.Contains(name, "ENGINE") || strings.Contains(name, "CHARSET") || strings.Contains(name, "CHARACTER") || strings.Contains(name, "COLLATE") {
				return true
			}
		}
		return false
	}
	return true
}

// liveIndex finds the index a DROP KEY or DROP PRIMARY KEY drops in the
// live table.
func liveIndex(live *sqlparser.CreateTable, dk *sqlparser.DropKey) *sqlparser.IndexDefinition {
	for _, idx := range live.TableSpec.Indexes {
		if dk.Type == sqlparser.PrimaryKeyType && idx.Info.Type == sqlparser.IndexTypePrimary {
			return idx
		}
		if dk.Type == sqlparser.NormalKeyType && idx.Info.Name.EqualString(dk.Name.String()) {
			return idx
		}
	}
	return nil
}
