// Package ddlclause renders and places the ALGORITHM/LOCK clause of an
// ALTER TABLE and reads the server's refusal of one. The planner asks the
// server with it how a change would run; the engine holds the server to
// the plan's answer with it. Both must place the clause alike.
package ddlclause

import (
	"errors"
	"regexp"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// Clause renders the ALGORITHM/LOCK clause of an ALTER TABLE for algorithm
// and lock: ", ALGORITHM=INSTANT" or ", ALGORITHM=INPLACE, LOCK=NONE". It
// is "" when algorithm is not INSTANT, INPLACE or COPY.
func Clause(algorithm, lock string) string {
	switch algorithm {
	case "INSTANT":
		return ", ALGORITHM=INSTANT"
	case "INPLACE", "COPY":
		if lock == "" {
			return ", ALGORITHM=" + algorithm
		}
		return ", ALGORITHM=" + algorithm + ", LOCK=" + lock
	}
	return ""
}

// partitionOptionRE finds where an ALTER TABLE's partition options begin
// (PARTITION BY, REMOVE PARTITIONING): the grammar wants every
// ALGORITHM/LOCK clause before them.
var partitionOptionRE = regexp.MustCompile(`(?i)\s(PARTITION\s+BY|REMOVE\s+PARTITIONING)\s`)

// alterOnlyRE matches "ALTER TABLE `name`" with no specification after it.
var alterOnlyRE = regexp.MustCompile("(?is)^\\s*ALTER\\s+TABLE\\s+(`(?:[^`]|``)+`|\\S+)$")

// Insert returns ddl, an ALTER TABLE without a trailing semicolon, with
// clause (as Clause renders it) among its alter specifications: at the
// end, or before its partition options, without the comma when nothing
// precedes it.
func Insert(ddl, clause string) string {
	loc := partitionOptionRE.FindStringIndex(ddl + " ")
	if loc == nil || strings.ContainsAny(ddl[:loc[0]], "'\"") {
		return ddl + clause
	}
	head, tail := strings.TrimRight(ddl[:loc[0]], " \t\n"), ddl[loc[0]:]
	if alterOnlyRE.MatchString(head) {
		return head + " " + strings.TrimPrefix(clause, ", ") + tail
	}
	return head + clause + tail
}

// Server errors that refuse an ALGORITHM or LOCK clause without changing
// anything: ER_ALTER_OPERATION_NOT_SUPPORTED and
// ER_ALTER_OPERATION_NOT_SUPPORTED_REASON, on MySQL and MariaDB alike.
const (
	errNotSupported       = 1845
	errNotSupportedReason = 1846
)

var reasonRE = regexp.MustCompile(`(?i)Reason: (.*?)\. Try `)

// Refused reports whether err is the server refusing an ALGORITHM/LOCK
// clause it cannot honour (1845, 1846), and the server's reason.
func Refused(err error) (reason string, ok bool) {
	var me *mysql.MySQLError
	if !errors.As(err, &me) || (me.Number != errNotSupported && me.Number != errNotSupportedReason) {
		return "", false
	}
	if m := reasonRE.FindStringSubmatch(me.Message); m != nil {
		return m[1], true
	}
	return strings.TrimSuffix(me.Message, "."), true
}
