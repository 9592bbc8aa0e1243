package plan

import (
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

func lint(i int, d schemadiff.EntityDiff) []Finding { return nil }
