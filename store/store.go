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
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// Store is the ledger. It is safe for concurrent use.
type Store struct {
	db *sql.DB
	// wdb is the pool of the batched fenced writes (see batch.go): the
	// same DSN with multiStatements on.
	wdb *sql.DB
	// claimHook, when set (by tests), runs inside Claim's transaction after
	// the SELECT ... FOR UPDATE and before the UPDATE.
	claimHook func(ctx context.Context, tx *sql.Tx)
}

// Defaults of ClaimOptions.
const (
	DefaultClaimLimit = 10
	DefaultLease      = 5 * time.Minute
)

// Open connects to the ledger database named by dsn (a go-sql-driver/mysql
// DSN). It does not migrate; call Migrate.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		// The driver's parse errors do not repeat the DSN.
		return nil, fmt.Errorf("open store: invalid DSN: %w", err)
	}
	if cfg.DBName == "" {
		return nil, errors.New("open store: the DSN names no database (user:pass@tcp(host:3306)/tern)")
	}
	// The store reads and writes UTC times and relies on rows-matched
	// counts for its fences (an UPDATE that matches but changes nothing
	// still counts as won).
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.ClientFoundRows = true
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	cfg.MultiStatements = false
	cfg.InterpolateParams = true
	db, err := openPool(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// Every session runs at READ COMMITTED, so that claimers holding rows
	// never block each other through gap locks and a transaction costs one
	// round trip to begin. MariaDB (before 11.1) and MySQL 8 name the
	// variable differently.
	var version string
	if err := db.QueryRowContext(ctx, `SELECT VERSION()`).Scan(&version); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	db.Close()
	if strings.Contains(strings.ToLower(version), "mariadb") {
		cfg.Params["tx_isolation"] = "'READ-COMMITTED'"
	} else {
		cfg.Params["transaction_isolation"] = "'READ-COMMITTED'"
	}
	if db, err = openPool(ctx, cfg); err != nil {
		return nil, err
	}
	wcfg := cfg.Clone()
	wcfg.MultiStatements = true
	wdb, err := openPool(ctx, wcfg)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, wdb: wdb}, nil
}

func openPool(ctx context.Context, cfg *mysql.Config) (*sql.DB, error) {
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store (%s on %s): %w", cfg.DBName, cfg.Addr, err)
	}
	return db, nil
}

// Close closes the connection pools.
func (s *Store) Close() error { return errors.Join(s.db.Close(), s.wdb.Close()) }

// Ping checks that the ledger answers (GET /healthz).
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// DB exposes the pool for tests and benchmarks.
func (s *Store) DB() *sql.DB { return s.db }

// Migrate creates or upgrades the ledger's tables. It is safe to run from
// several processes at once, and refuses a database whose schema is newer
// than this binary knows.
func (s *Store) Migrate(ctx context.Context) error { return s.migrate(ctx) }

const planCols = `id, repository, pr, head_sha, installation_id, database_name, environment, desired_hash,
 desired, statements, lint, created_at`

func scanPlan(r rowScanner) (*Plan, error) {
	var p Plan
	var stmts string
	err := r.Scan(&p.ID, &p.Repository, &p.PR, &p.HeadSHA, &p.InstallationID, &p.Database, &p.Environment,
		&p.DesiredHash, &p.Desired, &stmts, &p.Lint, &p.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(stmts), &p.Statements); err != nil {
		return nil, fmt.Errorf("plan %d: statements: %w", p.ID, err)
	}
	return &p, nil
}

// SavePlan stores p and sets p.ID.
func (s *Store) SavePlan(ctx context.Context, p *Plan) error {
	stmts := p.Statements
	if stmts == nil {
		stmts = []Statement{}
	}
	b, err := json.Marshal(stmts)
	if err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	desired, lint := p.Desired, p.Lint
	if desired == nil {
		desired = []byte{}
	}
	if lint == nil {
		lint = []byte{}
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO tern_plans (repository, pr, head_sha, installation_id,
 database_name, environment, desired_hash, desired, statements, lint, created_at)
 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))`,
			p.Repository, p.PR, p.HeadSHA, p.InstallationID, p.Database, p.Environment, p.DesiredHash,
			desired, string(b), lint)
		if err != nil {
			return fmt.Errorf("save plan: %w", err)
		}
		id, err := res.LastInsertId()
		if err != nil {
			return fmt.Errorf("save plan: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT created_at FROM tern_plans WHERE id = ?`, id).Scan(&p.CreatedAt); err != nil {
			return fmt.Errorf("save plan: %w", err)
		}
		p.ID = id
		return nil
	})
}

// Plan returns the plan with the given id, or ErrNotFound.
func (s *Store) Plan(ctx context.Context, id int64) (*Plan, error) {
	p, err := scanPlan(s.db.QueryRowContext(ctx, "SELECT "+planCols+" FROM tern_plans WHERE id = ?", id))
	if err != nil {
		return nil, fmt.Errorf("plan %d: %w", id, err)
	}
	return p, nil
}

// LatestPlan returns the newest plan for a PR's (database, environment), or
// ErrNotFound.
func (s *Store) LatestPlan(ctx context.Context, repo string, pr int, database, env string) (*Plan, error) {
	p, err := scanPlan(s.db.QueryRowContext(ctx, "SELECT "+planCols+` FROM tern_plans
 WHERE repository = ? AND pr = ? AND database_name = ? AND environment = ? ORDER BY id DESC LIMIT 1`,
		repo, pr, database, env))
	if err != nil {
		return nil, fmt.Errorf("latest plan of %s#%d %s/%s: %w", repo, pr, database, env, err)
	}
	return p, nil
}

// CreateApply records a pending apply of plan, due now, with one pending
// task per statement, in one transaction. It returns *ActiveApplyError when
// the target already has an active apply (enforced by a unique index).
func (s *Store) CreateApply(ctx context.Context, plan *Plan, requestedBy string, allowUnsafe bool, maxAttempts int) (*Apply, error) {
	return s.CreateApplyWith(ctx, plan, ApplyRequest{RequestedBy: requestedBy, AllowUnsafe: allowUnsafe, MaxAttempts: maxAttempts})
}

// ApplyRequest is who asked for an apply and with which flags.
type ApplyRequest struct {
	RequestedBy   string
	AllowUnsafe   bool
	AllowBlocking bool
	MaxAttempts   int
}

