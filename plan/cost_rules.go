package plan

import (
	"strings"

	"vitess.io/vitess/go/vt/sqlparser"
)

// rule is the documented cost of one kind of ALTER TABLE change.
type rule struct {
	algorithm, lock, reason string
}

// weight orders costs: a statement costs what its dearest change costs.
func (r rule) weight() int {
	switch {
	case r.algorithm == AlgorithmInstant:
		return 0
	case r.algorithm == AlgorithmInplace && r.lock == LockNone:
		return 1
	case r.algorithm == AlgorithmInplace && r.lock == LockShared:
		return 2
	case r.algorithm == AlgorithmInplace:
		return 3
	case r.lock == LockShared:
		return 4
	}
	return 5
}

var (
	instant       = rule{algorithm: AlgorithmInstant, lock: LockNone}
	inplaceOnline = rule{algorithm: AlgorithmInplace, lock: LockNone}
	inplaceShared = func(why string) rule { return rule{AlgorithmInplace, LockShared, why} }
	copyShared    = func(why string) rule { return rule{AlgorithmCopy, LockShared, why} }
)

// ruleCost is the cost of statement s by the documented rules of srv
// (MySQL 8.0's "Online DDL Operations" tables, MariaDB's "InnoDB Online
// DDL Operations"), judged against the table's live definition def. What
// the rules do not know is a copy.
func ruleCost(srv server, s Statement, def string) *Cost {
	if s.Kind != KindAlter {
		return &Cost{Algorithm: AlgorithmInstant, Lock: LockNone, Source: SourceRules}
	}
	env, err := newEnv()
	if err != nil {
		return fromRule(copyShared("the rules could not read the statement"))
	}
	stmt, err := env.Parser().ParseStrictDDL(s.DDL)
	at, ok := stmt.(*sqlparser.AlterTable)
	if err != nil || !ok {
		return fromRule(copyShared("the rules could not read the statement"))
	}
	var from *sqlparser.CreateTable
	if def != "" {
		if st, err := env.Parser().ParseStrictDDL(def); err == nil {
			from, _ = st.(*sqlparser.CreateTable)
		}
	}
	return fromRule(alterRule(srv, at, from))
}

func fromRule(r rule) *Cost {
	return &Cost{Algorithm: r.algorithm, Lock: r.lock, Reason: r.reason, Source: SourceRules}
}

// alterRule is the dearest rule among at's changes.
func alterRule(srv server, at *sqlparser.AlterTable, from *sqlparser.CreateTable) rule {
	worst := instant
	take := func(r rule) {
		if r.weight() > worst.weight() {
			worst = r
		}
	}
	if at.PartitionSpec != nil || at.PartitionOption != nil {
		take(copyShared("repartitioning copies the table"))
	}
	hasFulltext := from != nil && hasIndexType(from, sqlparser.IndexTypeFullText)
	// A table whose columns were all added by instant ALTERs still takes
	// the same rules; MySQL before 8.0.29 and MariaDB before 10.4 add
	// columns instantly only at the end.
	for _, o := range at.AlterOptions {
		take(optionRule(srv, o, from, hasFulltext))
	}
	return worst
}

