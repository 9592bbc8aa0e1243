package plan

import (
	"strings"
	"testing"
)

// TestCheckNamesRoundTrip: diffForm qualifies a MariaDB table CHECK's
// name by its table, and restoreCheckNames gives a statement of that
// table the name back, whatever the names hold.
func TestCheckNamesRoundTrip(t *testing.T) {
	for _, tc := range []struct{ table, check string }{
		{"a", "CONSTRAINT_1"},
		{"we`ird", "po`s"},
		{"x__y", "__tern_check__z"},
	} {
		def := "CREATE TABLE " + quoteIdent(tc.table) + " (\n  `id` int(11) NOT NULL,\n  CONSTRAINT " + quoteIdent(tc.check) +
			" CHECK (`id` > 0)\n) ENGINE=InnoDB"
		form := diffForm(def, true)
		if strings.Contains(form, "CONSTRAINT "+quoteIdent(tc.check)+" ") {
			t.Errorf("%s: diffForm left the name as it was:\n%s", tc.table, form)
		}
		if got := diffForm(def, false); got != def {
			t.Errorf("%s: MySQL's form changed: %s", tc.table, got)
		}
		stmt := "ALTER TABLE " + quoteIdent(tc.table) + " DROP CHECK " + formName(t, form) + ", ADD CONSTRAINT " + formName(t, form) + " CHECK (`id` > 1)"
		want := "ALTER TABLE " + quoteIdent(tc.table) + " DROP CHECK " + quoteIdent(tc.check) + ", ADD CONSTRAINT " + quoteIdent(tc.check) + " CHECK (`id` > 1)"
		if got := restoreCheckNames(stmt, tc.table); got != want {
			t.Errorf("%s: restored\n got  %s\n want %s", tc.table, got, want)
		}
		if got := restoreCheckNames(stmt, tc.table+"x"); got != stmt {
			t.Errorf("%s: another table's statement changed: %s", tc.table, got)
		}
	}
}

// formName returns the quoted CHECK name in a diffForm text.
func formName(t *testing.T, form string) string {
	t.Helper()
	for _, l := range strings.Split(form, "\n") {
		if rest, ok := strings.CutPrefix(l, "  CONSTRAINT "); ok {
			name, _, ok := columnName("  " + rest)
			if ok {
				return quoteIdent(name)
			}
		}
	}
	t.Fatalf("no CHECK in %s", form)
	return ""
}
