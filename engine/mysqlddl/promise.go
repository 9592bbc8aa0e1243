package mysqlddl

import (
	"fmt"

	"github.com/ternhq/tern/engine"
)

// brokenPromise is the permanent error of a server that refused the
// promised clause: it says what was promised, the server's reason, that
// nothing changed, and what to do.
func brokenPromise(clause, reason string, err error) error {
	return &engine.PermanentError{Class: engine.ClassBrokenPromise, Err: fmt.Errorf(
		"the server cannot run this change with %s as the plan promised (%s); nothing was changed. "+
			"The table or the server changed since the plan: comment /tern plan to see how the server runs it now, "+
			"then apply again (with --allow-blocking if it must block writes): %w", clause, reason, err)}
}
