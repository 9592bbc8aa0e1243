package plan

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"vitess.io/vitess/go/vt/schemadiff"
	"vitess.io/vitess/go/vt/sqlparser"
)

// A foreign key's two ends must keep the same type at every step, so when
// a parent's key and its children's columns change type together (int to
// bigint on both) no order of the ALTERs is valid: schemadiff, Skeema and
// Atlas all stop there. tern lifts such keys: it drops them, runs the
// changes without them, and adds them back, in one reviewed plan whose
// lint says so.

// liftedKey is a foreign key dropped and re-added around the changes.
type liftedKey struct {
	table, name string
	def         *sqlparser.ConstraintDefinition // as desired
}

// orderLiftingKeys orders the changes from fromQueries to to with the
// foreign keys whose ends change type lifted. It returns the changes in
// order, the DROP statements first and the ADDs last, with a finding per
// lifted key. err is the original ordering error when no key can be
// lifted.
func orderLiftingKeys(ctx context.Context, env *schemadiff.Environment, fromQueries []string, to *schemadiff.Schema, orderErr error) ([]change, error) {
	from, err := schemadiff.NewSchemaFromQueries(env, fromQueries)
	if err != nil {
		return nil, orderErr
	}
	lifted := keysToLift(from, to)
	if len(lifted) == 0 {
		return nil, orderErr
	}
	skip := map[[2]string]bool{}
	for _, k := range lifted {
		skip[[2]string{k.table, k.name}] = true
	}
	fromL, err := withoutKeys(env, from, skip)
	if err != nil {
		return nil, err
	}
	toL, err := withoutKeys(env, to, skip)
	if err != nil {
		return nil, err
	}
	sd, err := schemadiff.DiffSchemas(env, fromL, toL, diffHints())
	if err != nil {
		return nil, fmt.Errorf("diff schemas without the keys to lift: %w", err)
	}
	var fromLQueries []string
	for _, t := range fromL.Tables() {
		fromLQueries = append(fromLQueries, t.Create().CanonicalStatementString())
	}
	ordered, err := orderDiffs(ctx, env, sd, fromLQueries, toL)
	if err != nil {
		return nil, errors.Join(orderErr, fmt.Errorf("with %d foreign keys lifted: %w", len(lifted), err))
	}
	var out []change
	for _, k := range lifted {
		out = append(out, change{lifted: k.name, stmt: Statement{Table: k.table, Kind: KindAlter,
			DDL: "ALTER TABLE " + quoteIdent(k.table) + " DROP FOREIGN KEY " + quoteIdent(k.name)}})
	}
	for _, od := range ordered {
		for _, sub := range schemadiff.AllSubsequent(od) {
			out = append(out, change{stmt: statementOf(sub), diff: sub})
		}
	}
	for _, k := range lifted {
		out = append(out, change{stmt: Statement{Table: k.table, Kind: KindAlter,
			DDL: "ALTER TABLE " + quoteIdent(k.table) + " ADD " + sqlparser.CanonicalString(k.def)}})
	}
	return out, nil
}

// liftFindings are the lint's word on lifted keys, one on each statement
// that drops a key orderLiftingKeys lifted.
func (lt *linter) liftFindings(changes []change) []Finding {
	var out []Finding
	for i, c := range changes {
		if c.lifted == "" {
			continue
		}
		f := &findings{lt: lt, stmt: i, table: c.stmt.Table}
		f.add(CheckForeignKeyLifted, "", "", "foreign key %s is dropped and re-added around changing the type of both its ends: rows written in between are not checked against it", quoteIdent(c.lifted))
		out = append(out, f.out...)
	}
	return out
}

// keysToLift returns the foreign keys of to, present under the same name
// in from, whose child or parent columns change type, sorted by table and
// name.
func keysToLift(from, to *schemadiff.Schema) []liftedKey {
	var out []liftedKey
	for _, t := range to.Tables() {
		old := from.Table(t.Name())
		if old == nil {
			continue
		}
		for _, c := range t.TableSpec.Constraints {
			fk, ok := c.Details.(*sqlparser.ForeignKeyDefinition)
			if !ok || c.Name.IsEmpty() || !hasKey(old, c.Name.String()) {
				continue
			}
			parent := fk.ReferenceDefinition.ReferencedTable.Name.String()
			changes := typesDiffer(old, t, fk.Source)
			if po, pn := from.Table(parent), to.Table(parent); po != nil && pn != nil {
				changes = changes || typesDiffer(po, pn, fk.ReferenceDefinition.ReferencedColumns)
			}
			if changes {
				out = append(out, liftedKey{table: t.Name(), name: c.Name.String(), def: c})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].table != out[j].table {
			return out[i].table < out[j].table
		}
		return out[i].name < out[j].name
	})
	return out
}