// CreateApplyWith is CreateApply with every flag of the request.
func (s *Store) CreateApplyWith(ctx context.Context, plan *Plan, req ApplyRequest) (*Apply, error) {
	requestedBy, allowUnsafe, maxAttempts := req.RequestedBy, req.AllowUnsafe, req.MaxAttempts
	if plan.ID == 0 {
		return nil, errors.New("create apply: the plan is not saved")
	}
	if maxAttempts < 1 {
		maxAttempts = 1
	}
	// The holder found on a duplicate key may finish before we read it:
	// then try again.
	for try := 0; ; try++ {
		var a *Apply
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `INSERT INTO tern_applies (plan_id, repository, pr, head_sha,
 installation_id, database_name, environment, desired_hash, state, attempt, max_attempts, rescues,
 next_attempt_at, lease_owner, lease_token, lease_expires_at, last_error, error_class, requested_by,
 allow_unsafe, engine_state, version, reported_version, created_at, updated_at, allow_blocking)
 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, 0, UTC_TIMESTAMP(6), '', '', NULL, '', '', ?, ?, '{}', 1, 0,
 UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ?)`,
				plan.ID, plan.Repository, plan.PR, plan.HeadSHA, plan.InstallationID, plan.Database,
				plan.Environment, plan.DesiredHash, maxAttempts, requestedBy, allowUnsafe, req.AllowBlocking)
			if err != nil {
				return err
			}
			id, err := res.LastInsertId()
			if err != nil {
				return err
			}
			if len(plan.Statements) > 0 {
				var sb strings.Builder
				args := make([]any, 0, 8*len(plan.Statements))
				for i, st := range plan.Statements {
					if i > 0 {
						sb.WriteString(", ")
					}
					sb.WriteString("(?, ?, ?, ?, ?, ?, 'pending', 0, '', '', 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), ?, ?)")
					args = append(args, id, i+1, st.DDL, st.Table, st.Kind, st.Instant, st.Algorithm, st.Lock)
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO tern_tasks (apply_id, seq, statement, table_name,
 kind, instant, state, attempt, last_error, error_class, skipped, created_at, updated_at, algorithm, lock_mode) VALUES `+sb.String(), args...); err != nil {
					return err
				}
			}
			if err := addEvent(ctx, tx, Event{ApplyID: id, Repository: plan.Repository, PR: plan.PR,
				Actor: requestedBy, Action: "apply.requested",
				Detail: fmt.Sprintf("plan %d, %s/%s, %d statements", plan.ID, plan.Database, plan.Environment, len(plan.Statements))}); err != nil {
				return err
			}
			a, err = queryApply(ctx, tx, "WHERE id = ?", id)
			return err
		})
		if err == nil {
			return a, nil
		}
		if !isDuplicateKey(err) {
			return nil, fmt.Errorf("create apply: %w", err)
		}
		holder, herr := s.ActiveApply(ctx, plan.Repository, plan.Database, plan.Environment)
		if errors.Is(herr, ErrNotFound) && try < 3 {
			continue
		}
		if herr != nil {
			return nil, fmt.Errorf("create apply: find the active apply: %w", herr)
		}
		return nil, &ActiveApplyError{ApplyID: holder.ID, PR: holder.PR, State: holder.State}
	}
}

// Apply returns the apply with the given id, or ErrNotFound.
func (s *Store) Apply(ctx context.Context, id int64) (*Apply, error) {
	a, err := queryApply(ctx, s.db, "WHERE id = ?", id)
	if err != nil {
		return nil, fmt.Errorf("apply %d: %w", id, err)
	}
	return a, nil
}

// Tasks returns an apply's tasks in order.
func (s *Store) Tasks(ctx context.Context, applyID int64) ([]Task, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, apply_id, seq, table_name, kind, statement, instant, state,
 attempt, last_error, error_class, skipped, started_at, finished_at, algorithm, lock_mode, progress_stage,
 progress_percent, progress_remaining_s, progress_at FROM tern_tasks WHERE apply_id = ? ORDER BY seq`, applyID)
	if err != nil {
		return nil, fmt.Errorf("tasks of apply %d: %w", applyID, err)
	}
	defer rows.Close()
	var out []Task
	for rows.Next() {
		var t Task
		var started, finished, progressAt sql.NullTime
		var percent sql.NullFloat64
		var remaining sql.NullInt64
		if err := rows.Scan(&t.ID, &t.ApplyID, &t.Seq, &t.Table, &t.Kind, &t.DDL, &t.Instant, &t.State,
			&t.Attempt, &t.LastError, &t.ErrorClass, &t.Skipped, &started, &finished, &t.Algorithm, &t.Lock,
			&t.Progress.Stage, &percent, &remaining, &progressAt); err != nil {
			return nil, fmt.Errorf("tasks of apply %d: %w", applyID, err)
		}
		t.StartedAt, t.FinishedAt = started.Time, finished.Time
		t.Progress.Percent, t.Progress.At = percent.Float64, progressAt.Time
		t.Progress.Remaining = time.Duration(remaining.Int64) * time.Second
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("tasks of apply %d: %w", applyID, err)
	}
	return out, nil
}

// AppliesForPR returns a PR's applies, oldest first.
func (s *Store) AppliesForPR(ctx context.Context, repo string, pr int) ([]*Apply, error) {
	as, err := queryApplies(ctx, s.db, "WHERE repository = ? AND pr = ? ORDER BY id", repo, pr)
	if err != nil {
		return nil, fmt.Errorf("applies of %s#%d: %w", repo, pr, err)
	}
	return as, nil
}

// ActiveApply returns the target's active apply, or ErrNotFound.
func (s *Store) ActiveApply(ctx context.Context, repo, database, env string) (*Apply, error) {
	a, err := queryApply(ctx, s.db, "WHERE active_repository = ? AND database_name = ? AND environment = ?", repo, database, env)
	if err != nil {
		return nil, fmt.Errorf("active apply on %s %s/%s: %w", repo, database, env, err)
	}
	return a, nil
}

// LatestApply returns the newest apply of a PR to a (database,
// environment), or ErrNotFound.
func (s *Store) LatestApply(ctx context.Context, repo string, pr int, database, env string) (*Apply, error) {
	a, err := queryApply(ctx, s.db, `WHERE repository = ? AND pr = ? AND database_name = ? AND environment = ?
 ORDER BY id DESC LIMIT 1`, repo, pr, database, env)
	if err != nil {
		return nil, fmt.Errorf("latest apply of %s#%d %s/%s: %w", repo, pr, database, env, err)
	}
	return a, nil
}

// HasCompletedApply reports whether the PR has a completed apply to
// (database, env) of a plan with desiredHash (promotion gate).
func (s *Store) HasCompletedApply(ctx context.Context, repo string, pr int, database, env, desiredHash string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM tern_applies WHERE repository = ? AND pr = ?
 AND database_name = ? AND environment = ? AND state = 'completed' AND desired_hash = ?`,
		repo, pr, database, env, desiredHash).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("completed applies of %s#%d %s/%s: %w", repo, pr, database, env, err)
	}
	return n > 0, nil
}

// ClaimOptions says what Claim takes.
type ClaimOptions struct {
	// Owner names the claimer (host/pid) for the lease.
	Owner string
	// Limit bounds how many applies one claim takes. Default 10.
	Limit int
	// Lease is how long the claim owns each apply before it must extend.
	// Default 5m.
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
//
// Every claim is a dispatch and counts as an attempt, so attempt never
// passes max_attempts: an apply that has used them all (its worker died on
// the last one and it was rescued) is claimed with its attempt unchanged
// and NoAttemptsLeft set, for a runner that only confirms what is live
// and sends nothing.
func (s *Store) Claim(ctx context.Context, opt ClaimOptions) ([]*Apply, error) {
	limit := opt.Limit
	if limit <= 0 {
		limit = DefaultClaimLimit
	}
	lease := opt.Lease
	if lease <= 0 {
		lease = DefaultLease
	}
	states := opt.States
	if len(states) == 0 {
		states = []State{Pending, FailedRetryable}
	}
	for _, st := range states {
		if !CanTransitionApply(st, Running) {
			return nil, &TransitionError{From: st, To: Running}
		}
	}
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	lease = lease.Truncate(time.Microsecond)
	var claimed []*Apply
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		// One SELECT per state reads the whole rows and the database's
		// clock, so that the UPDATE needs no read-back.
		var now time.Time
		for _, st := range states {
			if len(claimed) >= limit {
				break
			}
			q := "SELECT " + applyCols + ", UTC_TIMESTAMP(6) FROM tern_applies "
			var args []any
			if opt.ApplyID != 0 {
				q += "WHERE id = ? AND state = ? AND next_attempt_at <= UTC_TIMESTAMP(6) FOR UPDATE SKIP LOCKED"
				args = []any{opt.ApplyID, string(st)}
			} else {
				q += `WHERE state = ? AND next_attempt_at <= UTC_TIMESTAMP(6)
 ORDER BY next_attempt_at, id LIMIT ? FOR UPDATE SKIP LOCKED`
				args = []any{string(st), limit - len(claimed)}
			}
			rows, err := tx.QueryContext(ctx, q, args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				a, err := scanApply(rows, &now)
				if err != nil {
					rows.Close()
					return err
				}
				claimed = append(claimed, a)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		if len(claimed) == 0 {
			return nil
		}
		if s.claimHook != nil {
			s.claimHook(ctx, tx)
		}
		ids := make([]int64, len(claimed))
		for i, a := range claimed {
			ids[i] = a.ID
		}
		in, args := placeholders(ids)
		expires := now.Add(lease)
		// The UPDATE and the audit rows in one round trip. The rows are
		// locked by the SELECT: each is updated and audited once.
		q, qargs := joinStmts(
			stmt{`UPDATE tern_applies SET state = 'running', attempt = IF(attempt < max_attempts, attempt + 1, attempt),
 lease_owner = ?, lease_token = ?, lease_expires_at = ?, version = version + 1, updated_at = ? WHERE id IN (` + in + `)`,
				append([]any{opt.Owner, token, expires, now}, args...)},
			applyEventsStmt(ids, opt.Owner, "apply.running", "claimed", ""))
		res, err := tx.ExecContext(ctx, q, qargs...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != int64(len(ids)) {
			return fmt.Errorf("audit apply.running: %d rows for %d applies (%v)", n, len(ids), err)
		}
		for _, a := range claimed {
			if a.Attempt < a.MaxAttempts {
				a.Attempt++
			} else {
				a.NoAttemptsLeft = true
			}
			a.State, a.Version, a.UpdatedAt = Running, a.Version+1, now
			a.LeaseOwner, a.LeaseToken, a.LeaseExpiresAt = opt.Owner, token, expires
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim applies: %w", err)
	}
	return claimed, nil
}

// ExtendLease pushes a's lease expiry to now+d. Fenced on running and a's
// lease token. A heartbeat is not a change GitHub is told about: it leaves
// the apply's version alone.
func (s *Store) ExtendLease(ctx context.Context, a *Apply, d time.Duration) error {
	const op = "extend lease of apply"
	if a.LeaseToken == "" {
		return fmt.Errorf("extend lease: %w", &ConflictError{Op: op, ID: a.ID, Want: Running, Current: currentState(ctx, s.db, a.ID)})
	}
	// One fenced UPDATE suffices (a heartbeat writes no audit row), so no
	// transaction: the SELECT of the same round trip reads what the UPDATE
	// did and the expiry the database's clock gave.
	var n int64
	var cur sql.NullString
	var expires sql.NullTime
	err := batchRow(ctx, s.wdb, []stmt{
		{`UPDATE tern_applies SET updated_at = UTC_TIMESTAMP(6),
 lease_expires_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND WHERE id = ? AND state = 'running' AND lease_token = ?`,
			[]any{micros(d), a.ID, a.LeaseToken}},
		{`SELECT ROW_COUNT(), (SELECT state FROM tern_applies WHERE id = ?),
 (SELECT lease_expires_at FROM tern_applies WHERE id = ? AND state = 'running' AND lease_token = ?)`,
			[]any{a.ID, a.ID, a.LeaseToken}},
	}, &n, &cur, &expires)
	if err != nil {
		return fmt.Errorf("extend lease: %s %d: %w", op, a.ID, err)
	}
	if n != 1 || !expires.Valid {
		return fmt.Errorf("extend lease: %w", &ConflictError{Op: op, ID: a.ID, Want: Running, Current: State(cur.String)})
	}
	a.LeaseExpiresAt = expires.Time
	return nil
}

// LapsedApplies returns running applies whose lease has expired.
func (s *Store) LapsedApplies(ctx context.Context, limit int) ([]*Apply, error) {
	if limit <= 0 {
		limit = 100
	}
	as, err := queryApplies(ctx, s.db, `WHERE state = 'running' AND lease_expires_at < UTC_TIMESTAMP(6)
 ORDER BY lease_expires_at, id LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("lapsed applies: %w", err)
	}
	return as, nil
}

