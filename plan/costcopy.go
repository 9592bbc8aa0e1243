package plan

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// costCopy is the shadow schema that holds the copies of live tables Cost
// asks the server about. Its tables load in the background (load), each
// is asked about as soon as it and its foreign-key neighbours are in
// (await), and each is dropped as soon as no question left can meet it
// (release): loading, asking and dropping overlap, and what the schema
// still holds at the end is dropped with it (drop). PlanAndCost starts
// loading the tables the plan changes while the plan is diffed and
// ordered.
type costCopy struct {
	name   string
	shadow *sql.DB
	// ctx outlives the plan's own deadline: the load goes on after the
	// plan returns.
	ctx   context.Context
	p     *Planner
	loads sync.WaitGroup

	mu     sync.Mutex
	tables map[string]*copied
	err    error       // the first load error
	drops  chan string // to the dropper; nil until the first release
	idle   chan struct{}
	// planDropped waits for the drop of the plan's own shadow schema
	// (started by the plan), when the plan left that wait to drop.
	planDropped func() error
}

// copied is one table of a cost copy.
type copied struct {
	sql   string
	seq   int           // load order
	ready chan struct{} // closed once it is loaded or its load failed
	ok    bool          // loaded
}

// copyError is a failed load of a cost copy: the question is asked again
// in a fresh copy, and if that fails too, this is the error.
type copyError struct{ err error }

func (e *copyError) Error() string { return "cost: copy the tables into the shadow: " + e.err.Error() }
func (e *copyError) Unwrap() error { return e.err }

// newCostCopy creates an empty shadow schema for a cost copy.
func (p *Planner) newCostCopy(ctx context.Context, shadow *sql.DB) (*costCopy, error) {
	name, err := shadowName(time.Now())
	if err != nil {
		return nil, err
	}
	if _, err := shadow.ExecContext(ctx, "CREATE DATABASE "+quoteIdent(name)); err != nil {
		return nil, fmt.Errorf("cost: create shadow schema %s: %w", name, err)
	}
	return &costCopy{name: name, shadow: shadow, ctx: ctx, p: p, tables: map[string]*copied{}}, nil
}

// load starts loading the tables the copy does not have yet, in order, in
// the background.
func (c *costCopy) load(tables []Table) {
	c.mu.Lock()
	var batch []Table
	for _, t := range tables {
		if _, ok := c.tables[t.Name]; ok {
			continue
		}
		c.tables[t.Name] = &copied{sql: t.SQL, seq: len(c.tables), ready: make(chan struct{})}
		batch = append(batch, t)
	}
	c.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	c.loads.Add(1)
	go func() {
		defer c.loads.Done()
		err := loadShadowEach(c.ctx, c.shadow, c.name, batch, c.p.conns(), func(ctx, qctx context.Context, conn *sql.Conn, t Table) error {
			if err := createTable(ctx, qctx, conn, t); err != nil {
				return err
			}
			c.mu.Lock()
			e := c.tables[t.Name]
			e.ok = true
			close(e.ready)
			c.mu.Unlock()
			return nil
		})
		c.mu.Lock()
		defer c.mu.Unlock()
		if err != nil && c.err == nil {
			c.err = err
		}
		for _, t := range batch {
			if e := c.tables[t.Name]; !e.ok {
				close(e.ready)
			}
		}
	}()
}

// has reports whether the copy holds, or is loading, table.
func (c *costCopy) has(table string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.tables[table]
	return ok
}

// seq returns the place of table in the load order; tables the copy does
// not hold come last.
func (c *costCopy) seq(table string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.tables[table]; ok {
		return e.seq
	}
	return int(^uint(0) >> 1)
}