func hasKey(t *schemadiff.CreateTableEntity, name string) bool {
	for _, c := range t.TableSpec.Constraints {
		if _, ok := c.Details.(*sqlparser.ForeignKeyDefinition); ok && c.Name.String() == name {
			return true
		}
	}
	return false
}

// typesDiffer reports whether any of cols has another type in b than in a.
func typesDiffer(a, b *schemadiff.CreateTableEntity, cols sqlparser.Columns) bool {
	typeOf := func(t *schemadiff.CreateTableEntity, col sqlparser.IdentifierCI) string {
		for _, c := range t.TableSpec.Columns {
			if c.Name.Equal(col) && c.Type != nil {
				return sqlparser.CanonicalString(&sqlparser.ColumnType{Type: c.Type.Type, Length: c.Type.Length, Scale: c.Type.Scale, Unsigned: c.Type.Unsigned, Zerofill: c.Type.Zerofill})
			}
		}
		return ""
	}
	for _, col := range cols {
		if typeOf(a, col) != typeOf(b, col) {
			return true
		}
	}
	return false
}

// withoutKeys returns s with the foreign keys in skip (table, name) left
// out.
func withoutKeys(env *schemadiff.Environment, s *schemadiff.Schema, skip map[[2]string]bool) (*schemadiff.Schema, error) {
	var entities []schemadiff.Entity
	for _, t := range s.Tables() {
		ct := sqlparser.Clone(t.CreateTable)
		kept := ct.TableSpec.Constraints[:0]
		for _, c := range ct.TableSpec.Constraints {
			if _, ok := c.Details.(*sqlparser.ForeignKeyDefinition); ok && skip[[2]string{t.Name(), c.Name.String()}] {
				continue
			}
			kept = append(kept, c)
		}
		ct.TableSpec.Constraints = kept
		e, err := schemadiff.NewCreateTableEntity(env, ct)
		if err != nil {
			return nil, fmt.Errorf("table %s without lifted keys: %w", t.Name(), err)
		}
		entities = append(entities, e)
	}
	return schemadiff.NewSchemaFromEntities(env, entities)
}

// splitKeyRecreate returns the statements of c: one, or, where an ALTER
// drops a foreign key and adds one of the same name back (a changed ON
// DELETE, say), the drops first on their own. InnoDB refuses both in one
// ALTER ("Duplicate FOREIGN KEY constraint name").
func splitKeyRecreate(c change) []change {
	d, ok := c.diff.(*schemadiff.AlterTableEntityDiff)
	if !ok {
		return []change{c}
	}
	alter, ok := d.Statement().(*sqlparser.AlterTable)
	if !ok {
		return []change{c}
	}
	added := map[string]bool{}
	for _, o := range alter.AlterOptions {
		if a, ok := o.(*sqlparser.AddConstraintDefinition); ok {
			if _, fk := a.ConstraintDefinition.Details.(*sqlparser.ForeignKeyDefinition); fk {
				added[a.ConstraintDefinition.Name.Lowered()] = true
			}
		}
	}
	var drops, rest []sqlparser.AlterOption
	for _, o := range alter.AlterOptions {
		if k, ok := o.(*sqlparser.DropKey); ok && k.Type == sqlparser.ForeignKeyType && added[k.Name.Lowered()] {
			drops = append(drops, o)
			continue
		}
		rest = append(rest, o)
	}
	if len(drops) == 0 {
		return []change{c}
	}
	first := sqlparser.Clone(alter)
	first.AlterOptions = drops
	first.PartitionSpec, first.PartitionOption = nil, nil
	second := sqlparser.Clone(alter)
	second.AlterOptions = rest
	dropStmt := Statement{Table: c.stmt.Table, Kind: KindAlter, DDL: sqlparser.CanonicalString(first)}
	c.stmt.DDL = sqlparser.CanonicalString(second)
	c.stmt.Instant = false
	return []change{{stmt: dropStmt}, c}
}