// Rescue hands a lapsed apply back: running tasks and the apply become
// failed_retryable, due now, with rescues+1 and class "rescued"; past
// maxRescues the apply fails for good with class "rescue_exhausted". Fenced
// on running, a's lease token, and the lease still being expired.
func (s *Store) Rescue(ctx context.Context, a *Apply, maxRescues int) (*Apply, error) {
	return s.RescueAfter(ctx, a, maxRescues, 0)
}

// NoRescueLimit passed as maxRescues to Rescue or RescueAfter rescues an
// apply however often its worker died (its work under way outside tern
// may still land).
const NoRescueLimit = math.MaxInt32

// RescueAfter is Rescue with the rescued apply due after retryIn instead
// of now: a backoff, so that after an outage the lapsed applies do not all
// hit their targets at once.
func (s *Store) RescueAfter(ctx context.Context, a *Apply, maxRescues int, retryIn time.Duration) (*Apply, error) {
	var out *Apply
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var st State
		var token, owner string
		var rescues int
		var expired bool
		err := tx.QueryRowContext(ctx, `SELECT state, lease_token, lease_owner, rescues,
 lease_expires_at IS NOT NULL AND lease_expires_at < UTC_TIMESTAMP(6) FROM tern_applies WHERE id = ? FOR UPDATE`,
			a.ID).Scan(&st, &token, &owner, &rescues, &expired)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if st != Running || token != a.LeaseToken || a.LeaseToken == "" || !expired {
			return &ConflictError{Op: "rescue apply", ID: a.ID, Want: Running, Current: st}
		}
		to, class := FailedRetryable, ClassRescued
		msg := fmt.Sprintf("the lease of %s lapsed: its worker is presumed dead (rescue %d of %d)", owner, rescues+1, maxRescues)
		if maxRescues == NoRescueLimit {
			msg = fmt.Sprintf("the lease of %s lapsed: its worker is presumed dead (rescue %d; work under way on the target, no limit)", owner, rescues+1)
		}
		if rescues+1 > maxRescues {
			to, class = Failed, ClassRescueExhausted
			msg = fmt.Sprintf("the lease of %s lapsed and the apply was already rescued %d times: giving up", owner, rescues)
		}
		set := `state = ?, rescues = rescues + 1, next_attempt_at = UTC_TIMESTAMP(6) + INTERVAL ` +
			strconv.FormatInt(micros(max(retryIn, 0)), 10) + ` MICROSECOND, lease_owner = '',
 lease_token = '', lease_expires_at = NULL, error_class = ?, last_error = ?`
		if to.Terminal() {
			set += ", finished_at = UTC_TIMESTAMP(6)"
		}
		if err := fenceRunning(ctx, tx, "rescue apply", a, true, set, string(to), class, msg); err != nil {
			return err
		}
		ids := []int64{a.ID}
		taskSet := "t.error_class = ?, t.last_error = ?"
		if to == FailedRetryable {
			err = moveTasks(ctx, tx, ids, []State{Running}, FailedRetryable, "tern", class, taskSet, class, msg)
		} else {
			err = moveTasks(ctx, tx, ids, []State{Running}, Failed, "tern", class, taskSet, class, msg)
			if err == nil {
				err = moveTasks(ctx, tx, ids, []State{Pending, FailedRetryable}, Cancelled, "tern", class, "")
			}
		}
		if err != nil {
			return err
		}
		if err := applyEvents(ctx, tx, ids, "tern", "apply."+string(to), class+": "+msg); err != nil {
			return err
		}
		out, err = queryApply(ctx, tx, "WHERE id = ?", a.ID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("rescue apply %d: %w", a.ID, err)
	}
	return out, nil
}

