// Package store is tern's ledger: plans, applies and their tasks, locks,
// webhook deliveries, GitHub references and the audit log, kept in MySQL 8.0+
// or MariaDB 10.6+ with SQL common to both.
//
// Every state change is a fenced write: it names the row, the state it
// expects and (for running applies) the lease token, checks the rows
// affected, and returns a *ConflictError when it lost. Times come from the
// database's clock (UTC_TIMESTAMP(6)), never the caller's.
package store

import (
	"context"
	"database/sql"
	"time"
)

// Store is the ledger. It is safe for concurrent use.
type Store struct {
	db *sql.DB
}

// Open connects to the ledger database named by dsn (a go-sql-driver/mysql
// DSN). It does not migrate; call Migrate.
func Open(ctx context.Context, dsn string) (*Store, error) {
	panic("not implemented")
}

// Close closes the connection pool.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks that the ledger answers (GET /healthz).
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// DB exposes the pool for tests and benchmarks.
func (s *Store) DB() *sql.DB { return s.db }

// Migrate creates or upgrades the ledger's tables. It is safe to run from
// several processes at once, and refuses a database whose schema is newer
// than this binary knows.
func (s *Store) Migrate(ctx context.Context) error { panic("not implemented") }

// SavePlan stores p and sets p.ID.
func (s *Store) SavePlan(ctx context.Context, p *Plan) error { panic("not implemented") }

// Plan returns the plan with the given id, or ErrNotFound.
func (s *Store) Plan(ctx context.Context, id int64) (*Plan, error) { panic("not implemented") }

// LatestPlan returns the newest plan for a PR's (database, environment), or
// ErrNotFound.
func (s *Store) LatestPlan(ctx context.Context, repo string, pr int, database, env string) (*Plan, error) {
	panic("not implemented")
}

// CreateApply records a pending apply of plan, due now, with one pending
// task per statement, in one transaction. It returns *ActiveApplyError when
// the target already has an active apply (enforced by a unique index).
func (s *Store) CreateApply(ctx context.Context, plan *Plan, requestedBy string, allowUnsafe bool, maxAttempts int) (*Apply, error) {
	panic("not implemented")
}

// Apply returns the apply with the given id, or ErrNotFound.
func (s *Store) Apply(ctx context.Context, id int64) (*Apply, error) { panic("not implemented") }

// Tasks returns an apply's tasks in order.
func (s *Store) Tasks(ctx context.Context, applyID int64) ([]Task, error) { panic("not implemented") }

// AppliesForPR returns a PR's applies, oldest first.
func (s *Store) AppliesForPR(ctx context.Context, repo string, pr int) ([]*Apply, error) {
	panic("not implemented")
}

// ActiveApply returns the target's active apply, or ErrNotFound.
func (s *Store) ActiveApply(ctx context.Context, repo, database, env string) (*Apply, error) {
	panic("not implemented")
}

// LatestApply returns the newest apply of a PR to a (database,
// environment), or ErrNotFound.
func (s *Store) LatestApply(ctx context.Context, repo string, pr int, database, env string) (*Apply, error) {
	panic("not implemented")
}

// HasCompletedApply reports whether the PR has a completed apply to
// (database, env) of a plan with desiredHash (promotion gate).
func (s *Store) HasCompletedApply(ctx context.Context, repo string, pr int, database, env, desiredHash string) (bool, error) {
	panic("not implemented")
}

// ClaimOptions says what Claim takes.
type ClaimOptions struct {
	// Owner names the claimer (host/pid) for the lease.
	Owner string
	// Limit bounds how many applies one claim takes. Default 10.
	Limit int
	// Lease is how long the claim owns each apply before it must extend.
	Lease time.Duration
	// States to claim: Pending and/or FailedRetryable. Default both.
	States []State
	// ApplyID, when set, claims only that apply (if it is due).
	ApplyID int64
}

// Claim takes up to Limit due applies (pending, or failed_retryable whose
// next_attempt_at has come) in one short READ COMMITTED transaction with
// SELECT ... FOR UPDATE SKIP LOCKED: each becomes running with attempt+1
// and a fresh lease. Concurrent claimers never receive the same apply.
func (s *Store) Claim(ctx context.Context, opt ClaimOptions) ([]*Apply, error) {
	panic("not implemented")
}

// ExtendLease pushes a's lease expiry to now+d. Fenced on running and a's
// lease token.
func (s *Store) ExtendLease(ctx context.Context, a *Apply, d time.Duration) error {
	panic("not implemented")
}

// LapsedApplies returns running applies whose lease has expired.
func (s *Store) LapsedApplies(ctx context.Context, limit int) ([]*Apply, error) {
	panic("not implemented")
}

// Rescue hands a lapsed apply back: running tasks and the apply become
// failed_retryable, due now, with rescues+1 and class "rescued"; past
// maxRescues the apply fails for good with class "rescue_exhausted". Fenced
// on running, a's lease token, and the lease still being expired.
func (s *Store) Rescue(ctx context.Context, a *Apply, maxRescues int) (*Apply, error) {
	panic("not implemented")
}

