package bot

import (
	"context"
	"sync"
	"time"

	"github.com/ternhq/tern/store"
)

// defaultCoalesceWindow is the least time between two progress reports of
// one running apply.
const defaultCoalesceWindow = 10 * time.Second

// coalescer spaces out the reports of a running apply's progress: each
// step of an attempt (a statement started, a statement done) would
// otherwise cost a check-run update and a comment edit, 2N writes for N
// statements, against GitHub's secondary limits on content writes. At
// most one report per apply goes out per window; a step inside the window
// arms one report at its end (which shows whatever the ledger holds
// then), and the attempt's end is reported at once by runApply, so the
// final state is never delayed or lost.
type coalescer struct {
	window time.Duration
	now    func() time.Time
	// after runs f after d and returns a function that stops it.
	after  func(d time.Duration, f func()) (stop func() bool)
	report func(ctx context.Context, a *store.Apply)

	mu     sync.Mutex
	last   map[int64]time.Time   // apply id -> when it was last reported
	timers map[int64]func() bool // apply id -> stop of its armed report
}

func newCoalescer(window time.Duration, report func(context.Context, *store.Apply)) *coalescer {
	if window == 0 {
		window = defaultCoalesceWindow
	}
	return &coalescer{
		window: window, now: time.Now, report: report,
		after: func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop },
		last:  map[int64]time.Time{}, timers: map[int64]func() bool{},
	}
}

// start records that apply id was just reported (its claim).
func (c *coalescer) start(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last[id] = c.now()
}

// step reports a's progress now, or at the end of the window that its last
// report opened.
func (c *coalescer) step(ctx context.Context, a *store.Apply) {
	if c.window < 0 || a.State.Terminal() {
		if a.State.Terminal() {
			c.done(a.ID)
		}
		c.report(ctx, a)
		return
	}
	c.mu.Lock()
	now := c.now()
	last, seen := c.last[a.ID]
	if !seen || now.Sub(last) >= c.window {
		c.last[a.ID] = now
		if stop, ok := c.timers[a.ID]; ok {
			stop()
			delete(c.timers, a.ID)
		}
		c.mu.Unlock()
		c.report(ctx, a)
		return
	}
	if _, armed := c.timers[a.ID]; !armed {
		c.timers[a.ID] = c.after(last.Add(c.window).Sub(now), func() {
			c.mu.Lock()
			if _, still := c.timers[a.ID]; !still {
				c.mu.Unlock()
				return
			}
			delete(c.timers, a.ID)
			c.last[a.ID] = c.now()
			c.mu.Unlock()
			if ctx.Err() == nil {
				c.report(ctx, a) // the report reads the apply's state as stored now
			}
		})
	}
	c.mu.Unlock()
}

// done forgets apply id at the end of its attempt, whose final state the
// caller reports itself; an armed report is dropped.
func (c *coalescer) done(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if stop, ok := c.timers[id]; ok {
		stop()
		delete(c.timers, id)
	}
	delete(c.last, id)
}