// taskMove moves task seq of the running apply a to state to, fenced on
// a's lease; set adds assignments to the task's UPDATE.
//
// It is one transaction of three round trips (BEGIN, one batch, COMMIT).
// The batch bumps the apply's version fenced on its state and lease token
// (locking the apply first, as every writer does before its tasks, so the
// task cannot change under it), reads the task's state, writes the audit
// row and moves the task only when the fence held and the state may move
// to to, and reports each step; Go commits only when all of them happened.
func (s *Store) taskMove(ctx context.Context, op string, a *Apply, seq int, to State, detail, set string, args ...any) error {
	if a.LeaseToken == "" {
		return fmt.Errorf("%s %d task %d: %w", op, a.ID, seq,
			&ConflictError{Op: op, ID: a.ID, Want: Running, Current: currentState(ctx, s.db, a.ID)})
	}
	var from []any
	for _, f := range []State{Pending, Running, FailedRetryable, Completed, Failed, Cancelled} {
		if CanTransitionTask(f, to) {
			from = append(from, string(f))
		}
	}
	if len(from) == 0 {
		return fmt.Errorf("%s %d task %d: no state moves to %s", op, a.ID, seq, to)
	}
	fin := strings.TrimSuffix(strings.Repeat("?, ", len(from)), ", ")
	suffix := ""
	if detail != "" {
		suffix = ": " + detail
	}
	q := `UPDATE tern_tasks SET state = ?, updated_at = UTC_TIMESTAMP(6)`
	if set != "" {
		q += ", " + set
	}
	if to.Terminal() {
		q += ", finished_at = UTC_TIMESTAMP(6)"
	}
	batch := []stmt{
		{`UPDATE tern_applies SET updated_at = UTC_TIMESTAMP(6), version = version + 1
 WHERE id = ? AND state = 'running' AND lease_token = ?`, []any{a.ID, a.LeaseToken}},
		{`SET @tern_fenced = ROW_COUNT()`, nil},
		{`SET @tern_cur = (SELECT state FROM tern_tasks WHERE apply_id = ? AND seq = ?)`, []any{a.ID, seq}},
		{`INSERT INTO tern_events (at, apply_id, repository, pr, actor, action, detail)
 SELECT UTC_TIMESTAMP(6), ?, ?, ?, ?, ?, CONCAT('task ', ?, ': ', @tern_cur, ' -> ', ?, ?) FROM DUAL
 WHERE @tern_fenced = 1 AND @tern_cur IN (` + fin + `)`,
			append([]any{a.ID, a.Repository, a.PR, a.LeaseOwner, "task." + string(to), seq, string(to), suffix}, from...)},
		{`SET @tern_audited = ROW_COUNT()`, nil},
		{q + ` WHERE apply_id = ? AND seq = ? AND @tern_fenced = 1 AND state = @tern_cur AND state IN (` + fin + `)`,
			append(append(append([]any{string(to)}, args...), a.ID, seq), from...)},
		{`SELECT @tern_fenced, @tern_cur, @tern_audited, ROW_COUNT(), (SELECT state FROM tern_applies WHERE id = ?)`, []any{a.ID}},
	}
	err := s.writeTx(ctx, func(tx *sql.Tx) error {
		var fenced, audited, moved int64
		var cur, applyState sql.NullString
		if err := batchRow(ctx, tx, batch, &fenced, &cur, &audited, &moved, &applyState); err != nil {
			return err
		}
		switch {
		case fenced != 1:
			return &ConflictError{Op: op, ID: a.ID, Want: Running, Current: State(applyState.String)}
		case !cur.Valid:
			return fmt.Errorf("task %d: %w", seq, ErrNotFound)
		case !CanTransitionTask(State(cur.String), to):
			return &TransitionError{From: State(cur.String), To: to}
		case moved != 1 || audited != 1:
			return &ConflictError{Op: op, ID: a.ID, Want: State(cur.String)}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s %d task %d: %w", op, a.ID, seq, err)
	}
	return nil
}

// StartTask moves task seq of a (pending or failed_retryable) to running
// and increments its attempt. Fenced on a's lease.
func (s *Store) StartTask(ctx context.Context, a *Apply, seq int) error {
	return s.taskMove(ctx, "start task of apply", a, seq, Running, "",
		"attempt = attempt + 1, started_at = UTC_TIMESTAMP(6)")
}

// FinishTask marks task seq completed; skipped records that it was found
// already live and not run. Fenced on a's lease.
func (s *Store) FinishTask(ctx context.Context, a *Apply, seq int, skipped bool) error {
	detail := ""
	if skipped {
		detail = "already live, not run"
	}
	return s.taskMove(ctx, "finish task of apply", a, seq, Completed, detail, "skipped = ?", skipped)
}

// FailTask marks task seq Failed or FailedRetryable with an error class and
// message. Fenced on a's lease.
func (s *Store) FailTask(ctx context.Context, a *Apply, seq int, to State, class, msg string) error {
	if to != Failed && to != FailedRetryable {
		return fmt.Errorf("fail task %d of apply %d: %w", seq, a.ID, &TransitionError{From: Running, To: to})
	}
	return s.taskMove(ctx, "fail task of apply", a, seq, to, class+": "+msg,
		"error_class = ?, last_error = ?", class, msg)
}

// SetTaskProgress records how far running task seq of a has got and
// bumps the apply's version, so that the next report shows it. Fenced on
// a's lease; a task that is no longer running is left as it is.
func (s *Store) SetTaskProgress(ctx context.Context, a *Apply, seq int, p Progress) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := fenceRunning(ctx, tx, "set task progress of apply", a, true, ""); err != nil {
			return err
		}
		var remaining sql.NullInt64
		if p.Remaining > 0 {
			remaining = sql.NullInt64{Int64: int64(p.Remaining.Round(time.Second) / time.Second), Valid: true}
		}
		_, err := tx.ExecContext(ctx, `UPDATE tern_tasks SET progress_stage = ?, progress_percent = ?,
 progress_remaining_s = ?, progress_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6)
 WHERE apply_id = ? AND seq = ? AND state = 'running'`, clipString(p.Stage, 64), p.Percent, remaining, a.ID, seq)
		return err
	})
	if err != nil {
		return fmt.Errorf("set progress of task %d: %w", seq, err)
	}
	return nil
}

