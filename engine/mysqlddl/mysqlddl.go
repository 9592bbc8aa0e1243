// Package mysqlddl applies a plan to a MySQL or MariaDB server with plain
// DDL, one statement per task, on a dedicated connection whose
// lock_wait_timeout is short so that a DDL stuck behind a metadata lock
// fails fast (and is retried later) instead of stalling the table's
// traffic behind it.
package mysqlddl

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/engine"
	"github.com/ternhq/tern/internal/ddlclause"
)

// Engine applies DDL directly over a MySQL connection. It implements
// engine.Engine and is safe for concurrent use.
type Engine struct {
	db       *sql.DB
	database string
	lockWait time.Duration
	// progressInterval is how often, at most, progress is recorded.
	progressInterval time.Duration

	mu     sync.Mutex
	known  bool // flavor has been read
	flavor flavor
}

var (
	_ engine.Engine     = (*Engine)(nil)
	_ engine.InFlighter = (*Engine)(nil)
)

// New returns an engine for the server at cfg.DSN. The live schema is the
// DSN's database name or, when the DSN names none, database. The DSN's
// parameters are honoured; parseTime is turned on. No connection is made
// until one is needed.
func New(cfg config.MySQL, database string) (*Engine, error) {
	mc, err := mysql.ParseDSN(cfg.DSN)
	if err != nil {
		// The driver's message may quote the DSN; keep only its kind.
		return nil, errors.New("mysql target: invalid DSN")
	}
	mc.ParseTime = true
	if mc.DBName == "" {
		mc.DBName = database
	}
	if mc.DBName == "" {
		return nil, errors.New("mysql target: no database name in the DSN or the target")
	}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("mysql target: %w", err)
	}
	lw := cfg.LockWaitTimeout.D()
	if lw <= 0 {
		lw = 10 * time.Second
	}
	db := sql.OpenDB(conn)
	// The pool serves introspection (planning, re-planning); idle
	// connections go soon so that many targets do not pile them up.
	db.SetMaxIdleConns(4)
	db.SetConnMaxIdleTime(5 * time.Second)
	pi := cfg.ProgressInterval.D()
	if pi <= 0 {
		pi = defaultProgressInterval
	}
	return &Engine{db: db, database: mc.DBName, lockWait: lw, progressInterval: pi}, nil
}

// discard closes conn for good instead of returning it to the pool.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}

// Database returns the name of the live schema.
func (e *Engine) Database() string { return e.database }

// Live returns the pool on the live schema. The engine owns it.
func (e *Engine) Live(ctx context.Context) (*sql.DB, error) {
	if err := e.db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("connect to live schema %s: %w", e.database, engine.ClassifyMySQL(err))
	}
	return e.db, nil
}

// Close closes the pool.
func (e *Engine) Close() error { return e.db.Close() }

// Apply runs job's tasks in order on one dedicated connection. Each task is
// reported to rec before and after its DDL; a recorder error (a lost lease)
// stops the job and is returned as is. A failing DDL is returned as a
// *engine.TaskError wrapping the classified cause.
func (e *Engine) Apply(ctx context.Context, job engine.Job, rec engine.Recorder) error {
	if len(job.Tasks) == 0 {
		return nil
	}
	first := job.Tasks[0].Seq
	// The connection carries this job's session settings and is not handed
	// back to the pool: one apply holds one connection and leaves none idle,
	// however many targets a process serves.
	s, err := e.openSession(ctx)
	if err != nil {
		return &engine.TaskError{Seq: first, Err: err}
	}
	defer s.close()
	fl, err := e.serverFlavor(ctx, s.conn)
	if err != nil {
		return &engine.TaskError{Seq: first, Err: err}
	}
	if _, err := s.conn.ExecContext(ctx, "SET SESSION lock_wait_timeout = "+fl.lockWaitValue(e.lockWait)); err != nil {
		return &engine.TaskError{Seq: first, Err: engine.ClassifyMySQL(fmt.Errorf("set lock_wait_timeout: %w", err))}
	}
	w := e.watcher(s, fl, rec)
	for _, t := range job.Tasks {
		if err := rec.TaskStarted(ctx, t.Seq); err != nil {
			return fmt.Errorf("record task %d started: %w", t.Seq, err)
		}
		conn := fmt.Sprintf("task=%d id=%d server=%s", t.Seq, s.id, s.server)
		if err := rec.SaveState(ctx, StateConn, conn); err != nil {
			return fmt.Errorf("record task %d session: %w", t.Seq, err)
		}
		stop := w.watch(ctx, t.Seq)
		err := e.run(ctx, s, fl, job.ApplyID, t)
		stop()
		if err != nil {
			return &engine.TaskError{Seq: t.Seq, Err: engine.ClassifyMySQL(err)}
		}
		if err := rec.TaskDone(ctx, t.Seq); err != nil {
			return fmt.Errorf("record task %d done: %w", t.Seq, err)
		}
	}
	return nil
}

