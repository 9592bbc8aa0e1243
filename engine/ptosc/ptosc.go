// Package ptosc applies ALTER TABLE statements to a MySQL or MariaDB
// server as online row copies with pt-online-schema-change (Percona
// Toolkit): the tool builds the changed table beside the old one, copies
// the rows in small chunks while triggers carry every write over, and
// tern swaps the two tables with one RENAME TABLE. Writes never wait
// longer than that swap's metadata lock.
//
// Everything a later attempt needs is in the ledger (engine state keys
// online.<seq>.*, see the State* constants): a rescued or retried attempt
// drops what an interrupted one left, and only what the ledger names,
// then copies again. docs/online-engine.md is the design.
package ptosc

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/engine"
)

// Tool is the program the engine runs, looked up on PATH.
const Tool = "pt-online-schema-change"

// Engine-state keys, each followed by the task's seq ("online.3.phase").
// They are written before the thing they name is made.
const (
	// StateTool: "pt-osc" and the tool's version.
	StateTool = "tool"
	// StateTable: the table being changed.
	StateTable = "table"
	// StateShadow: the new table the rows are copied into.
	StateShadow = "shadow"
	// StateTriggers: the tool's triggers on the table, comma-separated.
	StateTriggers = "triggers"
	// StateOld: the old table's name after the swap, until it is dropped.
	StateOld = "old"
	// StatePhase: copying, cutover, cleanup or done.
	StatePhase = "phase"
)

// Phases of one task's copy, recorded under StatePhase.
const (
	PhaseCopying = "copying"
	PhaseCutover = "cutover"
	PhaseCleanup = "cleanup"
	PhaseDone    = "done"
)

// stateKey returns the engine-state key of field for task seq.
func stateKey(seq int, field string) string {
	return "online." + strconv.Itoa(seq) + "." + field
}

// Options tune an Engine beyond the target's config.
type Options struct {
	// Tool is the path of pt-online-schema-change. Default: Tool on PATH.
	Tool string
	// ChunkSize fixes the rows copied per chunk (--chunk-size, with
	// --chunk-time=0). Default 0: the tool sizes chunks to take 0.5 s.
	ChunkSize int
	// Logger receives the tool's output at debug level. Default
	// slog.Default().
	Logger *slog.Logger
}

// Engine runs ALTER TABLE statements through pt-online-schema-change. It
// implements engine.Engine and engine.InFlighter and is safe for
// concurrent use.
type Engine struct {
	db       *sql.DB
	database string
	lockWait time.Duration
	// progressInterval is how often, at most, progress is recorded.
	progressInterval time.Duration
	tool             string
	opts             Options
	// who the tool connects as: host and port or socket, user, password.
	host, port, socket string
	user, password     string
}

var (
	_ engine.Engine     = (*Engine)(nil)
	_ engine.InFlighter = (*Engine)(nil)
)

// New returns an engine for the server at cfg.DSN; the live schema is the
// DSN's database or, when it names none, database. It fails when the tool
// is not installed, or when the DSN asks for something the tool cannot be
// given (TLS). No connection is made until one is needed.
func New(cfg config.MySQL, database string, opts Options) (*Engine, error) {
	tool := opts.Tool
	if tool == "" {
		tool = Tool
	}
	path, err := exec.LookPath(tool)
	if err != nil {
		return nil, fmt.Errorf("mysql.online: %s: %s is not installed (install percona-toolkit, e.g. apt-get install percona-toolkit), or remove mysql.online to apply with direct DDL only", config.OnlinePTOSC, tool)
	}
	mc, err := mysql.ParseDSN(cfg.DSN)
	if err != nil {
		return nil, errors.New("mysql target: invalid DSN")
	}
	if mc.TLSConfig != "" && mc.TLSConfig != "false" {
		return nil, fmt.Errorf("mysql.online: %s cannot be given the DSN's tls parameter; use a DSN without TLS for this target or remove mysql.online", config.OnlinePTOSC)
	}
	mc.ParseTime = true
	if mc.DBName == "" {
		mc.DBName = database
	}
	if mc.DBName == "" {
		return nil, errors.New("mysql target: no database name in the DSN or the target")
	}
	e := &Engine{database: mc.DBName, tool: path, opts: opts, user: mc.User, password: mc.Passwd}
	switch mc.Net {
	case "unix":
		e.socket = mc.Addr
	default:
		host, port, err := net.SplitHostPort(mc.Addr)
		if err != nil {
			host, port = strings.Trim(mc.Addr, "[]"), "3306"
		}
		e.host, e.port = host, port
	}
	if e.opts.Logger == nil {
		e.opts.Logger = slog.Default()
	}
	e.lockWait = cfg.LockWaitTimeout.D()
	if e.lockWait <= 0 {
		e.lockWait = 10 * time.Second
	}
	e.progressInterval = cfg.ProgressInterval.D()
	if e.progressInterval <= 0 {
		e.progressInterval = 30 * time.Second
	}
	// Every statement of the engine's own (the swap, dropping triggers and
	// tables) waits at most lock_wait_timeout for a metadata lock.
	if mc.Params == nil {
		mc.Params = map[string]string{}
	}
	mc.Params["lock_wait_timeout"] = strconv.FormatInt(e.lockWaitSeconds(), 10)
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("mysql target: %w", err)
	}
	e.db = sql.OpenDB(conn)
	e.db.SetMaxIdleConns(2)
	e.db.SetConnMaxIdleTime(5 * time.Second)
	return e, nil
}

