package plan

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"vitess.io/vitess/go/vt/schemadiff"
)

// orderDiffs returns sd's diffs in an order that keeps the schema valid
// after each statement. schemadiff's OrderedDiffs searches permutations,
// which takes exponential time when new tables reference each other in a
// cycle (sakila's store and staff: 30 s for 16 tables). In that case the
// new tables are created first, parents before children and cycles broken
// by name (they need FOREIGN_KEY_CHECKS=0, as any tool's would), and
// schemadiff orders the remaining changes from there.
func orderDiffs(ctx context.Context, env *schemadiff.Environment, sd *schemadiff.SchemaDiff, fromQueries []string, to *schemadiff.Schema) ([]schemadiff.EntityDiff, error) {
	var creates []*schemadiff.CreateTableEntityDiff
	for _, d := range sd.UnorderedDiffs() {
		if c, ok := d.(*schemadiff.CreateTableEntityDiff); ok {
			creates = append(creates, c)
		}
	}
	parents := map[string][]string{}
	for _, c := range creates {
		_, t := c.Entities()
		ct := t.(*schemadiff.CreateTableEntity)
		parents[ct.Name()] = referencedTables(ct)
	}
	if !hasCycle(parents) {
		return sd.OrderedDiffs(ctx)
	}
	var out []schemadiff.EntityDiff
	byName := map[string]*schemadiff.CreateTableEntityDiff{}
	for _, c := range creates {
		byName[c.EntityName()] = c
	}
	mid := slices.Clone(fromQueries)
	for _, name := range topoOrder(parents) {
		out = append(out, byName[name])
		mid = append(mid, byName[name].CanonicalStatementString())
	}
	midSchema, err := schemadiff.NewSchemaFromQueries(env, mid)
	if err != nil {
		return nil, fmt.Errorf("new tables reference each other in a cycle and depend on other changes; split the change in two: %w", err)
	}
	rest, err := schemadiff.DiffSchemas(env, midSchema, to, diffHints())
	if err != nil {
		return nil, err
	}
	more, err := rest.OrderedDiffs(ctx)
	if err != nil {
		return nil, err
	}
	return append(out, more...), nil
}

// hasCycle reports whether the graph of tables to the tables they reference
// (only those in the graph; self-references aside) has a cycle.
func hasCycle(parents map[string][]string) bool {
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var visit func(n string) bool
	visit = func(n string) bool {
		state[n] = active
		for _, p := range parents[n] {
			if _, ok := parents[p]; !ok || p == n {
				continue
			}
			switch state[p] {
			case active:
				return true
			case unseen:
				if visit(p) {
					return true
				}
			}
		}
		state[n] = done
		return false
	}
	for _, n := range sortedNames(parents) {
		if state[n] == unseen && visit(n) {
			return true
		}
	}
	return false
}

// topoOrder lists the graph's tables parents first; where a cycle leaves
// no table without unplaced parents, the first remaining by name goes next.
func topoOrder(parents map[string][]string) []string {
	placed := map[string]bool{}
	var out []string
	names := sortedNames(parents)
	for len(out) < len(names) {
		progress := false
		for _, n := range names {
			if placed[n] {
				continue
			}
			ready := true
			for _, p := range parents[n] {
				if _, in := parents[p]; in && p != n && !placed[p] {
					ready = false
					break
				}
			}
			if ready {
				placed[n] = true
				out = append(out, n)
				progress = true
			}
		}
		if !progress {
			for _, n := range names {
				if !placed[n] {
					placed[n] = true
					out = append(out, n)
					break
				}
			}
		}
	}
	return out
}

func sortedNames(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// narrowToChanges restricts sd to the tables whose order can matter, so
// that schemadiff's ordering, which re-validates the whole schema after
// every step it tries, works on tens of tables instead of hundreds. The
// scope is the tables that change, the tables with a foreign key to one
// of them, and every table those reference, transitively (on both sides).
// That yields the same order as the whole schema:
//   - each diff is computed from its own table alone;
//   - schemadiff lists the diffs in its foreign-key order (level, then
//     name), and a table's level depends only on the tables it references,
//     which are all in scope;
//   - a step can only be refused for a foreign key whose child or parent
//     changes, and both ends of every such key are in scope, as is every
//     table they reference, so the narrowed schema is valid wherever the
//     whole one is.
//
// It returns the narrowed diff, the live definitions of the tables in
// scope, the narrowed desired schema and the number of tables in scope.
// When narrowing would not leave out any table, or does not reproduce
// the same diffs in the same order, sd and the whole schema are returned.
func narrowToChanges(env *schemadiff.Environment, sd *schemadiff.SchemaDiff, from, to *schemadiff.Schema, liveDefs map[string]string) (*schemadiff.SchemaDiff, []string, *schemadiff.Schema, int) {
	diffs := sd.UnorderedDiffs()
	changed := make([]string, len(diffs))
	for i, d := range diffs {
		changed[i] = d.EntityName()
	}
	g := newFKGraph(from, to)
	if len(g.scope(changed)) < g.tables {
		if sub, q, subTo, n, ok := narrowTo(env, g, diffs, from, to, liveDefs); ok {
			return sub, q, subTo, n
		}
	}
	q := make([]string, 0, len(liveDefs))
	for _, name := range sortedKeys(liveDefs) {
		q = append(q, liveDefs[name])
	}
	return sd, q, to, g.tables
}

// sameDiffs reports whether a and b hold the same statements in the same
// order.
func sameDiffs(a, b []schemadiff.EntityDiff) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].CanonicalStatementString() != b[i].CanonicalStatementString() {
			return false
		}
	}
	return true
}

// orderScope returns the tables narrowToChanges keeps for changed, and how
// many tables from and to hold together.
func orderScope(from, to *schemadiff.Schema, changed []string) (scope map[string]bool, all int) {
	g := newFKGraph(from, to)
	return g.scope(changed), g.tables
}

// fkGraph is the foreign-key graph of two schemas together.
type fkGraph struct {
	parents, children map[string][]string
	tables            int
}

func newFKGraph(from, to *schemadiff.Schema) *fkGraph {
	g := &fkGraph{parents: map[string][]string{}, children: map[string][]string{}}
	tables := map[string]bool{}
	for _, s := range []*schemadiff.Schema{from, to} {
		for _, t := range s.Tables() {
			tables[t.Name()] = true
			for _, p := range referencedTables(t) {
				g.parents[t.Name()] = append(g.parents[t.Name()], p)
				g.children[p] = append(g.children[p], t.Name())
			}
		}
	}
	g.tables = len(tables)
	return g
}

// scope is the changed tables, the tables with a foreign key to one of
// them, and every table those reference, transitively.
func (g *fkGraph) scope(changed []string) map[string]bool {
	scope := map[string]bool{}
	var queue []string
	add := func(n string) {
		if !scope[n] {
			scope[n] = true
			queue = append(queue, n)
		}
	}
	for _, n := range changed {
		add(n)
		for _, c := range g.children[n] {
			add(c)
		}
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, p := range g.parents[n] {
			add(p)
		}
	}
	return scope
}