// optionRule is the documented rule for one change of an ALTER TABLE.
func optionRule(srv server, o sqlparser.AlterOption, from *sqlparser.CreateTable, hasFulltext bool) rule {
	switch o := o.(type) {
	case *sqlparser.AddColumns:
		for _, c := range o.Columns {
			if c.Type.Options != nil && c.Type.Options.As != nil && c.Type.Options.Storage == sqlparser.StoredStorage {
				return copyShared("adding a stored generated column copies the table")
			}
			if c.Type.Options != nil && c.Type.Options.Autoincrement {
				return inplaceShared("adding an AUTO_INCREMENT column needs a lock")
			}
		}
		last := !o.First && o.After == nil
		if hasFulltext {
			return rule{AlgorithmInplace, LockNone, "the table has a FULLTEXT index: columns cannot be added instantly"}
		}
		if srv.instantAnywhere() || (last && srv.instantAddLast()) {
			return instant
		}
		return rule{AlgorithmInplace, LockNone, "adding a column here rebuilds the table"}
	case *sqlparser.DropColumn:
		if srv.instantAnywhere() && !hasFulltext {
			return instant
		}
		return rule{AlgorithmInplace, LockNone, "dropping a column rebuilds the table"}
	case *sqlparser.AlterColumn:
		return instant // SET/DROP DEFAULT, VISIBLE/INVISIBLE
	case *sqlparser.RenameColumn:
		return instant
	case *sqlparser.ModifyColumn:
		return columnRule(srv, from, o.NewColDefinition.Name.String(), o.NewColDefinition, o.First || o.After != nil)
	case *sqlparser.ChangeColumn:
		return columnRule(srv, from, o.OldColumn.Name.String(), o.NewColDefinition, o.First || o.After != nil)
	case *sqlparser.AddIndexDefinition:
		switch o.IndexDefinition.Info.Type {
		case sqlparser.IndexTypeFullText:
			if hasFulltext {
				return inplaceShared("adding a FULLTEXT index needs a lock")
			}
			return inplaceShared("the first FULLTEXT index rebuilds the table under a lock")
		case sqlparser.IndexTypeSpatial:
			return inplaceShared("adding a SPATIAL index needs a lock")
		case sqlparser.IndexTypePrimary:
			return rule{AlgorithmInplace, LockNone, "adding a primary key rebuilds the table"}
		}
		return inplaceOnline
	case *sqlparser.AddConstraintDefinition:
		if _, ok := o.ConstraintDefinition.Details.(*sqlparser.ForeignKeyDefinition); ok {
			return copyShared("adding a foreign key with foreign_key_checks on copies the table")
		}
		return copyShared("adding a CHECK constraint validates every row with a copy")
	case *sqlparser.DropKey:
		switch o.Type {
		case sqlparser.PrimaryKeyType:
			return copyShared("dropping the primary key without adding one copies the table")
		case sqlparser.CheckKeyType:
			return instant
		}
		return inplaceOnline // secondary index or foreign key: metadata only
	case *sqlparser.RenameIndex:
		if srv.mariadb {
			return inplaceOnline
		}
		return instant
	case *sqlparser.AlterIndex:
		return instant // VISIBLE / INVISIBLE (IGNORED on MariaDB)
	case *sqlparser.AlterCheck:
		return instant
	case *sqlparser.AlterCharset:
		return copyShared("converting the character set rewrites every row")
	case *sqlparser.Force:
		return rule{AlgorithmInplace, LockNone, "FORCE rebuilds the table"}
	case sqlparser.TableOptions:
		worst := instant
		for _, t := range o {
			r := tableOptionRule(t)
			if r.weight() > worst.weight() {
				worst = r
			}
		}
		return worst
	case *sqlparser.OrderByOption:
		return copyShared("ORDER BY copies the table")
	case *sqlparser.KeyState:
		return inplaceOnline
	}
	return copyShared("the rules do not know this change")
}

// tableOptionRule is the rule for one table option.
func tableOptionRule(t *sqlparser.TableOption) rule {
	switch strings.ToLower(t.Name) {
	case "comment", "stats_persistent", "stats_auto_recalc", "stats_sample_pages":
		return instant
	case "charset", "character set", "collate", "default charset", "default character set", "default collate":
		return instant // the table's default only: existing columns keep theirs
	case "auto_increment":
		return inplaceOnline
	case "engine", "row_format", "key_block_size":
		return rule{AlgorithmInplace, LockNone, "changing " + strings.ToUpper(t.Name) + " rebuilds the table"}
	}
	return copyShared("the rules do not know table option " + t.Name)
}