// StartTask moves task seq of a (pending or failed_retryable) to running
// and increments its attempt. Fenced on a's lease.
func (s *Store) StartTask(ctx context.Context, a *Apply, seq int) error { panic("not implemented") }

// FinishTask marks task seq completed; skipped records that it was found
// already live and not run. Fenced on a's lease.
func (s *Store) FinishTask(ctx context.Context, a *Apply, seq int, skipped bool) error {
	panic("not implemented")
}

// FailTask marks task seq Failed or FailedRetryable with an error class and
// message. Fenced on a's lease.
func (s *Store) FailTask(ctx context.Context, a *Apply, seq int, to State, class, msg string) error {
	panic("not implemented")
}

// SetEngineState records an engine's resume state key=value on a. Fenced
// on a's lease.
func (s *Store) SetEngineState(ctx context.Context, a *Apply, key, value string) error {
	panic("not implemented")
}

// FinishApply ends a's attempt: running -> completed, failed or
// failed_retryable. The lease is released. For failed_retryable,
// next_attempt_at becomes the database's now + retryIn. For failed, the
// tasks not yet completed are cancelled. Returns the apply as stored.
func (s *Store) FinishApply(ctx context.Context, a *Apply, to State, class, msg string, retryIn time.Duration) (*Apply, error) {
	panic("not implemented")
}

// Cancel moves a pending or failed_retryable apply and its unfinished tasks
// to cancelled. A running apply gives a *ConflictError.
func (s *Store) Cancel(ctx context.Context, id int64, actor, reason string) (*Apply, error) {
	panic("not implemented")
}

// RetryNow moves a failed_retryable apply to pending, due now.
func (s *Store) RetryNow(ctx context.Context, id int64, actor string) (*Apply, error) {
	panic("not implemented")
}

// FailExhausted fails for good (class retries_exhausted) every
// failed_retryable apply whose attempt has reached max_attempts, except
// rescued ones, and returns them.
func (s *Store) FailExhausted(ctx context.Context, limit int) ([]*Apply, error) {
	panic("not implemented")
}

// TakeLock gives the (repository, database, environment) lock to pr. It is
// idempotent for the holder and returns *LockHeldError for anyone else.
func (s *Store) TakeLock(ctx context.Context, l Lock) error { panic("not implemented") }

// GetLock returns the lock on a target, or ErrNotFound.
func (s *Store) GetLock(ctx context.Context, repo, database, env string) (*Lock, error) {
	panic("not implemented")
}

// ReleaseLocks releases the PR's locks, all of them when database and env
// are "", and returns those released.
func (s *Store) ReleaseLocks(ctx context.Context, repo string, pr int, database, env string) ([]Lock, error) {
	panic("not implemented")
}

// PRRef names a pull request that tern holds state for.
type PRRef struct {
	Repository     string
	PR             int
	InstallationID int64
}

// OpenPRs lists PRs that hold a lock or have an active apply (for the
// recovery pass to check whether they were closed behind its back).
func (s *Store) OpenPRs(ctx context.Context) ([]PRRef, error) { panic("not implemented") }

// RecordDelivery stores a webhook delivery; it returns false, and stores
// nothing, when the delivery id was already recorded.
func (s *Store) RecordDelivery(ctx context.Context, d Delivery) (bool, error) {
	panic("not implemented")
}

// ClaimDeliveries takes up to limit deliveries not yet processed (new, or
// whose processing lease lapsed) with SKIP LOCKED.
func (s *Store) ClaimDeliveries(ctx context.Context, owner string, limit int, lease time.Duration) ([]Delivery, error) {
	panic("not implemented")
}

// FinishDelivery marks a delivery processed; errMsg records a failure.
func (s *Store) FinishDelivery(ctx context.Context, id string, errMsg string) error {
	panic("not implemented")
}

// Ref returns a stored GitHub reference (comment or check run id and a
// small free-form meta string) by key, or ErrNotFound.
func (s *Store) Ref(ctx context.Context, repo, key string) (id int64, meta string, err error) {
	panic("not implemented")
}

// SetRef upserts a GitHub reference.
func (s *Store) SetRef(ctx context.Context, repo, key string, id int64, meta string) error {
	panic("not implemented")
}

// ReportDue returns applies whose latest state has not been reported to
// GitHub (reported_version < version).
func (s *Store) ReportDue(ctx context.Context, limit int) ([]*Apply, error) {
	panic("not implemented")
}

// MarkReported records that version of apply id reached GitHub.
func (s *Store) MarkReported(ctx context.Context, id int64, version int64) error {
	panic("not implemented")
}

// AddEvent appends to the audit log.
func (s *Store) AddEvent(ctx context.Context, e Event) error { panic("not implemented") }

// Events returns the audit log of an apply (applyID > 0) or of everything,
// oldest first.
func (s *Store) Events(ctx context.Context, applyID int64) ([]Event, error) {
	panic("not implemented")
}
