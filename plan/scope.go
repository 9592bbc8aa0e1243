package plan

import (
	"regexp"
	"strings"
)

// A plan diffs only the tables whose diff or order can depend on a
// change: the diff of a table is computed from the table alone, and the
// tables mayDiffer leaves out are, once the server normalizes them,
// their live definitions word for word. So the live and desired schemas
// are built over diffScope's tables instead of all of them: at 5,000
// tables with 500 changed, a quarter of the parsing, normalizing and
// diffing. narrowToChanges then narrows further, to the tables that do
// change.

// diffScope returns the tables the schemas of a plan must hold: the
// tables that may change (load: through the shadow; and the live tables
// no file declares, which the plan drops), the tables with a foreign key
// to one of those, and every table those reference, transitively, as
// narrowToChanges's scope is drawn. A table outside it is unchanged, and
// so is every table it references, so each check schemadiff makes of it
// holds in the desired schema as it does in the live one. It returns nil
// (diff everything) when the scope is every table, or when a foreign key
// or CHECK name of the desired schema is used twice: schemadiff reports
// that for the whole schema, and only the whole schema shows it.
//
// liveDefs are the live definitions, shadowDefs the server's definitions
// of the loaded tables, parsed the desired tables' parses; mariadb says
// CHECK names are per table (diffForm qualifies them).
func diffScope(d *Desired, parsed map[string]*parsedTable, liveDefs, shadowDefs map[string]string, load map[string]Table, mariadb bool) map[string]bool {
	g := &fkGraph{parents: map[string][]string{}, children: map[string][]string{}}
	edge := func(child, parent string) {
		g.parents[child] = append(g.parents[child], parent)
		g.children[parent] = append(g.children[parent], child)
	}
	all := make(map[string]bool, len(liveDefs)+len(load))
	for name, def := range liveDefs {
		all[name] = true
		for _, p := range referencedNames(def) {
			edge(name, p)
		}
	}
	var changed []string
	desired := make(map[string]bool, len(d.Tables))
	for _, t := range d.Tables {
		desired[t.Name] = true
		all[t.Name] = true
		if _, ok := load[t.Name]; !ok {
			continue
		}
		changed = append(changed, t.Name)
		for _, p := range referencedNames(shadowDefs[t.Name]) {
			edge(t.Name, p)
		}
		if pt := parsed[t.Name]; pt != nil {
			for _, fk := range pt.fks {
				edge(t.Name, fk.parent)
			}
		}
	}
	for _, name := range sortedKeys(liveDefs) {
		if !desired[name] {
			changed = append(changed, name)
		}
	}
	g.tables = len(all)
	scope := g.scope(changed)
	if len(scope) >= g.tables || reusedConstraintNames(d, liveDefs, shadowDefs, mariadb) {
		return nil
	}
	return scope
}

// constraintNameRE finds a SHOW CREATE TABLE text's named foreign keys
// and CHECK constraints.
var constraintNameRE = regexp.MustCompile("CONSTRAINT `((?:[^`]|``)+)` (FOREIGN KEY|CHECK) ")

// reusedConstraintNames reports whether two tables of the desired schema
// (the shadow's definitions of the loaded tables, the live ones of the
// others) name a foreign key alike, or, on MySQL, a CHECK constraint.
func reusedConstraintNames(d *Desired, liveDefs, shadowDefs map[string]string, mariadb bool) bool {
	seen := map[string]string{} // kind and name -> table
	for _, t := range d.Tables {
		def, ok := shadowDefs[t.Name]
		if !ok {
			def = liveDefs[t.Name]
		}
		if !strings.Contains(def, "CONSTRAINT `") {
			continue
		}
		for _, m := range constraintNameRE.FindAllStringSubmatch(def, -1) {
			if m[2] == "CHECK" && mariadb {
				continue
			}
			key := m[2] + " " + m[1]
			if other, dup := seen[key]; dup && other != t.Name {
				return true
			}
			seen[key] = t.Name
		}
	}
	return false
}
