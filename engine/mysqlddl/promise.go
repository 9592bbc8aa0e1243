package mysqlddl

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/ternhq/tern/engine"
)

// promiseClause renders the ALGORITHM/LOCK clause that holds the server to
// a plan's promise; "" when there is none the server knows.
func promiseClause(algorithm, lock string) string {
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

var promiseReasonRE = regexp.MustCompile(`(?i)Reason: (.*?)\. Try `)

// refusedPromise reports whether err is the server refusing an
// ALGORITHM/LOCK clause (ER_ALTER_OPERATION_NOT_SUPPORTED 1845,
// ER_ALTER_OPERATION_NOT_SUPPORTED_REASON 1846), and the server's words.
func refusedPromise(err error) (string, bool) {
	var me *mysql.MySQLError
	if !errors.As(err, &me) || (me.Number != 1845 && me.Number != 1846) {
		return "", false
	}
	if m := promiseReasonRE.FindStringSubmatch(me.Message); m != nil {
		return m[1], true
	}
	return strings.TrimSuffix(me.Message, "."), true
}

// brokenPromise is the permanent error of a server that refused the
// promised clause: it says what was promised, the server's reason, that
// nothing changed, and what to do.
func brokenPromise(clause, reason string, err error) error {
	return &engine.PermanentError{Class: engine.ClassBrokenPromise, Err: fmt.Errorf(
		"the server cannot run this change with %s as the plan promised (%s); nothing was changed. "+
			"The table or the server changed since the plan: comment /tern plan to see how the server runs it now, "+
			"then apply again (with --allow-blocking if it must block writes): %w", clause, reason, err)}
}

// partitionOptionRE finds where an ALTER TABLE's partition options begin
// (PARTITION BY, REMOVE PARTITIONING): the grammar wants every
// ALGORITHM/LOCK clause before them.
var partitionOptionRE = regexp.MustCompile(`(?i)\s(PARTITION\s+BY|REMOVE\s+PARTITIONING)\s`)

// withClause returns ddl with clause (", ALGORITHM=..., LOCK=...") among
// its alter specifications: at the end, or before its partition options,
// without the comma when nothing precedes it.
func withClause(ddl, clause string) string {
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

// alterOnlyRE matches "ALTER TABLE `name`" with no specification after it.
var alterOnlyRE = regexp.MustCompile("(?is)^\\s*ALTER\\s+TABLE\\s+(`(?:[^`]|``)+`|\\S+)$")