func clipString(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

// SetEngineState records an engine's resume state key=value on a. Fenced
// on a's lease.
func (s *Store) SetEngineState(ctx context.Context, a *Apply, key, value string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var raw string
		err := tx.QueryRowContext(ctx, `SELECT engine_state FROM tern_applies WHERE id = ? AND state = 'running'
 AND lease_token = ? FOR UPDATE`, a.ID, a.LeaseToken).Scan(&raw)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && a.LeaseToken == "") {
			return &ConflictError{Op: "set engine state of apply", ID: a.ID, Want: Running, Current: currentState(ctx, tx, a.ID)}
		}
		if err != nil {
			return err
		}
		m := map[string]string{}
		if raw != "" {
			if err := json.Unmarshal([]byte(raw), &m); err != nil {
				return fmt.Errorf("engine_state: %w", err)
			}
		}
		m[key] = value
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		if err := fenceRunning(ctx, tx, "set engine state of apply", a, true, "engine_state = ?", string(b)); err != nil {
			return err
		}
		if err := addEvent(ctx, tx, Event{ApplyID: a.ID, Repository: a.Repository, PR: a.PR, Actor: a.LeaseOwner,
			Action: "apply.engine_state", Detail: key + "=" + value}); err != nil {
			return err
		}
		if a.EngineState == nil {
			a.EngineState = map[string]string{}
		}
		a.EngineState[key] = value
		return nil
	})
	if err != nil {
		return fmt.Errorf("set engine state %s: %w", key, err)
	}
	return nil
}

// FinishApply ends a's attempt: running -> completed, failed or
// failed_retryable. The lease is released. For failed_retryable,
// next_attempt_at becomes the database's now + retryIn. For failed, the
// tasks not yet completed are cancelled. Returns the apply as stored.
func (s *Store) FinishApply(ctx context.Context, a *Apply, to State, class, msg string, retryIn time.Duration) (*Apply, error) {
	return s.finishApply(ctx, a, to, class, msg, retryIn, false)
}

// Wait ends a's attempt without counting it: the attempt found that it
// must wait (work of an earlier attempt still runs on the target) and sent
// nothing. The apply becomes failed_retryable, due after retryIn, with its
// attempt number given back. Fenced on a's lease.
func (s *Store) Wait(ctx context.Context, a *Apply, class, msg string, retryIn time.Duration) (*Apply, error) {
	return s.finishApply(ctx, a, FailedRetryable, class, msg, retryIn, true)
}