// Live returns the pool on the live schema. The engine owns it.
func (e *Engine) Live(ctx context.Context) (*sql.DB, error) {
	if err := e.db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("connect to live schema %s: %w", e.database, engine.ClassifyMySQL(err))
	}
	return e.db, nil
}

// Close closes the pool.
func (e *Engine) Close() error { return e.db.Close() }

// lockWaitSeconds is lock_wait_timeout in whole seconds (at least 1), the
// form both servers and the tool's --set-vars take.
func (e *Engine) lockWaitSeconds() int64 {
	return max(1, int64(math.Ceil(e.lockWait.Seconds())))
}

// recordError is a Recorder failure (a lost lease): Apply returns it as
// it is, not as a task's failure.
type recordError struct{ err error }

func (r *recordError) Error() string { return r.err.Error() }
func (r *recordError) Unwrap() error { return r.err }

// Apply runs job's tasks in order, each as one copy. A task's failure is
// returned as a *engine.TaskError wrapping a classified cause; a recorder
// error (a lost lease) is returned as it is.
func (e *Engine) Apply(ctx context.Context, job engine.Job, rec engine.Recorder) error {
	e.cleanFinished(ctx, job)
	for _, t := range job.Tasks {
		if err := e.runTask(ctx, job, t, rec); err != nil {
			var re *recordError
			if errors.As(err, &re) {
				return re.err
			}
			return &engine.TaskError{Seq: t.Seq, Err: err}
		}
	}
	return nil
}

// save records one engine-state field of task seq.
func save(ctx context.Context, rec engine.Recorder, seq int, field, value string) error {
	if err := rec.SaveState(ctx, stateKey(seq, field), value); err != nil {
		return &recordError{fmt.Errorf("record task %d %s: %w", seq, field, err)}
	}
	return nil
}

// runTask copies one task's table through the tool and swaps it in.
func (e *Engine) runTask(ctx context.Context, job engine.Job, t engine.Task, rec engine.Recorder) error {
	spec, err := alterSpec(t.DDL, t.Table)
	if err != nil {
		return &engine.PermanentError{Class: engine.ClassUnsupported, Err: fmt.Errorf("pt-online-schema-change: %w", err)}
	}
	if strings.ContainsAny(t.Table, ",=") {
		return &engine.PermanentError{Class: engine.ClassUnsupported, Err: fmt.Errorf(
			"pt-online-schema-change cannot name table %s (a comma or = in its name); comment /tern plan and apply with --allow-blocking", t.Table)}
	}
	n := namesFor(e.database, t.Table, job.ApplyID, t.Seq)
	if err := rec.TaskStarted(ctx, t.Seq); err != nil {
		return &recordError{fmt.Errorf("record task %d started: %w", t.Seq, err)}
	}
	conn, err := e.session(ctx)
	if err != nil {
		return err
	}
	defer discard(conn)
	if err := e.lockTable(ctx, conn, n, t.Table); err != nil {
		return err
	}
	// What an interrupted attempt of this task left, named in the ledger.
	if err := e.dropCopy(ctx, job.EngineState, t.Seq); err != nil {
		return err
	}
	version := e.version(ctx)
	for _, kv := range [][2]string{
		{StateTool, strings.TrimSpace(config.OnlinePTOSC + " " + version)},
		{StateTable, t.Table},
		{StateShadow, n.shadow},
		{StateTriggers, strings.Join(n.triggers, ",")},
		{StatePhase, PhaseCopying},
	} {
		if err := save(ctx, rec, t.Seq, kv[0], kv[1]); err != nil {
			return err
		}
	}
	state := map[string]string{stateKey(t.Seq, StateShadow): n.shadow, stateKey(t.Seq, StateTriggers): strings.Join(n.triggers, ",")}
	if err := e.copyRows(ctx, n, t, spec, rec); err != nil {
		return e.abandon(ctx, state, t.Seq, err)
	}
	if err := save(ctx, rec, t.Seq, StateOld, n.old); err != nil {
		return e.abandon(ctx, state, t.Seq, err)
	}
	if err := save(ctx, rec, t.Seq, StatePhase, PhaseCutover); err != nil {
		return e.abandon(ctx, state, t.Seq, err)
	}
	if err := e.swap(ctx, conn, n, t.Table); err != nil {
		return e.abandon(ctx, state, t.Seq, err)
	}
	// The change is live. What is left is to drop the old table and the
	// triggers (now on the old table, and idle).
	if err := save(ctx, rec, t.Seq, StatePhase, PhaseCleanup); err != nil {
		return err
	}
	state[stateKey(t.Seq, StateOld)] = n.old
	if err := e.dropNamed(ctx, state, t.Seq); err != nil {
		e.opts.Logger.Warn("pt-osc: drop the old table after the swap", "table", t.Table, "old", n.old, "err", err)
	}
	if err := rec.TaskDone(ctx, t.Seq); err != nil {
		return &recordError{fmt.Errorf("record task %d done: %w", t.Seq, err)}
	}
	return save(ctx, rec, t.Seq, StatePhase, PhaseDone)
}