// run sends one task's DDL. An ALTER TABLE whose plan promised an
// algorithm and lock states them (", ALGORITHM=INPLACE, LOCK=NONE"), so
// that a server that cannot keep the promise refuses, changing nothing,
// instead of running the change in a way that blocks writes: that refusal
// is permanent (class broken_promise). Without a promise (tasks planned
// before costs were), ALGORITHM=INSTANT is tried when the task allows it,
// and a hinted DDL that fails for any reason but a transient one is sent
// once more without the hint.
func (e *Engine) run(ctx context.Context, s *session, fl flavor, applyID int64, t engine.Task) error {
	ddl := trimStatement(t.DDL)
	if clause := ddlclause.Clause(t.Algorithm, t.Lock); clause != "" && fl.instant && isAlterTable(ddl) {
		err := e.execDDL(ctx, s, applyID, t.Seq, ddlclause.Insert(ddl, clause))
		if reason, ok := ddlclause.Refused(err); ok {
			return brokenPromise(strings.TrimPrefix(clause, ", "), reason, err)
		}
		return err
	}
	if t.Instant && fl.instant && isAlterTable(ddl) {
		err := e.execDDL(ctx, s, applyID, t.Seq, ddlclause.Insert(ddl, ddlclause.Clause("INSTANT", "")))
		if err == nil {
			return nil
		}
		if engine.IsRetryable(engine.ClassifyMySQL(err)) {
			return err
		}
	}
	return e.execDDL(ctx, s, applyID, t.Seq, ddl)
}

// flavor is what the engine needs to know about the server.
type flavor struct {
	mariadb bool
	// instant: the server understands ALGORITHM=INSTANT (MySQL 8.0+,
	// MariaDB 10.3+).
	instant bool
}

// lockWaitValue renders d for SET SESSION lock_wait_timeout: MariaDB takes
// fractional seconds, MySQL whole seconds (at least 1).
func (f flavor) lockWaitValue(d time.Duration) string {
	if f.mariadb {
		return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
	}
	s := int64(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}

func (e *Engine) serverFlavor(ctx context.Context, conn *sql.Conn) (flavor, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.known {
		return e.flavor, nil
	}
	var v string
	if err := conn.QueryRowContext(ctx, "SELECT VERSION()").Scan(&v); err != nil {
		return flavor{}, engine.ClassifyMySQL(fmt.Errorf("read server version: %w", err))
	}
	e.flavor, e.known = parseFlavor(v), true
	return e.flavor, nil
}

var versionRE = regexp.MustCompile(`^(\d+)\.(\d+)`)

// parseFlavor reads a VERSION() string such as "8.0.36" or
// "10.11.6-MariaDB-0+deb12u1".
func parseFlavor(v string) flavor {
	f := flavor{mariadb: strings.Contains(strings.ToLower(v), "mariadb")}
	if f.mariadb {
		// Replication-era MariaDB servers prefix a fake MySQL version.
		v = strings.TrimPrefix(v, "5.5.5-")
	}
	m := versionRE.FindStringSubmatch(v)
	if m == nil {
		return f
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if f.mariadb {
		f.instant = major > 10 || (major == 10 && minor >= 3)
	} else {
		f.instant = major >= 8
	}
	return f
}

func trimStatement(ddl string) string {
	return strings.TrimRight(strings.TrimSpace(ddl), "; \t\r\n")
}

var alterRE = regexp.MustCompile(`(?i)^ALTER\s+TABLE\s`)

func isAlterTable(ddl string) bool { return alterRE.MatchString(ddl) }
