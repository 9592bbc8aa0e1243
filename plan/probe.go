package plan

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/go-sql-driver/mysql"

	"github.com/ternhq/tern/internal/ddlclause"
)

// probes are the clauses tried, cheapest first.
var probes = []struct{ algorithm, lock string }{
	{AlgorithmInstant, ""},
	{AlgorithmInplace, LockNone},
	{AlgorithmInplace, LockShared},
	{AlgorithmInplace, LockExclusive},
	{AlgorithmCopy, LockShared},
	{AlgorithmCopy, LockExclusive},
}

// errLockWaitTimeout is ER_LOCK_WAIT_TIMEOUT: a statement gave up waiting
// for a lock.
const errLockWaitTimeout = 1205

// asker asks a shadow server how it would run ALTERs, in a shadow copy of
// the live tables.
type asker struct {
	p      *Planner
	shadow *sql.DB
	schema string
	// mariadb: the shadow server is MariaDB. Its probe for INSTANT carries
	// LOCK=NONE, because MariaDB 10.11 takes ALGORITHM=INSTANT (and
	// NOCOPY) on a partitioning change and then copies the table; with
	// LOCK=NONE it refuses that as it should. And the last ALTER of each
	// table is asked without being run (see probeUnrun).
	mariadb bool
}

// askServer copies the live tables defs into a fresh shadow schema, with
// the plan's new tables that the ALTERs' foreign keys reference, and asks
// the server there for each ALTER's cheapest ALGORITHM/LOCK clause it
// accepts. The ALTERs of one table are asked in plan order on one
// connection, each but the last run for real so that the next one meets
// the table it will meet on the target; different tables' are asked in
// parallel over the planner's connections. A statement the copy refuses
// for another reason gets a nil cost (the rules decide it). CREATE and
// DROP TABLE copy no rows: they are INSTANT without asking. mariadb says
// the shadow server is MariaDB. cc, when not nil, is a copy PlanAndCost
// loaded meanwhile (the caller drops it); what it lacks is copied now.
func (p *Planner) askServer(ctx context.Context, shadow *sql.DB, mariadb bool, stmts []Statement, defs map[string]string, cc *costCopy) (_ []*Cost, err error) {
	costs := make([]*Cost, len(stmts))
	groups := map[string][]int{}
	var order []string
	referenced := map[string]bool{}
	for i, s := range stmts {
		switch s.Kind {
		case KindAlter:
			if _, ok := groups[s.Table]; !ok {
				order = append(order, s.Table)
			}
			groups[s.Table] = append(groups[s.Table], i)
			for _, t := range referencedNames(s.DDL) {
				referenced[t] = true
			}
		default:
			costs[i] = &Cost{Algorithm: AlgorithmInstant, Lock: LockNone, Source: SourceServer}
		}
	}
	if len(order) == 0 {
		return costs, nil
	}
	if cc != nil {
		out, err := p.askIn(ctx, cc, mariadb, stmts, groups, order, referenced, defs, slices.Clone(costs))
		if !isCopyError(err) {
			return out, err
		}
		// The preload failed: ask again in a fresh copy.
	}
	if cc, err = p.newCostCopy(ctx, shadow); err != nil {
		return nil, err
	}
	defer func() {
		if derr := cc.drop(); derr != nil && err == nil {
			err = derr
		}
	}()
	return p.askIn(ctx, cc, mariadb, stmts, groups, order, referenced, defs, costs)
}