// neighbours returns, for each table of the copy, the other tables of the
// copy a foreign key joins it to, either way, by the definitions loaded
// and the statements in stmts (which may add foreign keys).
func (c *costCopy) neighbours(stmts []Statement) map[string][]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	set := map[string]map[string]bool{}
	link := func(a, b string) {
		if a == b {
			return
		}
		if _, ok := c.tables[a]; !ok {
			return
		}
		if _, ok := c.tables[b]; !ok {
			return
		}
		for _, e := range [][2]string{{a, b}, {b, a}} {
			if set[e[0]] == nil {
				set[e[0]] = map[string]bool{}
			}
			set[e[0]][e[1]] = true
		}
	}
	for name, e := range c.tables {
		for _, ref := range referencedNames(e.sql) {
			link(name, ref)
		}
	}
	for _, s := range stmts {
		for _, ref := range referencedNames(s.DDL) {
			link(s.Table, ref)
		}
	}
	out := make(map[string][]string, len(set))
	for name, nb := range set {
		for n := range nb {
			out[name] = append(out[name], n)
		}
	}
	return out
}

// await waits until the copy holds every one of tables it loads; a
// *copyError if a load failed first.
func (c *costCopy) await(ctx context.Context, tables ...string) error {
	for _, t := range tables {
		c.mu.Lock()
		e, ok := c.tables[t]
		c.mu.Unlock()
		if !ok {
			continue
		}
		select {
		case <-e.ready:
		case <-ctx.Done():
			return fmt.Errorf("cost: %w", ctx.Err())
		}
		c.mu.Lock()
		loaded, err := e.ok, c.err
		c.mu.Unlock()
		if !loaded {
			return &copyError{err}
		}
	}
	return nil
}

// release drops table from the copy in the background: no question left
// can meet it. A failed drop is logged and left to drop.
func (c *costCopy) release(table string) {
	c.mu.Lock()
	if c.drops == nil {
		c.drops = make(chan string, len(c.tables))
		c.idle = make(chan struct{})
		go c.dropper(c.drops, c.idle)
	}
	drops := c.drops
	c.mu.Unlock()
	drops <- table
}

// dropper drops the tables it receives, on one connection of its own
// with foreign key checks off (a parent may go before its children), until
// drops is closed.
func (c *costCopy) dropper(drops <-chan string, idle chan<- struct{}) {
	defer close(idle)
	// Not the plan's context: the drops go on after it ends, as drop's.
	conn, qctx, discard, err := loadConn(context.WithoutCancel(c.ctx), c.shadow, c.name)
	if err == nil {
		defer discard()
	}
	for t := range drops {
		if err != nil {
			continue // drop takes them with the schema
		}
		ctx, cancel := context.WithTimeout(qctx, time.Minute)
		_, err = conn.ExecContext(ctx, "DROP TABLE IF EXISTS "+quoteIdent(t))
		cancel()
		if err != nil {
			// The connection may be gone: the rest go with the schema.
			c.p.logger().Info("cost: drop a table of the shadow copy early; it goes with the schema", "table", t, "err", err)
		}
	}
}

// settle waits for the loads and the early drops to end.
func (c *costCopy) settle() {
	c.loads.Wait()
	c.mu.Lock()
	drops, idle := c.drops, c.idle
	c.drops = nil
	c.mu.Unlock()
	if drops != nil {
		close(drops)
		<-idle
	}
}

// drop waits for the loads and the early drops, then drops the schema,
// with a context of its own so that a cancelled plan still cleans up;
// then it waits for the drop of the plan's shadow schema, if the plan left
// that to it.
func (c *costCopy) drop() error {
	c.settle()
	dctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), time.Minute)
	defer cancel()
	var err error
	if _, derr := c.shadow.ExecContext(dctx, "DROP DATABASE IF EXISTS "+quoteIdent(c.name)); derr != nil {
		c.p.logger().Error("drop shadow schema", "schema", c.name, "err", derr)
		err = fmt.Errorf("cost: drop shadow schema %s: %w", c.name, derr)
	}
	if c.planDropped != nil {
		if derr := c.planDropped(); derr != nil && err == nil {
			err = derr
		}
		c.planDropped = nil
	}
	return err
}

// isCopyError reports whether err is a failed load of a cost copy.
func isCopyError(err error) bool {
	var ce *copyError
	return errors.As(err, &ce)
}
