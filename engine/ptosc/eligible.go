package ptosc

import (
	"context"
	"fmt"
	"regexp"
	"strings"
)

// ddlLimits are changes the tool cannot make safely, by what the ALTER
// says, and why.
var ddlLimits = []struct {
	re     *regexp.Regexp
	reason string
}{
	{regexp.MustCompile(`(?i)\bADD\s+(CONSTRAINT\s+(\S+\s+)?)?UNIQUE\b`),
		"pt-online-schema-change copies rows with INSERT IGNORE, so adding a unique key could silently drop duplicate rows"},
	{regexp.MustCompile(`(?i)\bDROP\s+PRIMARY\s+KEY\b`),
		"pt-online-schema-change needs the table's primary key to stay while it copies"},
	{regexp.MustCompile(`(?i)\bFOREIGN\s+KEY\b`),
		"pt-online-schema-change renames the foreign keys of the table it copies, so the live schema would no longer match the files"},
	{regexp.MustCompile(`(?i)\bRENAME\b`),
		"pt-online-schema-change does not rename tables, columns or indexes safely"},
}

// changeRE finds CHANGE [COLUMN] old new, which renames old when new
// differs.
var changeRE = regexp.MustCompile("(?i)\\bCHANGE\\s+(?:COLUMN\\s+)?(`(?:[^`]|``)+`|\\S+)\\s+(`(?:[^`]|``)+`|\\S+)")

// Eligible reports whether the engine can run ddl, an ALTER TABLE of
// table in the live schema, as an online copy: "" when it can, or else
// why not (a sentence for the plan). The tool needs a primary key or a
// unique key, no triggers on the table (it adds its own), and no foreign
// keys pointing at the table or out of it (it cannot keep the first and
// renames the second). Only the live schema is searched for foreign keys
// pointing at the table (searching every schema opens every table of the
// server); one from another schema makes the tool itself refuse at apply,
// a permanent error that says so.
func (e *Engine) Eligible(ctx context.Context, table, ddl string) (string, error) {
	spec, err := alterSpec(ddl, table)
	if err != nil {
		return "pt-online-schema-change: " + err.Error(), nil
	}
	if strings.ContainsAny(table, ",=") || strings.ContainsAny(e.database, ",=") {
		return "pt-online-schema-change cannot name a table or schema with a comma or = in its name", nil
	}
	for _, l := range ddlLimits {
		if l.re.MatchString(spec) {
			return l.reason, nil
		}
	}
	for _, m := range changeRE.FindAllStringSubmatch(spec, -1) {
		if !strings.EqualFold(strings.Trim(m[1], "`"), strings.Trim(m[2], "`")) {
			return "pt-online-schema-change does not rename columns safely", nil
		}
	}
	var triggers, keys, children, parents int
	err = e.db.QueryRowContext(ctx, `SELECT
 (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = ?),
 (SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND NON_UNIQUE = 0),
 (SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME = ?),
 (SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ?)`,
		table, table, table, table).Scan(&triggers, &keys, &children, &parents)
	if err != nil {
		return "", fmt.Errorf("can pt-online-schema-change take table %s: %w", table, err)
	}
	switch {
	case triggers > 0:
		return "the table has triggers, and pt-online-schema-change needs to add its own", nil
	case keys == 0:
		return "the table has no primary key or unique key, which pt-online-schema-change needs", nil
	case children > 0:
		return "other tables' foreign keys reference the table, which pt-online-schema-change cannot keep", nil
	case parents > 0:
		return "pt-online-schema-change renames the foreign keys of the table it copies, so the live schema would no longer match the files", nil
	}
	return "", nil
}