// askIn is askServer in the copy cc: it loads what cc lacks, then asks
// about each table's ALTERs as soon as the table and its foreign-key
// neighbours are in, tables in the order they load, and drops each table
// once every table joined to it has been asked about.
func (p *Planner) askIn(ctx context.Context, cc *costCopy, mariadb bool, stmts []Statement, groups map[string][]int, order []string, referenced map[string]bool, defs map[string]string, costs []*Cost) ([]*Cost, error) {
	var load []Table
	for _, t := range sortedKeys(defs) {
		if !cc.has(t) {
			load = append(load, Table{Name: t, File: "live", SQL: defs[t]})
		}
	}
	for _, s := range stmts {
		if s.Kind == KindCreate && referenced[s.Table] && !cc.has(s.Table) {
			load = append(load, Table{Name: s.Table, File: "plan", SQL: s.DDL})
		}
	}
	cc.load(load)
	order = slices.Clone(order)
	sort.SliceStable(order, func(i, j int) bool { return cc.seq(order[i]) < cc.seq(order[j]) })
	nb := cc.neighbours(stmts)
	// users counts, for each table, the tables not yet asked about that
	// may meet it: itself and its neighbours.
	var mu sync.Mutex
	users := map[string]int{}
	for _, t := range order {
		users[t]++
		for _, n := range nb[t] {
			users[n]++
		}
	}
	asked := func(t string) {
		mu.Lock()
		var free []string
		for _, n := range append([]string{t}, nb[t]...) {
			if users[n]--; users[n] == 0 {
				free = append(free, n)
			}
		}
		mu.Unlock()
		for _, n := range free {
			cc.release(n)
		}
	}
	a := &asker{p: p, shadow: cc.shadow, schema: cc.name, mariadb: mariadb}
	work := make(chan string, len(order))
	for _, t := range order {
		work <- t
	}
	close(work)
	// The first worker to fail stops the others; its error is the one to
	// report (theirs only say they were stopped), unless a copy failed.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		first, copyErr error
		wg             sync.WaitGroup
	)
	for range min(p.conns(), len(order)) {
		wg.Go(func() {
			err := a.worker(ctx, stmts, groups, work, costs, func(t string) error {
				return cc.await(ctx, append([]string{t}, nb[t]...)...)
			}, asked)
			if err == nil {
				return
			}
			mu.Lock()
			if isCopyError(err) && copyErr == nil {
				copyErr = err
			}
			if first == nil {
				first = err
			}
			mu.Unlock()
			cancel()
		})
	}
	wg.Wait()
	if copyErr != nil {
		return nil, copyErr
	}
	if first != nil {
		return nil, first
	}
	return costs, nil
}

// referencedNames returns the tables ddl's foreign keys reference (for
// a reference to another schema, that schema's name): the backquoted name
// after each REFERENCES, in any case. It scans the text without a
// regexp or a lowered copy: it runs on every live definition of a plan.
func referencedNames(ddl string) []string {
	const word = "references"
	var out []string
	for i := 0; i+len(word) <= len(ddl); i++ {
		if ddl[i]|0x20 != 'r' || !strings.EqualFold(ddl[i:i+len(word)], word) {
			continue
		}
		j := i + len(word)
		k := j
		for k < len(ddl) && (ddl[k] == ' ' || ddl[k] == '\t' || ddl[k] == '\n' || ddl[k] == '\r') {
			k++
		}
		if k == j || k >= len(ddl) || ddl[k] != '`' {
			continue
		}
		var name strings.Builder
		for k++; k < len(ddl); k++ {
			if ddl[k] == '`' {
				if k+1 < len(ddl) && ddl[k+1] == '`' {
					name.WriteByte('`')
					k++
					continue
				}
				break
			}
			name.WriteByte(ddl[k])
		}
		if k < len(ddl) && name.Len() > 0 {
			out = append(out, name.String())
		}
		i = k
	}
	return out
}

// session opens a quiet connection (quietConn) of the shadow pool in the
// shadow schema with the given session settings. close discards it
// afterwards: it carries USE and the settings.
func (a *asker) session(ctx context.Context, settings ...string) (conn *sql.Conn, qctx context.Context, close func(), err error) {
	conn, qctx, done, err := quietConn(ctx, a.shadow)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("cost: %w", err)
	}
	close = func() { done(true) }
	for _, q := range append([]string{"USE " + quoteIdent(a.schema)}, settings...) {
		if _, err := conn.ExecContext(qctx, q); err != nil {
			close()
			return nil, nil, nil, fmt.Errorf("cost: %w", quietErr(ctx, err))
		}
	}
	return conn, qctx, close, nil
}

// worker asks about the ALTERs of the tables it takes from work on a
// connection of its own (and, on MariaDB, a second one that holds the
// tables' metadata locks).
//
// Before a table, await waits until the copy holds what its questions may
// meet; after it, asked lets those tables go.
func (a *asker) worker(ctx context.Context, stmts []Statement, groups map[string][]int, work <-chan string, costs []*Cost, await func(table string) error, asked func(table string)) error {
	// The apply runs with foreign key checks on, and they change what the
	// server can do in place (adding a foreign key).
	conn, qctx, closeConn, err := a.session(ctx, "SET SESSION foreign_key_checks = 1")
	if err != nil {
		return err
	}
	defer closeConn()
	var holder *sql.Conn
	if a.mariadb {
		h, _, closeHolder, err := a.session(ctx, "START TRANSACTION")
		if err != nil {
			return err
		}
		defer closeHolder()
		holder = h
	}
	// The probes run with qctx; a probe that ends as ctx does was killed
	// for it, whatever it says.
	for table := range work {
		if err := await(table); err != nil {
			return err
		}
		group := groups[table]
		for j, i := range group {
			var c *Cost
			var err error
			// A statement that references other tables is run: its
			// locks on them must not meet another worker's holder.
			if holder != nil && j == len(group)-1 && len(referencedNames(stmts[i].DDL)) == 0 {
				c, err = a.probeUnrun(qctx, conn, holder, stmts[i])
			} else {
				c, err = a.probe(qctx, conn, stmts[i], false)
			}
			if ctx.Err() != nil {
				return fmt.Errorf("cost: %w", ctx.Err())
			}
			if err != nil {
				return err
			}
			costs[i] = c
		}
		asked(table)
	}
	return nil
}

// probeUnrun asks about the ALTER s without running it. holder, a
// connection inside a transaction, reads the table, and so holds a shared
// metadata lock on it; the ALTER, run with lock_wait_timeout 0 (MariaDB's
// SET STATEMENT), then stops with error 1205 where it would first take
// the table for itself: after the server checked its ALGORITHM/LOCK
// clause (a clause it cannot honour is refused before that, with 1845 or
// 1846), before anything changed. So 1205 means the clause is accepted.
// ROLLBACK AND CHAIN then lets the table go and leaves holder in a new
// transaction for the next table. (tests: TestProbeUnrunMatchesRun)
func (a *asker) probeUnrun(ctx context.Context, conn, holder *sql.Conn, s Statement) (_ *Cost, err error) {
	defer func() {
		if _, rerr := holder.ExecContext(context.WithoutCancel(ctx), "ROLLBACK AND CHAIN"); rerr != nil && err == nil {
			err = fmt.Errorf("cost: %w", rerr)
		}
	}()
	if _, err := holder.ExecContext(ctx, "SELECT 1 FROM "+quoteIdent(s.Table)+" LIMIT 0"); err != nil {
		return nil, fmt.Errorf("cost: hold %s: %w", s.Table, err)
	}
	return a.probe(ctx, conn, s, true)
}

// probe runs one ALTER with ever weaker clauses until the server accepts
// one: the statement runs, or, unrun, gives up waiting for the table's
// metadata lock (see probeUnrun). It returns nil (the rules decide) when
// the server refuses the statement for a reason other than its clause.
func (a *asker) probe(ctx context.Context, conn *sql.Conn, s Statement, unrun bool) (*Cost, error) {
	ddl := strings.TrimRight(strings.TrimSpace(s.DDL), "; \t\r\n")
	var reason string
	var skip string // an algorithm the server said it cannot use
	for _, pr := range probes {
		if pr.algorithm == skip {
			continue
		}
		clause := ddlclause.Clause(pr.algorithm, pr.lock)
		if pr.algorithm == AlgorithmInstant && a.mariadb {
			clause += ", LOCK=NONE" // MySQL refuses LOCK beside INSTANT
		}
		q := ddlclause.Insert(ddl, clause)
		if unrun {
			q = "SET STATEMENT lock_wait_timeout = 0 FOR " + q
		}
		_, err := conn.ExecContext(ctx, q)
		var me *mysql.MySQLError
		if err == nil || (unrun && errors.As(err, &me) && me.Number == errLockWaitTimeout) {
			c := &Cost{Algorithm: pr.algorithm, Lock: pr.lock, Source: SourceServer, Reason: reason}
			if pr.algorithm == AlgorithmInstant {
				c.Lock = LockNone
			}
			return c, nil
		}
		if why, ok := ddlclause.Refused(err); ok {
			if reason == "" {
				reason = why
			}
			if skipInplace(pr.algorithm, err) {
				skip = AlgorithmInplace
			}
			continue
		}
		if !isServerError(err) {
			return nil, fmt.Errorf("cost: %w", err)
		}
		a.p.logger().Info("cost: the shadow copy refused a statement; the rules decide its cost", "table", s.Table, "err", err)
		return nil, nil
	}
	return nil, nil
}

// skipInplace reports whether the server's refusal err of a probe with
// algorithm says that no INPLACE clause can work, whatever its LOCK:
// MariaDB answers "ALGORITHM=INPLACE is not supported" for the algorithm
// itself (its LOCK refusals begin "LOCK="), and refuses INSTANT with "Try
// ALGORITHM=COPY" when INPLACE is not supported either. Skipping them
// changes no answer (TestProbeUnrunMatchesRun scans every clause too).
func skipInplace(algorithm string, err error) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch algorithm {
	case AlgorithmInstant:
		return strings.HasSuffix(strings.TrimSuffix(me.Message, "."), "Try ALGORITHM=COPY")
	case AlgorithmInplace:
		return strings.HasPrefix(me.Message, "ALGORITHM=INPLACE is not supported")
	}
	return false
}