// orderByComponents orders sd's diffs one group at a time: the changed
// tables tied by foreign keys between changed tables go in one group, and
// each group is ordered within its own scope (narrowToChanges), so the
// cost grows with the groups' sizes instead of with the square of all the
// changes (schemadiff re-validates its whole schema after each step it
// tries). The groups' orders are merged by schemadiff's own listing order
// (foreign-key level, then name), keeping each group's order. It returns
// false when a group cannot be narrowed exactly; the caller then orders
// the whole.
func orderByComponents(ctx context.Context, env *schemadiff.Environment, sd *schemadiff.SchemaDiff, from, to *schemadiff.Schema, liveDefs map[string]string) ([]schemadiff.EntityDiff, int, bool, error) {
	diffs := sd.UnorderedDiffs()
	if len(diffs) < 2 {
		return nil, 0, false, nil
	}
	pos := map[string]int{}
	for i, d := range diffs {
		if _, dup := pos[d.EntityName()]; dup {
			return nil, 0, false, nil
		}
		pos[d.EntityName()] = i
	}
	parent := map[string]string{}
	var find func(string) string
	find = func(n string) string {
		if p, ok := parent[n]; ok && p != n {
			r := find(p)
			parent[n] = r
			return r
		}
		return n
	}
	for _, s := range []*schemadiff.Schema{from, to} {
		for _, t := range s.Tables() {
			if _, ok := pos[t.Name()]; !ok {
				continue
			}
			for _, p := range referencedTables(t) {
				if _, ok := pos[p]; ok {
					a, b := find(t.Name()), find(p)
					if a != b {
						parent[a] = b
					}
				}
			}
		}
	}
	// A group's scope (its tables' foreign-key neighbourhood) must hold no
	// other group's changes: merge groups until none does.
	var (
		groups map[string][]schemadiff.EntityDiff
		roots  []string
	)
	g := newFKGraph(from, to)
	for merged := true; merged; {
		merged = false
		groups = map[string][]schemadiff.EntityDiff{}
		roots = roots[:0]
		for _, d := range diffs {
			r := find(d.EntityName())
			if _, ok := groups[r]; !ok {
				roots = append(roots, r)
			}
			groups[r] = append(groups[r], d)
		}
		for _, r := range roots {
			names := make([]string, len(groups[r]))
			for i, d := range groups[r] {
				names[i] = d.EntityName()
			}
			for n := range g.scope(names) {
				if _, changed := pos[n]; changed {
					if a, b := find(n), find(r); a != b {
						parent[a] = b
						merged = true
					}
				}
			}
		}
	}
	if len(roots) < 2 {
		return nil, 0, false, nil
	}
	var lists [][]schemadiff.EntityDiff
	scope := 0
	for _, r := range roots {
		sub, fromQueries, subTo, n, ok := narrowTo(env, g, groups[r], from, to, liveDefs)
		if !ok {
			return nil, 0, false, nil
		}
		ordered, err := orderDiffs(ctx, env, sub, fromQueries, subTo)
		if err != nil {
			return nil, 0, false, err
		}
		lists = append(lists, ordered)
		scope += n
	}
	// Merge: the next diff is the one listed first by schemadiff among
	// the groups' next diffs.
	out := make([]schemadiff.EntityDiff, 0, len(diffs))
	next := make([]int, len(lists))
	for len(out) < len(diffs) {
		best := -1
		for g, l := range lists {
			if next[g] >= len(l) {
				continue
			}
			if best < 0 || pos[l[next[g]].EntityName()] < pos[lists[best][next[best]].EntityName()] {
				best = g
			}
		}
		if best < 0 {
			return nil, 0, false, nil
		}
		out = append(out, lists[best][next[best]])
		next[best]++
	}
	return out, scope, true, nil
}

// narrowTo is narrowToChanges for the diffs of one group: the schemas of
// their scope, and whether diffing those reproduces exactly these diffs.
func narrowTo(env *schemadiff.Environment, g *fkGraph, diffs []schemadiff.EntityDiff, from, to *schemadiff.Schema, liveDefs map[string]string) (*schemadiff.SchemaDiff, []string, *schemadiff.Schema, int, bool) {
	changed := make([]string, len(diffs))
	for i, d := range diffs {
		changed[i] = d.EntityName()
	}
	scope := g.scope(changed)
	names := make([]string, 0, len(scope))
	for n := range scope {
		names = append(names, n)
	}
	sort.Strings(names)
	var (
		fromTables, toTables []schemadiff.Entity
		fromQueries          []string
	)
	for _, n := range names {
		if t := from.Table(n); t != nil {
			fromTables = append(fromTables, t)
			fromQueries = append(fromQueries, liveDefs[n])
		}
		if t := to.Table(n); t != nil {
			toTables = append(toTables, t)
		}
	}
	subFrom, err := schemadiff.NewSchemaFromEntities(env, fromTables)
	if err != nil {
		return nil, nil, nil, 0, false
	}
	subTo, err := schemadiff.NewSchemaFromEntities(env, toTables)
	if err != nil {
		return nil, nil, nil, 0, false
	}
	sub, err := schemadiff.DiffSchemas(env, subFrom, subTo, diffHints())
	if err != nil || !sameDiffs(sub.UnorderedDiffs(), diffs) {
		return nil, nil, nil, 0, false
	}
	return sub, fromQueries, subTo, len(scope), true
}