// abandon drops the triggers and the copy of a task that failed or was
// stopped (triggers must not outlive the attempt: they double the table's
// writes and could fail them), and returns err. Dropping a trigger needs
// the table's metadata lock: while another session holds it, each try
// waits lock_wait_timeout and they go on, a second apart, for up to
// stopTimeout. It runs past ctx's end: the attempt is recorded after the
// cleanup. What it could not drop is named in the ledger and dropped by
// the next attempt.
func (e *Engine) abandon(ctx context.Context, state map[string]string, seq int, err error) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	defer cancel()
	for {
		derr := e.dropCopy(cctx, state, seq)
		if derr == nil {
			return err
		}
		select {
		case <-cctx.Done():
			return fmt.Errorf("%w; its triggers and copy could not be dropped within %s (%v): the next attempt drops them", err, stopTimeout, derr)
		case <-time.After(time.Second):
		}
	}
}

// session takes a connection of its own (its lock_wait_timeout is the
// target's, as on every connection of the pool).
func (e *Engine) session(ctx context.Context) (*sql.Conn, error) {
	conn, err := e.db.Conn(ctx)
	if err != nil {
		return nil, engine.ClassifyMySQL(fmt.Errorf("connect: %w", err))
	}
	return conn, nil
}

// discard closes conn for good (it carries a session lock and settings).
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}

// lockTable takes the table's copy lock on conn, waiting at most
// lock_wait_timeout: one copy of a table at a time, whoever thinks it owns
// the apply. The lock goes with the connection.
func (e *Engine) lockTable(ctx context.Context, conn *sql.Conn, n names, table string) error {
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", n.lock, e.lockWaitSeconds()).Scan(&got); err != nil {
		return engine.ClassifyMySQL(fmt.Errorf("take the copy lock of table %s: %w", table, err))
	}
	if got.Int64 != 1 {
		var holder sql.NullInt64
		_ = conn.QueryRowContext(ctx, "SELECT IS_USED_LOCK(?)", n.lock).Scan(&holder)
		return &engine.RetryableError{Class: engine.ClassLockWaitTimeout, Err: fmt.Errorf(
			"another online copy of table %s is running on the target (connection %d holds lock %s); nothing was changed and the apply will be retried once it ends",
			table, holder.Int64, n.lock)}
	}
	return nil
}

// version returns the tool's version ("3.2.1"), or "" when it cannot say.
func (e *Engine) version(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, e.tool, "--version").Output()
	if err != nil {
		return ""
	}
	f := strings.Fields(string(out))
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// swap puts the copy in the table's place with one atomic RENAME TABLE,
// waiting at most lock_wait_timeout for the table's metadata lock.
func (e *Engine) swap(ctx context.Context, conn *sql.Conn, n names, table string) error {
	stmt := "RENAME TABLE " + quote(table) + " TO " + quote(n.old) + ", " + quote(n.shadow) + " TO " + quote(table)
	_, err := conn.ExecContext(ctx, stmt)
	if err == nil {
		return nil
	}
	err = engine.ClassifyMySQL(err)
	if engine.Class(err) == engine.ClassLockWaitTimeout {
		return &engine.RetryableError{Class: engine.ClassLockWaitTimeout, Err: fmt.Errorf(
			"the swap of table %s with its finished copy waited lock_wait_timeout (%ds) for the table's metadata lock, held by another session (a long transaction?); "+
				"the table is unchanged, the copy and its triggers were dropped, and the apply will be retried: %w", table, e.lockWaitSeconds(), err)}
	}
	return fmt.Errorf("swap table %s with its copy: %w", table, err)
}

// quote quotes a MySQL identifier.
func quote(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }
