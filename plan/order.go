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
