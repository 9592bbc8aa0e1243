package ptosc

import (
	"fmt"
	"strings"

	"github.com/ternhq/tern/engine"
)

// classServerLoad: the tool stopped because the server was over its
// --critical-load (Threads_running); transient.
const classServerLoad = "server_load"

// classServerIO: the server failed on a file of its own (MySQL's
// "(Errcode: N ...)" errors); transient.
const classServerIO = "server_io"

// failure is one kind of pt-online-schema-change failure: a phrase of its
// output, the class, and what to tell the user.
type failure struct {
	phrase string
	class  string
	retry  bool
	advice string
}

// failures are tried in order against the tool's output.
var failures = []failure{
	{"Lock wait timeout exceeded", engine.ClassLockWaitTimeout, true,
		"a lock on the table was held longer than lock_wait_timeout (a long transaction?); its triggers and copy were dropped and the apply will be retried"},
	{"Deadlock found", engine.ClassDeadlock, true, "a deadlock stopped the copy; its triggers and copy were dropped and the apply will be retried"},
	{"Too many connections", engine.ClassTooManyConnections, true, "the server refused a connection; the apply will be retried"},
	{"Cannot connect to MySQL", engine.ClassConnectionLost, true, "the tool could not connect to the target; the apply will be retried"},
	{"Lost connection", engine.ClassConnectionLost, true, "the tool lost its connection to the target; the apply will be retried"},
	{"server has gone away", engine.ClassConnectionLost, true, "the tool lost its connection to the target; the apply will be retried"},
	{"(Errcode: ", classServerIO, true,
		"the server failed on a file of its own (a temporary file, under load?); the copy stopped and the apply will be retried"},
	{"exceeds its critical threshold", classServerLoad, true,
		"the server was too busy (over pt-online-schema-change's --critical-load); the copy stopped and the apply will be retried"},
	{"has triggers", engine.ClassUnsupported, false,
		"the table has triggers of its own, so pt-online-schema-change cannot add its own; the table changed since the plan: comment /tern plan, which then shows the statement as a blocking copy"},
	{"does not have a PRIMARY KEY or a unique index", engine.ClassUnsupported, false,
		"pt-online-schema-change needs a primary key or a NOT NULL unique index on the table; add one first, or comment /tern plan and apply with --allow-blocking"},
	{"add an unique key", engine.ClassUnsupported, false,
		"pt-online-schema-change copies rows with INSERT IGNORE, so adding a unique key could silently drop duplicate rows; comment /tern plan and apply with --allow-blocking (direct DDL refuses duplicates)"},
	{"foreign keys that reference the table", engine.ClassUnsupported, false,
		"other tables' foreign keys reference this table, which pt-online-schema-change cannot keep; comment /tern plan and apply with --allow-blocking"},
	{"command denied", engine.ClassPermission, false,
		"tern's user lacks a privilege pt-online-schema-change needs (it needs TRIGGER on the schema besides tern's usual ones); grant it and comment /tern retry"},
	{"Access denied", engine.ClassPermission, false,
		"the target refused tern's user; check the DSN's user and password, and that it has TRIGGER on the schema"},
}

// classify turns the output of a pt-online-schema-change run that exited
// with status code into a classified error that says what happened and
// what to do, quoting the tool's last words.
func classify(out string, code int) error {
	last := lastLines(out, 6)
	for _, f := range failures {
		if strings.Contains(out, f.phrase) {
			err := fmt.Errorf("pt-online-schema-change failed (exit %d): %s. It said: %s", code, f.advice, last)
			if f.retry {
				return &engine.RetryableError{Class: f.class, Err: err}
			}
			return &engine.PermanentError{Class: f.class, Err: err}
		}
	}
	return &engine.PermanentError{Class: engine.ClassUnknown, Err: fmt.Errorf(
		"pt-online-schema-change failed (exit %d); its triggers and copy were dropped, the table is unchanged. It said: %s", code, last)}
}

// lastLines returns out's last n non-blank lines, joined by " | ".
func lastLines(out string, n int) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, " | ")
}
