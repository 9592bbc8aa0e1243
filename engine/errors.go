package engine

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/go-sql-driver/mysql"
)

// Error classes. Transient classes are retried; permanent classes fail an
// apply for good. The ledger adds its own (retries_exhausted, drift, ...).
const (
	// Transient.
	ClassLockWaitTimeout    = "lock_wait_timeout"
	ClassDeadlock           = "deadlock"
	ClassTooManyConnections = "too_many_connections"
	ClassServerShutdown     = "server_shutdown"
	ClassConnectionKilled   = "connection_killed"
	ClassReadOnly           = "read_only"
	ClassConnectionLost     = "connection_lost"
	ClassTimeout            = "timeout"
	ClassInterrupted        = "interrupted"

	// Permanent.
	ClassSyntax         = "syntax"
	ClassDuplicate      = "duplicate"
	ClassMissingObject  = "missing_object"
	ClassPermission     = "permission"
	ClassDataTruncation = "data_truncation"
	ClassUnsupported    = "unsupported"
	// ClassBrokenPromise: the server refused the ALGORITHM/LOCK the plan
	// promised (it would have run the change in a more blocking way).
	ClassBrokenPromise = "broken_promise"
	ClassUnknown       = "unknown"
)

// RetryableError is a transient failure: the same work may succeed later.
type RetryableError struct {
	Class string
	Err   error
}

func (e *RetryableError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *RetryableError) Unwrap() error { return e.Err }

// PermanentError is a failure that retrying will not fix.
type PermanentError struct {
	Class string
	Err   error
}

func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *PermanentError) Unwrap() error { return e.Err }

// IsRetryable reports whether err's chain holds a *RetryableError.
func IsRetryable(err error) bool {
	var r *RetryableError
	return errors.As(err, &r)
}

// Class returns err's class: the class of the first *RetryableError or
// *PermanentError in its chain, or else the class ClassifyMySQL gives it.
// It returns "" for nil.
func Class(err error) string {
	if err == nil {
		return ""
	}
	if c, ok := classOf(err); ok {
		return c
	}
	c, _ := classOf(ClassifyMySQL(err))
	return c
}

// classOf finds the outermost classified error in err's chain.
func classOf(err error) (string, bool) {
	for e := err; e != nil; {
		switch t := e.(type) {
		case *RetryableError:
			return t.Class, true
		case *PermanentError:
			return t.Class, true
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			e = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				if c, ok := classOf(x); ok {
					return c, true
				}
			}
			return "", false
		default:
			return "", false
		}
	}
	return "", false
}

// mysqlClasses maps server and client error numbers to (class, transient).
var mysqlClasses = map[uint16]struct {
	class     string
	transient bool
}{
	// Transient: locks, load, failover, lost connections.
	1205: {ClassLockWaitTimeout, true},
	3572: {ClassLockWaitTimeout, true}, // MySQL 8 NOWAIT
	1213: {ClassDeadlock, true},
	1040: {ClassTooManyConnections, true},
	1203: {ClassTooManyConnections, true}, // max_user_connections
	1053: {ClassServerShutdown, true},
	1927: {ClassConnectionKilled, true}, // MariaDB: connection was killed
	1317: {ClassConnectionKilled, true}, // query execution was interrupted
	1290: {ClassReadOnly, true},
	1836: {ClassReadOnly, true},
	1792: {ClassReadOnly, true}, // read-only transaction
	2002: {ClassConnectionLost, true},
	2003: {ClassConnectionLost, true},
	2006: {ClassConnectionLost, true},
	2013: {ClassConnectionLost, true},
	2055: {ClassConnectionLost, true},
	4031: {ClassConnectionLost, true}, // MySQL: disconnected for inactivity
	1158: {ClassConnectionLost, true}, // net read error
	1159: {ClassConnectionLost, true}, // net read timeout
	1160: {ClassConnectionLost, true}, // net write error
	1161: {ClassConnectionLost, true}, // net write timeout
	1969: {ClassTimeout, true},        // MariaDB max_statement_time
	3024: {ClassTimeout, true},        // MySQL max_execution_time

	// Permanent.
	1064: {ClassSyntax, false},
	1149: {ClassSyntax, false},
	1050: {ClassDuplicate, false},
	1060: {ClassDuplicate, false},
	1061: {ClassDuplicate, false},
	1062: {ClassDuplicate, false},
	1022: {ClassDuplicate, false},
	1826: {ClassDuplicate, false},
	1146: {ClassMissingObject, false},
	1054: {ClassMissingObject, false},
	1091: {ClassMissingObject, false},
	1044: {ClassPermission, false},
	1045: {ClassPermission, false},
	1142: {ClassPermission, false},
	1143: {ClassPermission, false},
	1227: {ClassPermission, false},
	1265: {ClassDataTruncation, false},
	1366: {ClassDataTruncation, false},
	1406: {ClassDataTruncation, false},
	1292: {ClassDataTruncation, false},
	1845: {ClassUnsupported, false}, // ALGORITHM/LOCK not supported
	1846: {ClassUnsupported, false},
}

// ClassifyMySQL wraps err in a *RetryableError or *PermanentError according
// to what went wrong: lock waits, deadlocks, overload, failover and lost
// connections are transient; syntax, duplicates, missing objects,
// permissions, data truncation and anything unknown are permanent (unknown
// server errors get the class unknown_<number>). An error already
// classified is returned unchanged, and nil stays nil.
func ClassifyMySQL(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := classOf(err); ok {
		return err
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		if c, ok := mysqlClasses[me.Number]; ok {
			if c.transient {
				return &RetryableError{Class: c.class, Err: err}
			}
			return &PermanentError{Class: c.class, Err: err}
		}
		return &PermanentError{Class: fmt.Sprintf("unknown_%d", me.Number), Err: err}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &RetryableError{Class: ClassTimeout, Err: err}
	case errors.Is(err, context.Canceled):
		// The worker is stopping: the apply is interrupted, not broken.
		return &RetryableError{Class: ClassInterrupted, Err: err}
	case errors.Is(err, driver.ErrBadConn),
		errors.Is(err, mysql.ErrInvalidConn),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF):
		return &RetryableError{Class: ClassConnectionLost, Err: err}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return &RetryableError{Class: ClassTimeout, Err: err}
		}
		return &RetryableError{Class: ClassConnectionLost, Err: err}
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return &RetryableError{Class: ClassConnectionLost, Err: err}
	}
	return &PermanentError{Class: ClassUnknown, Err: err}
}