func (s *Store) finishApply(ctx context.Context, a *Apply, to State, class, msg string, retryIn time.Duration, refund bool) (*Apply, error) {
	if !CanTransitionApply(Running, to) {
		return nil, fmt.Errorf("finish apply %d: %w", a.ID, &TransitionError{From: Running, To: to})
	}
	if a.LeaseToken == "" {
		return nil, fmt.Errorf("finish apply %d as %s: %w", a.ID, to,
			&ConflictError{Op: "finish apply", ID: a.ID, Want: Running, Current: currentState(ctx, s.db, a.ID)})
	}
	set := "state = ?, lease_owner = '', lease_token = '', lease_expires_at = NULL"
	args := []any{string(to)}
	if to == FailedRetryable {
		set += ", next_attempt_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND"
		args = append(args, micros(retryIn))
	}
	if to.Terminal() {
		set += ", finished_at = UTC_TIMESTAMP(6)"
	}
	if refund && !a.NoAttemptsLeft {
		set += ", attempt = GREATEST(attempt - 1, 0)"
	}
	// A completed apply keeps the error of its last failed attempt
	// unless told otherwise ("applied after 3 attempts").
	if to != Completed || class != "" || msg != "" {
		set += ", error_class = ?, last_error = ?"
		args = append(args, class, msg)
	}
	// One batch: the fenced UPDATE (which locks the apply before its
	// tasks), the tasks' moves and the audit rows conditioned on the fence,
	// and the apply as stored, read back in the same round trip.
	batch := []stmt{
		{`UPDATE tern_applies SET updated_at = UTC_TIMESTAMP(6), version = version + 1, ` + set +
			` WHERE id = ? AND state = 'running' AND lease_token = ?`, append(args, a.ID, a.LeaseToken)},
		{`SET @tern_fenced = ROW_COUNT()`, nil},
	}
	ids := []int64{a.ID}
	const fenced = "@tern_fenced = 1"
	var moves []stmt
	var err error
	switch to {
	case Failed, Cancelled:
		moves, err = moveTasksStmts(ids, []State{Pending, Running, FailedRetryable}, Cancelled, a.LeaseOwner, "apply "+string(to), fenced, "")
	case FailedRetryable:
		moves, err = moveTasksStmts(ids, []State{Running}, FailedRetryable, a.LeaseOwner, class, fenced,
			"t.error_class = ?, t.last_error = ?", class, msg)
	}
	if err != nil {
		return nil, fmt.Errorf("finish apply %d as %s: %w", a.ID, to, err)
	}
	detail := fmt.Sprintf("attempt %d", a.Attempt)
	if refund {
		detail = fmt.Sprintf("attempt %d not counted, waiting", a.Attempt)
	}
	if class != "" || msg != "" {
		detail += ": " + class + ": " + msg
	}
	batch = append(batch, moves...)
	batch = append(batch,
		applyEventsStmt(ids, a.LeaseOwner, "apply."+string(to), detail, fenced),
		stmt{`SET @tern_audited = ROW_COUNT()`, nil},
		stmt{"SELECT " + applyCols + ", @tern_fenced, @tern_audited FROM tern_applies WHERE id = ?", []any{a.ID}})
	var out *Apply
	err = s.writeTx(ctx, func(tx *sql.Tx) error {
		var n, audited int64
		var got *Apply
		err := batchScan(ctx, tx, batch, func(r rowScanner) (err error) {
			got, err = scanApply(r, &n, &audited)
			return err
		})
		if errors.Is(err, errBatchNoRow) {
			return &ConflictError{Op: "finish apply", ID: a.ID, Want: Running}
		}
		if err != nil {
			return err
		}
		if n != 1 {
			return &ConflictError{Op: "finish apply", ID: a.ID, Want: Running, Current: got.State}
		}
		if audited != 1 {
			return fmt.Errorf("audit apply.%s: %d rows", to, audited)
		}
		out = got
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("finish apply %d as %s: %w", a.ID, to, err)
	}
	return out, nil
}

// lockApply reads an apply's state under a row lock, or ErrNotFound.
func lockApply(ctx context.Context, tx *sql.Tx, id int64) (State, error) {
	var st State
	err := tx.QueryRowContext(ctx, `SELECT state FROM tern_applies WHERE id = ? FOR UPDATE`, id).Scan(&st)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return st, err
}

// Cancel moves a pending or failed_retryable apply and its unfinished tasks
// to cancelled. A running apply gives a *ConflictError.
func (s *Store) Cancel(ctx context.Context, id int64, actor, reason string) (*Apply, error) {
	var out *Apply
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := lockApply(ctx, tx, id)
		if err != nil {
			return err
		}
		if cur == Running {
			return &ConflictError{Op: "cancel apply", ID: id, Want: Pending, Current: cur}
		}
		if !CanTransitionApply(cur, Cancelled) {
			return &TransitionError{From: cur, To: Cancelled}
		}
		res, err := tx.ExecContext(ctx, `UPDATE tern_applies SET state = 'cancelled', error_class = ?, last_error = ?,
 lease_owner = '', lease_token = '', lease_expires_at = NULL, finished_at = UTC_TIMESTAMP(6),
 version = version + 1, updated_at = UTC_TIMESTAMP(6) WHERE id = ? AND state = ?`, ClassCancelled, reason, id, string(cur))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return &ConflictError{Op: "cancel apply", ID: id, Want: cur, Current: currentState(ctx, tx, id)}
		}
		ids := []int64{id}
		if err := moveTasks(ctx, tx, ids, []State{Pending, FailedRetryable}, Cancelled, actor, reason, ""); err != nil {
			return err
		}
		if err := applyEvents(ctx, tx, ids, actor, "apply.cancelled", reason); err != nil {
			return err
		}
		out, err = queryApply(ctx, tx, "WHERE id = ?", id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("cancel apply %d: %w", id, err)
	}
	return out, nil
}

// RetryNow moves a failed_retryable apply to pending, due now.
func (s *Store) RetryNow(ctx context.Context, id int64, actor string) (*Apply, error) {
	var out *Apply
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cur, err := lockApply(ctx, tx, id)
		if err != nil {
			return err
		}
		if !CanTransitionApply(cur, Pending) {
			return &TransitionError{From: cur, To: Pending}
		}
		res, err := tx.ExecContext(ctx, `UPDATE tern_applies SET state = 'pending', next_attempt_at = UTC_TIMESTAMP(6),
 version = version + 1, updated_at = UTC_TIMESTAMP(6) WHERE id = ? AND state = ?`, id, string(cur))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return &ConflictError{Op: "retry apply", ID: id, Want: cur, Current: currentState(ctx, tx, id)}
		}
		if err := applyEvents(ctx, tx, []int64{id}, actor, "apply.pending", "retry requested"); err != nil {
			return err
		}
		out, err = queryApply(ctx, tx, "WHERE id = ?", id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("retry apply %d: %w", id, err)
	}
	return out, nil
}

// FailExhausted fails for good (class retries_exhausted) every
// failed_retryable apply whose attempt has reached max_attempts, except
// rescued ones and those waiting for work still running on the target
// (their last attempt's outcome is not known yet: a claim confirms it, see
// Claim), and returns them. Their failed_retryable tasks fail and
// their pending tasks are cancelled; the last error is kept.
func (s *Store) FailExhausted(ctx context.Context, limit int) ([]*Apply, error) {
	if limit <= 0 {
		limit = 100
	}
	var out []*Apply
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM tern_applies WHERE state = 'failed_retryable'
 AND attempt >= max_attempts AND error_class NOT IN (?, ?) ORDER BY next_attempt_at, id LIMIT ? FOR UPDATE SKIP LOCKED`,
			ClassRescued, ClassStillRunning, limit)
		if err != nil {
			return err
		}
		ids, err := scanColumn[int64](rows)
		if err != nil || len(ids) == 0 {
			return err
		}
		in, args := placeholders(ids)
		if err := applyEvents(ctx, tx, ids, "tern", "apply.failed", ClassRetriesExhausted); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tern_applies SET state = 'failed', error_class = ?,
 finished_at = UTC_TIMESTAMP(6), version = version + 1, updated_at = UTC_TIMESTAMP(6)
 WHERE state = 'failed_retryable' AND id IN (`+in+`)`, append([]any{ClassRetriesExhausted}, args...)...); err != nil {
			return err
		}
		if err := moveTasks(ctx, tx, ids, []State{FailedRetryable}, Failed, "tern", ClassRetriesExhausted, ""); err != nil {
			return err
		}
		if err := moveTasks(ctx, tx, ids, []State{Pending, Running}, Cancelled, "tern", ClassRetriesExhausted, ""); err != nil {
			return err
		}
		out, err = queryApplies(ctx, tx, "WHERE id IN ("+in+") ORDER BY id", args...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("fail exhausted applies: %w", err)
	}
	return out, nil
}

