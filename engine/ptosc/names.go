package ptosc

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ternhq/tern/engine"
)

// maxName is MySQL's and MariaDB's limit on a table's, trigger's and user
// lock's name, in characters.
const maxName = 64

// names are the objects one task's copy makes on the target.
type names struct {
	// shadow is the new table pt-online-schema-change fills:
	// _tern_<apply>_<seq>_new_<table>. Names starting with _tern_ are
	// reserved for tern and left out of plans, so a shadow left by a dead
	// worker is never planned as a table to drop.
	shadow string
	// old is the name the original table takes at the swap, until it is
	// dropped: _tern_<apply>_<seq>_old_<table>.
	old string
	// triggers are pt-online-schema-change's own names for the triggers it
	// puts on the table (it gives no option to choose them):
	// pt_osc_<db>_<table>_ins, _upd, _del.
	triggers []string
	// lock is the user lock held while the table is copied, so that one
	// copy of a table runs at a time whoever starts it.
	lock string
}

// namesFor returns the names of task seq of apply applyID, on table of
// schema db.
func namesFor(db, table string, applyID int64, seq int) names {
	id := strconv.FormatInt(applyID, 10) + "_" + strconv.Itoa(seq)
	// pt-online-schema-change: 'pt_osc_' . db . '_' . tbl, \W replaced by
	// _, cut to 60 characters.
	prefix := []rune(nonWord.ReplaceAllString("pt_osc_"+db+"_"+table, "_"))
	if len(prefix) > 60 {
		prefix = prefix[:60]
	}
	p := string(prefix)
	lock := "tern_online_" + db + "." + table
	if len([]rune(lock)) > maxName {
		sum := sha256.Sum256([]byte(db + "." + table))
		lock = "tern_online_" + hex.EncodeToString(sum[:20])
	}
	return names{
		shadow:   cut("_tern_" + id + "_new_" + table),
		old:      cut("_tern_" + id + "_old_" + table),
		triggers: []string{p + "_ins", p + "_upd", p + "_del"},
		lock:     lock,
	}
}

// nonWord is Perl's \W over ASCII.
var nonWord = regexp.MustCompile(`[^A-Za-z0-9_]`)

func cut(s string) string {
	if r := []rune(s); len(r) > maxName {
		return string(r[:maxName])
	}
	return s
}

// alterRE splits "ALTER TABLE <name> <specifications>".
var alterRE = regexp.MustCompile("(?is)^\\s*ALTER\\s+TABLE\\s+(`(?:[^`]|``)+`|[^\\s`]+)(.*)$")

// alterSpec returns the part of an ALTER TABLE of table after its name:
// what pt-online-schema-change's --alter takes. The DDL is tern's own
// rendering of the plan, never text from a comment.
func alterSpec(ddl, table string) (string, error) {
	m := alterRE.FindStringSubmatch(ddl)
	if m == nil {
		return "", errors.New("not an ALTER TABLE: only ALTER TABLE runs through pt-online-schema-change")
	}
	name := m[1]
	if strings.HasPrefix(name, "`") {
		name = strings.ReplaceAll(name[1:len(name)-1], "``", "`")
	}
	if name != table {
		return "", fmt.Errorf("the statement changes table %s, not %s", name, table)
	}
	spec := strings.TrimRight(strings.TrimSpace(m[2]), "; \t\r\n")
	if spec == "" {
		return "", errors.New("no change after the table name")
	}
	return spec, nil
}

// progressRE reads pt-online-schema-change's --progress lines:
// "Copying `d`.`t`:  43% 00:40 remain" (the time left is MM:SS, HH:MM:SS
// or D+HH:MM:SS).
var progressRE = regexp.MustCompile(`(\d+)% (?:(\d+)\+)?(\d+):(\d+)(?::(\d+))? remain`)

// parseProgress reads one line of the tool's progress output.
func parseProgress(line string) (engine.Progress, bool) {
	m := progressRE.FindStringSubmatch(line)
	if m == nil {
		return engine.Progress{}, false
	}
	n := func(s string) time.Duration { v, _ := strconv.Atoi(s); return time.Duration(v) }
	pct, _ := strconv.ParseFloat(m[1], 64)
	var left time.Duration
	if m[5] == "" {
		left = n(m[3])*time.Minute + n(m[4])*time.Second
	} else {
		left = n(m[3])*time.Hour + n(m[4])*time.Minute + n(m[5])*time.Second
	}
	left += n(m[2]) * 24 * time.Hour
	return engine.Progress{Stage: stageCopying, Percent: pct, Remaining: left}, true
}

// stageCopying is the stage progress reports name while rows are copied.
const stageCopying = "copying rows (pt-online-schema-change)"

// optionFile renders the MySQL option file that gives the tool its user
// and password, so that neither is on its command line.
func optionFile(user, password string) string {
	q := strings.NewReplacer(`\`, `\\`, `"`, `\"`)
	return "[client]\nuser=\"" + q.Replace(user) + "\"\npassword=\"" + q.Replace(password) + "\"\n"
}
