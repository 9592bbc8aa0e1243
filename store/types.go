package store

import (
	"errors"
	"fmt"
	"time"
)

// State is the state of an apply or of a task (CONTRACT §8).
type State string

// States of applies and tasks.
const (
	Pending         State = "pending"
	Running         State = "running"
	FailedRetryable State = "failed_retryable"
	Completed       State = "completed"
	Failed          State = "failed"
	Cancelled       State = "cancelled"
)

// Terminal reports whether no further transition leaves s.
func (s State) Terminal() bool { return s == Completed || s == Failed || s == Cancelled }

// Active reports whether an apply in s holds its target's active slot
// (pending, running or failed_retryable).
func (s State) Active() bool { return s == Pending || s == Running || s == FailedRetryable }

// Error classes the ledger itself assigns. Engines add their own
// (lock_wait_timeout, deadlock, syntax, ...).
const (
	ClassRetriesExhausted = "retries_exhausted"
	ClassRescueExhausted  = "rescue_exhausted"
	ClassRescued          = "rescued"
	ClassDrift            = "drift"
	ClassCancelled        = "cancelled"
	// ClassStillRunning: the attempt found work of an earlier one still
	// running on the target and waited, sending nothing; it is not
	// counted.
	ClassStillRunning = "still_running"
)

// Plan is a stored plan for one (repository, PR, head SHA, database,
// environment).
type Plan struct {
	ID             int64
	Repository     string // owner/name
	PR             int
	HeadSHA        string
	InstallationID int64
	Database       string
	Environment    string
	// DesiredHash is the hash of the normalized desired schema: two plans
	// with the same hash want the same schema.
	DesiredHash string
	// Desired is the desired schema as the CREATE TABLE statements the
	// planner loaded (JSON-encoded by the planner; opaque to the store),
	// kept so that a resumed apply can re-plan.
	Desired []byte
	// Statements is the ordered DDL.
	Statements []Statement
	// Lint holds the plan's findings (JSON-encoded by the planner; opaque
	// to the store).
	Lint      []byte
	CreatedAt time.Time
}

// Statement is one DDL statement of a plan; it becomes one task.
type Statement struct {
	Table   string `json:"table"`
	Kind    string `json:"kind"` // create, alter, drop
	DDL     string `json:"ddl"`
	Instant bool   `json:"instant,omitempty"`
	// Algorithm and Lock are what the plan promised for the statement
	// (INSTANT, INPLACE, COPY; NONE, SHARED, EXCLUSIVE): the engine holds
	// the server to them. Empty when the plan did not judge them.
	Algorithm string `json:"algorithm,omitempty"`
	Lock      string `json:"lock,omitempty"`
	// Cost is the planner's whole cost of the statement (JSON text from
	// the planner; opaque to the store).
	Cost string `json:"cost,omitempty"`
}

// Apply is one run of a plan against its target.
type Apply struct {
	ID             int64
	PlanID         int64
	Repository     string
	PR             int
	HeadSHA        string
	InstallationID int64
	Database       string
	Environment    string
	DesiredHash    string
	State          State
	Attempt        int
	MaxAttempts    int
	Rescues        int
	NextAttemptAt  time.Time
	LeaseOwner     string
	LeaseToken     string
	LeaseExpiresAt time.Time // zero when not leased
	LastError      string
	ErrorClass     string
	RequestedBy    string
	AllowUnsafe    bool
	// AllowBlocking is true when the apply was requested with
	// --allow-blocking.
	AllowBlocking bool
	// EngineState is opaque resume state an engine records (for example a
	// PlanetScale branch and deploy request number).
	EngineState map[string]string
	// Version increases with every change; ReportedVersion is the version
	// last reported to GitHub.
	Version         int64
	ReportedVersion int64
	// NoAttemptsLeft is set by Claim (it is not stored) when the apply was
	// claimed with every attempt used: its runner may only confirm what is
	// already live, never send DDL.
	NoAttemptsLeft bool
	CreatedAt      time.Time
	UpdatedAt      time.Time
	FinishedAt     time.Time // zero until terminal
}

// Task is one DDL statement of an apply.
type Task struct {
	ID      int64
	ApplyID int64
	Seq     int // 1-based order
	Table   string
	Kind    string
	DDL     string
	Instant bool
	// Algorithm and Lock are the plan's promise (see Statement).
	Algorithm string
	Lock      string
	// Progress is the last progress recorded while the task ran; zero
	// when none was.
	Progress   Progress
	State      State
	Attempt    int
	LastError  string
	ErrorClass string
	// Skipped is true when the task was marked done on resume because its
	// change was already live.
	Skipped    bool
	StartedAt  time.Time
	FinishedAt time.Time
}

// Progress is how far a running DDL has got, as its server reports it.
type Progress struct {
	// Stage is what the server is doing ("copy to tmp table").
	Stage string
	// Percent is the work done, 0-100.
	Percent float64
	// Remaining is the estimated time left; 0 when unknown.
	Remaining time.Duration
	// At is when it was recorded; zero when no progress was.
	At time.Time
}

// Lock gives one PR the right to apply to a (repository, database,
// environment) until it is merged, closed or unlocked.
type Lock struct {
	Repository  string
	Database    string
	Environment string
	PR          int
	// InstallationID is the GitHub App installation that reports on PR.
	InstallationID int64
	CreatedAt      time.Time
}

// Delivery is a stored webhook delivery.
type Delivery struct {
	ID      string // X-GitHub-Delivery
	Event   string // X-GitHub-Event
	Payload []byte
	// Attempts counts processing attempts.
	Attempts   int
	ReceivedAt time.Time
}

// Event is one row of the append-only audit log.
type Event struct {
	ID         int64
	At         time.Time
	ApplyID    int64 // 0 when not about an apply
	Repository string
	PR         int
	Actor      string // GitHub login, or "tern" for the system
	Action     string // e.g. "apply.requested", "apply.failed_retryable", "lock.released"
	Detail     string
}

// ConflictError is returned by a fenced write that lost: the row was not
// in the expected state, or the lease token did not match.
type ConflictError struct {
	Op      string
	ID      int64
	Want    State
	Current State // "" when unknown or the row is missing
}

func (e *ConflictError) Error() string {
	if e.Current == "" {
		return fmt.Sprintf("%s %d: conflict: expected state %s (lease lost or row missing)", e.Op, e.ID, e.Want)
	}
	return fmt.Sprintf("%s %d: conflict: expected state %s, found %s", e.Op, e.ID, e.Want, e.Current)
}

// ErrConflict matches any *ConflictError with errors.Is.
var ErrConflict = errors.New("conflict")

// Is makes errors.Is(err, ErrConflict) true for every ConflictError.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// TransitionError is returned when a state change is not allowed by the
// state machine.
type TransitionError struct {
	From, To State
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("transition %s -> %s is not allowed", e.From, e.To)
}

// ActiveApplyError is returned by CreateApply when the target already has
// an active (pending, running or failed_retryable) apply.
type ActiveApplyError struct {
	ApplyID int64
	PR      int
	State   State
}

func (e *ActiveApplyError) Error() string {
	return fmt.Sprintf("apply %d of PR #%d is already %s on this target", e.ApplyID, e.PR, e.State)
}

// LockHeldError is returned by TakeLock when another PR holds the lock.
type LockHeldError struct {
	Lock Lock
}

func (e *LockHeldError) Error() string {
	return fmt.Sprintf("%s %s/%s is locked by #%d", e.Lock.Repository, e.Lock.Database, e.Lock.Environment, e.Lock.PR)
}

// ErrNotFound is returned when a row does not exist.
var ErrNotFound = errors.New("not found")