// columnRule is the rule for modifying column name of from into def.
func columnRule(srv server, from *sqlparser.CreateTable, name string, def *sqlparser.ColumnDefinition, moves bool) rule {
	old := findColumn(from, name)
	if old == nil {
		return copyShared("the rules do not know the column's current type")
	}
	ot, nt := old.Type, def.Type
	sameType := baseType(ot) == baseType(nt) && colCollate(ot) == colCollate(nt)
	switch {
	case !sameType && extendsEnum(ot, nt):
		// Appending ENUM or SET members is metadata only.
	case !sameType && extendsVarchar(ot, nt):
		if moves {
			return rule{AlgorithmInplace, LockNone, "moving a column rebuilds the table"}
		}
		return inplaceOnline
	case !sameType:
		return copyShared("changing the column's type copies the table")
	}
	if isStoredGenerated(ot) || isStoredGenerated(nt) {
		return copyShared("changing a stored generated column copies the table")
	}
	if nullable(ot) != nullable(nt) {
		return rule{AlgorithmInplace, LockNone, "changing NULL / NOT NULL rebuilds the table"}
	}
	if moves {
		if srv.mariadb && srv.atLeast(10, 4, 0) {
			return instant
		}
		return rule{AlgorithmInplace, LockNone, "moving a column rebuilds the table"}
	}
	return instant // default, comment, name
}

// instantAnywhere: ADD COLUMN at any position and DROP COLUMN are INSTANT
// (MySQL 8.0.29+, MariaDB 10.4+).
func (s server) instantAnywhere() bool {
	if s.mariadb {
		return s.atLeast(10, 4, 0)
	}
	return s.atLeast(8, 0, 29)
}

// instantAddLast: ADD COLUMN as the last column is INSTANT (MySQL 8.0.12+,
// MariaDB 10.3+).
func (s server) instantAddLast() bool {
	if s.mariadb {
		return s.atLeast(10, 3, 0)
	}
	return s.atLeast(8, 0, 12)
}

func findColumn(ct *sqlparser.CreateTable, name string) *sqlparser.ColumnDefinition {
	if ct == nil || ct.TableSpec == nil {
		return nil
	}
	for _, c := range ct.TableSpec.Columns {
		if strings.EqualFold(c.Name.String(), name) {
			return c
		}
	}
	return nil
}

func hasIndexType(ct *sqlparser.CreateTable, t sqlparser.IndexType) bool {
	if ct.TableSpec == nil {
		return false
	}
	for _, ix := range ct.TableSpec.Indexes {
		if ix.Info.Type == t {
			return true
		}
	}
	return false
}

// baseType is t without its options, and without the display width of an
// integer type (int(11) is int).
func baseType(t *sqlparser.ColumnType) string {
	c := *t
	switch strings.ToLower(c.Type) {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		c.Length = nil
	}
	return typeString(&c)
}

func colCollate(t *sqlparser.ColumnType) string {
	if t.Options == nil {
		return ""
	}
	return strings.ToLower(t.Options.Collate)
}

func isStoredGenerated(t *sqlparser.ColumnType) bool {
	return t.Options != nil && t.Options.As != nil && t.Options.Storage == sqlparser.StoredStorage
}

// extendsEnum: nt is ot's ENUM or SET with members appended at the end.
func extendsEnum(ot, nt *sqlparser.ColumnType) bool {
	if !strings.EqualFold(ot.Type, nt.Type) || (!strings.EqualFold(ot.Type, "enum") && !strings.EqualFold(ot.Type, "set")) {
		return false
	}
	if len(nt.EnumValues) <= len(ot.EnumValues) {
		return false
	}
	for i, v := range ot.EnumValues {
		if nt.EnumValues[i] != v {
			return false
		}
	}
	// A SET or ENUM whose storage grows (past 8 SET members, 255 ENUM
	// members) is rewritten.
	if strings.EqualFold(ot.Type, "set") {
		return (len(ot.EnumValues)+7)/8 == (len(nt.EnumValues)+7)/8
	}
	return (len(ot.EnumValues) > 255) == (len(nt.EnumValues) > 255)
}

// extendsVarchar: nt is ot's VARCHAR made longer without crossing 255
// bytes (the length prefix stays one byte), in place.
func extendsVarchar(ot, nt *sqlparser.ColumnType) bool {
	if !strings.EqualFold(ot.Type, "varchar") || !strings.EqualFold(nt.Type, "varchar") || ot.Length == nil || nt.Length == nil {
		return false
	}
	if *nt.Length < *ot.Length || colCollate(ot) != colCollate(nt) || !strings.EqualFold(ot.Charset.Name, nt.Charset.Name) {
		return false
	}
	// 4 bytes per character is the worst case (utf8mb4).
	return (*ot.Length*4 <= 255) == (*nt.Length*4 <= 255)
}
