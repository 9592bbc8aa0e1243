package mysqlddl

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/ternhq/tern/engine"
)

// defaultProgressInterval is how often, at most, a long DDL's progress is
// recorded when the target's config does not say: GitHub's limits hold
// with one check-run update per apply every 30 s.
const defaultProgressInterval = 30 * time.Second

// progressWatcher reads how far the DDL running on one connection has got
// (MariaDB: information_schema.PROCESSLIST's STAGE, MAX_STAGE and
// PROGRESS; MySQL 8: performance_schema's current stage, whose work
// counters need the stage/innodb/alter% instruments and the
// events_stages_current consumer enabled) and reports it through a
// ProgressRecorder at most every interval.
type progressWatcher struct {
	db       *sql.DB
	fl       flavor
	connID   int64
	rec      engine.ProgressRecorder
	interval time.Duration
}

// watcher returns a progress watcher for the DDL that session s runs, or
// nil when rec does not record progress.
func (e *Engine) watcher(s *session, fl flavor, rec engine.Recorder) *progressWatcher {
	pr, ok := rec.(engine.ProgressRecorder)
	if !ok || s.id == 0 {
		return nil
	}
	return &progressWatcher{db: e.db, fl: fl, connID: s.id, rec: pr, interval: e.progressInterval}
}

// watch polls while task seq runs, until the returned stop is called.
// The first report comes one interval after the task started, and the
// percentage never goes backwards (MariaDB restarts it at a new stage).
func (w *progressWatcher) watch(ctx context.Context, seq int) (stop func()) {
	if w == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	start := time.Now()
	poll := min(max(w.interval/5, 100*time.Millisecond), 5*time.Second)
	go func() {
		defer close(done)
		tick := time.NewTicker(poll)
		defer tick.Stop()
		last, best := start, 0.0
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			stage, pct, ok := w.read(ctx)
			if !ok {
				continue
			}
			best = max(best, pct)
			if time.Since(last) < w.interval {
				continue
			}
			p := engine.Progress{Stage: stage, Percent: best}
			if best >= 1 && best < 100 {
				elapsed := time.Since(start)
				p.Remaining = time.Duration(float64(elapsed) * (100 - best) / best)
			}
			if err := w.rec.TaskProgress(ctx, seq, p); err != nil {
				return // the lease is lost: the attempt is being stopped
			}
			// The interval runs from the end of this report (which reaches
			// GitHub), so reports are always at least an interval apart.
			last = time.Now()
		}
	}()
	return func() { cancel(); <-done }
}

// read asks the server how far the connection's statement has got.
func (w *progressWatcher) read(ctx context.Context) (stage string, percent float64, ok bool) {
	if w.fl.mariadb {
		var st, maxSt sql.NullInt64
		var prog sql.NullFloat64
		var state sql.NullString
		err := w.db.QueryRowContext(ctx, `SELECT STAGE, MAX_STAGE, PROGRESS, STATE FROM information_schema.PROCESSLIST WHERE ID = ?`, w.connID).
			Scan(&st, &maxSt, &prog, &state)
		if err != nil {
			return "", 0, false
		}
		return mariadbProgress(st.Int64, maxSt.Int64, prog.Float64, state.String)
	}
	var name sql.NullString
	var done, est sql.NullInt64
	err := w.db.QueryRowContext(ctx, `SELECT s.EVENT_NAME, s.WORK_COMPLETED, s.WORK_ESTIMATED
 FROM performance_schema.events_stages_current s JOIN performance_schema.threads t ON t.THREAD_ID = s.THREAD_ID
 WHERE t.PROCESSLIST_ID = ?`, w.connID).Scan(&name, &done, &est)
	if err != nil {
		return "", 0, false
	}
	return mysqlProgress(name.String, done.Int64, est.Int64)
}

// mariadbProgress reads MariaDB's progress columns: stage of maxStage,
// progress in percent (MariaDB restarts it at some stages), and the
// thread's state as the stage's name. Before a later stage, every earlier
// one is done.
func mariadbProgress(stage, maxStage int64, progress float64, state string) (string, float64, bool) {
	if maxStage <= 0 && progress <= 0 {
		return "", 0, false
	}
	pct := progress
	if maxStage > 0 && stage > 1 {
		pct = max(pct, float64(stage-1)/float64(maxStage)*100)
	}
	return state, min(pct, 100), true
}

// mysqlProgress reads MySQL 8's current stage: its name
// ("stage/innodb/alter table (read PK and internal sort)") and work
// counters.
func mysqlProgress(event string, completed, estimated int64) (string, float64, bool) {
	if estimated <= 0 {
		return "", 0, false
	}
	name := event
	if i := strings.LastIndex(event, "/"); i >= 0 {
		name = event[i+1:]
	}
	return name, min(float64(completed)/float64(estimated)*100, 100), true
}