// TakeLock gives the (repository, database, environment) lock to pr. It is
// idempotent for the holder and returns *LockHeldError for anyone else.
func (s *Store) TakeLock(ctx context.Context, l Lock) error {
	for try := 0; ; try++ {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO tern_locks (repository, database_name, environment, pr,
 installation_id, created_at) VALUES (?, ?, ?, ?, ?, UTC_TIMESTAMP(6))`,
				l.Repository, l.Database, l.Environment, l.PR, l.InstallationID); err != nil {
				return err
			}
			return addEvent(ctx, tx, Event{Repository: l.Repository, PR: l.PR, Actor: "tern", Action: "lock.taken",
				Detail: l.Database + "/" + l.Environment})
		})
		if err == nil {
			return nil
		}
		if !isDuplicateKey(err) {
			return fmt.Errorf("take lock %s %s/%s: %w", l.Repository, l.Database, l.Environment, err)
		}
		holder, herr := s.GetLock(ctx, l.Repository, l.Database, l.Environment)
		if errors.Is(herr, ErrNotFound) && try < 3 {
			continue // released in between: try again
		}
		if herr != nil {
			return fmt.Errorf("take lock %s %s/%s: %w", l.Repository, l.Database, l.Environment, herr)
		}
		if holder.PR == l.PR {
			return nil
		}
		return &LockHeldError{Lock: *holder}
	}
}

const lockCols = "repository, database_name, environment, pr, installation_id, created_at"

func scanLocks(rows *sql.Rows) ([]Lock, error) {
	defer rows.Close()
	var out []Lock
	for rows.Next() {
		var l Lock
		if err := rows.Scan(&l.Repository, &l.Database, &l.Environment, &l.PR, &l.InstallationID, &l.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// GetLock returns the lock on a target, or ErrNotFound.
func (s *Store) GetLock(ctx context.Context, repo, database, env string) (*Lock, error) {
	var l Lock
	err := s.db.QueryRowContext(ctx, "SELECT "+lockCols+` FROM tern_locks
 WHERE repository = ? AND database_name = ? AND environment = ?`, repo, database, env).
		Scan(&l.Repository, &l.Database, &l.Environment, &l.PR, &l.InstallationID, &l.CreatedAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("lock on %s %s/%s: %w", repo, database, env, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("lock on %s %s/%s: %w", repo, database, env, err)
	}
	return &l, nil
}

// LocksForPR returns the locks a PR holds.
func (s *Store) LocksForPR(ctx context.Context, repo string, pr int) ([]Lock, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+lockCols+` FROM tern_locks WHERE repository = ? AND pr = ?
 ORDER BY database_name, environment`, repo, pr)
	if err != nil {
		return nil, fmt.Errorf("locks of %s#%d: %w", repo, pr, err)
	}
	ls, err := scanLocks(rows)
	if err != nil {
		return nil, fmt.Errorf("locks of %s#%d: %w", repo, pr, err)
	}
	return ls, nil
}

// ReleaseLocks releases the PR's locks, all of them when database and env
// are "", and returns those released. An empty database or env matches
// any.
func (s *Store) ReleaseLocks(ctx context.Context, repo string, pr int, database, env string) ([]Lock, error) {
	where := " WHERE repository = ? AND pr = ?"
	args := []any{repo, pr}
	if database != "" {
		where += " AND database_name = ?"
		args = append(args, database)
	}
	if env != "" {
		where += " AND environment = ?"
		args = append(args, env)
	}
	var out []Lock
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, "SELECT "+lockCols+" FROM tern_locks"+where+" ORDER BY database_name, environment FOR UPDATE", args...)
		if err != nil {
			return err
		}
		if out, err = scanLocks(rows); err != nil || len(out) == 0 {
			return err
		}
		for _, l := range out {
			if _, err := tx.ExecContext(ctx, `DELETE FROM tern_locks WHERE repository = ? AND database_name = ?
 AND environment = ? AND pr = ?`, l.Repository, l.Database, l.Environment, l.PR); err != nil {
				return err
			}
			if err := addEvent(ctx, tx, Event{Repository: l.Repository, PR: l.PR, Actor: "tern", Action: "lock.released",
				Detail: l.Database + "/" + l.Environment}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("release locks of %s#%d: %w", repo, pr, err)
	}
	return out, nil
}

// PRRef names a pull request that tern holds state for.
type PRRef struct {
	Repository     string
	PR             int
	InstallationID int64
}

// OpenPRs lists PRs that hold a lock or have an active apply (for the
// recovery pass to check whether they were closed behind its back).
func (s *Store) OpenPRs(ctx context.Context) ([]PRRef, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT repository, pr, MAX(installation_id) FROM (
 SELECT repository, pr, installation_id FROM tern_locks
 UNION ALL
 SELECT repository, pr, installation_id FROM tern_applies WHERE active_repository IS NOT NULL
) x GROUP BY repository, pr ORDER BY repository, pr`)
	if err != nil {
		return nil, fmt.Errorf("open PRs: %w", err)
	}
	defer rows.Close()
	var out []PRRef
	for rows.Next() {
		var r PRRef
		if err := rows.Scan(&r.Repository, &r.PR, &r.InstallationID); err != nil {
			return nil, fmt.Errorf("open PRs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("open PRs: %w", err)
	}
	return out, nil
}

// Delivery states in tern_deliveries.
const (
	deliveryPending = "pending"
	deliveryDone    = "done"
	deliveryFailed  = "failed"
)

// RecordDelivery stores a webhook delivery; it returns false, and stores
// nothing, when the delivery id was already recorded.
func (s *Store) RecordDelivery(ctx context.Context, d Delivery) (bool, error) {
	payload := d.Payload
	if payload == nil {
		payload = []byte{}
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO tern_deliveries (id, event, payload, state, attempts, available_at,
 lease_owner, last_error, received_at, updated_at)
 VALUES (?, ?, ?, ?, 0, UTC_TIMESTAMP(6), '', '', UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))`,
		d.ID, d.Event, payload, deliveryPending)
	if isDuplicateKey(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("record delivery %s: %w", d.ID, err)
	}
	return true, nil
}

// ClaimDeliveries takes up to limit deliveries not yet processed (new, or
// whose processing lease lapsed) with SKIP LOCKED.
func (s *Store) ClaimDeliveries(ctx context.Context, owner string, limit int, lease time.Duration) ([]Delivery, error) {
	if limit <= 0 {
		limit = DefaultClaimLimit
	}
	if lease <= 0 {
		lease = DefaultLease
	}
	var out []Delivery
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM tern_deliveries WHERE state = ? AND available_at <= UTC_TIMESTAMP(6)
 ORDER BY available_at, id LIMIT ? FOR UPDATE SKIP LOCKED`, deliveryPending, limit)
		if err != nil {
			return err
		}
		found, err := scanColumn[string](rows)
		if err != nil || len(found) == 0 {
			return err
		}
		in, ids := placeholders(found)
		if _, err := tx.ExecContext(ctx, `UPDATE tern_deliveries SET attempts = attempts + 1, lease_owner = ?,
 available_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND, updated_at = UTC_TIMESTAMP(6) WHERE id IN (`+in+`)`,
			append([]any{owner, micros(lease)}, ids...)...); err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, `SELECT id, event, payload, attempts, received_at FROM tern_deliveries
 WHERE id IN (`+in+`) ORDER BY received_at, id`, ids...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d Delivery
			if err := rows.Scan(&d.ID, &d.Event, &d.Payload, &d.Attempts, &d.ReceivedAt); err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	return out, nil
}

// FinishDelivery marks a delivery processed; errMsg records a failure.
// Finishing a delivery already finished changes nothing.
func (s *Store) FinishDelivery(ctx context.Context, id string, errMsg string) error {
	state := deliveryDone
	if errMsg != "" {
		state = deliveryFailed
	}
	res, err := s.db.ExecContext(ctx, `UPDATE tern_deliveries SET state = ?, last_error = ?, lease_owner = '',
 finished_at = UTC_TIMESTAMP(6), updated_at = UTC_TIMESTAMP(6) WHERE id = ? AND state = ?`, state, errMsg, id, deliveryPending)
	if err != nil {
		return fmt.Errorf("finish delivery %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		var one int
		err := s.db.QueryRowContext(ctx, `SELECT 1 FROM tern_deliveries WHERE id = ?`, id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("finish delivery %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("finish delivery %s: %w", id, err)
		}
	}
	return nil
}

// Ref returns a stored GitHub reference (comment or check run id and a
// small free-form meta string) by key, or ErrNotFound.
func (s *Store) Ref(ctx context.Context, repo, key string) (id int64, meta string, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT ref_id, meta FROM tern_github_refs WHERE repository = ? AND ref_key = ?`,
		repo, key).Scan(&id, &meta)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", fmt.Errorf("ref %s %s: %w", repo, key, ErrNotFound)
	}
	if err != nil {
		return 0, "", fmt.Errorf("ref %s %s: %w", repo, key, err)
	}
	return id, meta, nil
}

// SetRef upserts a GitHub reference.
func (s *Store) SetRef(ctx context.Context, repo, key string, id int64, meta string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO tern_github_refs (repository, ref_key, ref_id, meta, updated_at)
 VALUES (?, ?, ?, ?, UTC_TIMESTAMP(6))
 ON DUPLICATE KEY UPDATE ref_id = VALUES(ref_id), meta = VALUES(meta), updated_at = VALUES(updated_at)`,
		repo, key, id, meta)
	if err != nil {
		return fmt.Errorf("set ref %s %s: %w", repo, key, err)
	}
	return nil
}

// ReportDue returns applies whose latest state has not been reported to
// GitHub (reported_version < version), those whose reports failed least
// often first, then those due a recheck (report_recheck_at passed).
func (s *Store) ReportDue(ctx context.Context, limit int) ([]*Apply, error) {
	if limit <= 0 {
		limit = 100
	}
	// Applies whose reports keep failing go to the back: they never
	// starve newer ones.
	as, err := queryApplies(ctx, s.db, "WHERE report_due = 1 ORDER BY report_failures, id LIMIT ?", limit)
	if err != nil {
		return nil, fmt.Errorf("applies due a report: %w", err)
	}
	// And those due a recheck: a write of a reporter that was overtaken
	// may have landed after newer ones (see BeginReportWrite).
	re, err := queryApplies(ctx, s.db, "WHERE report_recheck_at <= UTC_TIMESTAMP(6) ORDER BY report_recheck_at LIMIT ?", limit)
	if err != nil {
		return nil, fmt.Errorf("applies due a report: %w", err)
	}
	seen := map[int64]bool{}
	for _, a := range as {
		seen[a.ID] = true
	}
	for _, a := range re {
		if !seen[a.ID] && len(as) < limit {
			as = append(as, a)
		}
	}
	return as, nil
}

// MarkReported records that version of apply id reached GitHub. It never
// moves reported_version backwards.
func (s *Store) MarkReported(ctx context.Context, id int64, version int64) error {
	res, err := s.db.ExecContext(ctx, `UPDATE tern_applies SET reported_version = ?, report_failures = 0,
 report_failing_since = NULL WHERE id = ? AND reported_version < ? AND version >= ?`, version, id, version, version)
	if err != nil {
		return fmt.Errorf("mark apply %d reported: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		var v int64
		err := s.db.QueryRowContext(ctx, `SELECT version FROM tern_applies WHERE id = ?`, id).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("mark apply %d reported: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("mark apply %d reported: %w", id, err)
		}
		if version > v {
			return fmt.Errorf("mark apply %d reported: version %d is newer than the apply's %d", id, version, v)
		}
	}
	return nil
}

// ReportGiveUp says when the pass stops trying to report an apply.
type ReportGiveUp struct {
	// Failures is how many failed reports in a row it takes at least.
	Failures int
	// After is how long the reports must have been failing at least.
	After time.Duration
}

// ReportFailed records that reporting version of apply id failed with
// reason. Once the reports of the apply have failed giveUp.Failures times
// in a row over at least giveUp.After, the ledger gives up on them: the
// version is marked reported (a later change is reported afresh), an audit
// row says why, and gaveUp is true. failures is the count so far.
func (s *Store) ReportFailed(ctx context.Context, id, version int64, reason string, giveUp ReportGiveUp) (failures int, gaveUp bool, err error) {
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var repo string
		var pr int
		var reported int64
		var old bool
		err := tx.QueryRowContext(ctx, `SELECT repository, pr, reported_version, report_failures,
 COALESCE(report_failing_since <= UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND, FALSE)
 FROM tern_applies WHERE id = ? FOR UPDATE`, micros(giveUp.After), id).Scan(&repo, &pr, &reported, &failures, &old)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil || reported >= version {
			return err
		}
		failures++
		if failures >= giveUp.Failures && old {
			gaveUp = true
			if _, err := tx.ExecContext(ctx, `UPDATE tern_applies SET reported_version = GREATEST(reported_version, ?),
 report_failures = 0, report_failing_since = NULL WHERE id = ?`, version, id); err != nil {
				return err
			}
			return addEvent(ctx, tx, Event{ApplyID: id, Repository: repo, PR: pr, Actor: "tern", Action: "report.abandoned",
				Detail: fmt.Sprintf("version %d not reported after %d failures: %s", version, failures, reason)})
		}
		_, err = tx.ExecContext(ctx, `UPDATE tern_applies SET report_failures = ?,
 report_failing_since = COALESCE(report_failing_since, UTC_TIMESTAMP(6)) WHERE id = ?`, failures, id)
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("record failed report of apply %d: %w", id, err)
	}
	return failures, gaveUp, nil
}

// AddEvent appends to the audit log.
func (s *Store) AddEvent(ctx context.Context, e Event) error {
	return addEvent(ctx, s.db, e)
}

// Events returns the audit log of an apply (applyID > 0) or of everything,
// oldest first.
func (s *Store) Events(ctx context.Context, applyID int64) ([]Event, error) {
	q := `SELECT id, at, apply_id, repository, pr, actor, action, detail FROM tern_events`
	var args []any
	if applyID > 0 {
		q += " WHERE apply_id = ?"
		args = append(args, applyID)
	}
	rows, err := s.db.QueryContext(ctx, q+" ORDER BY id", args...)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		if err := rows.Scan(&e.ID, &e.At, &e.ApplyID, &e.Repository, &e.PR, &e.Actor, &e.Action, &e.Detail); err != nil {
			return nil, fmt.Errorf("events: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return out, nil
}
