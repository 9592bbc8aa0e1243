package plan

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ternhq/tern/internal/ddlclause"
)

// Algorithms a statement can run with. They are the values of MySQL's and
// MariaDB's ALTER TABLE ... ALGORITHM= clause, plus ONLINE for engines
// that copy rows in the background (PlanetScale deploy requests).
const (
	AlgorithmInstant = "INSTANT"
	AlgorithmInplace = "INPLACE"
	AlgorithmCopy    = "COPY"
	AlgorithmOnline  = "ONLINE"
)

// Locks a statement holds while it runs: the values of the LOCK= clause.
// NONE lets reads and writes go on; SHARED lets reads go on and makes
// writes wait; EXCLUSIVE makes both wait.
const (
	LockNone      = "NONE"
	LockShared    = "SHARED"
	LockExclusive = "EXCLUSIVE"
)

// Where a Cost's algorithm and lock come from.
const (
	// SourceServer: the target's server (or one of the same version) was
	// asked, in a shadow copy of the table, and accepted exactly this.
	SourceServer = "server"
	// SourceRules: the documented rules of the server's version (asking was
	// impossible: another server holds the shadow, or the copy refused the
	// statement for a reason unrelated to the algorithm).
	SourceRules = "rules"
	// SourceEngine: the target's engine decides (PlanetScale deploy
	// requests copy rows online and never block writes).
	SourceEngine = "engine"
)

// SeverityBlocking findings are statements that block writes to a large
// table: applying needs --allow-blocking.
const SeverityBlocking = "blocking"

// DefaultMaxBlockingRows is the default of CostOptions.MaxBlockingRows.
const DefaultMaxBlockingRows = 1_000_000

// Cost says how the target will run one statement, and what it touches.
type Cost struct {
	// Algorithm is INSTANT, INPLACE, COPY or ONLINE. A CREATE TABLE or
	// DROP TABLE copies no rows and is INSTANT.
	Algorithm string `json:"algorithm"`
	// Lock is NONE, SHARED or EXCLUSIVE: what other sessions may do to the
	// table while the statement runs (every statement also takes a short
	// exclusive metadata lock at its start and end).
	Lock string `json:"lock"`
	// RowsEstimate and BytesEstimate are the table's rows and data plus
	// index size from information_schema.TABLES: estimates (InnoDB samples
	// them). Zero for a table that does not exist yet.
	RowsEstimate  int64 `json:"rows_estimate"`
	BytesEstimate int64 `json:"bytes_estimate"`
	// Duration is an expected duration band for a statement that reads
	// the whole table ("~1-5 min"); empty for the others.
	Duration string `json:"duration_estimate,omitempty"`
	// Source says who decided Algorithm and Lock: server, rules or engine.
	Source string `json:"source"`
	// Reason is the server's (or the rule's) reason why a cheaper
	// algorithm or lock is impossible, when there is one.
	Reason string `json:"reason,omitempty"`
	// Blocking is true when the statement blocks writes to a table over
	// the target's max_blocking_rows: applying needs --allow-blocking.
	Blocking bool `json:"blocking,omitempty"`
}

// Locks reports whether the statement makes writes wait while it runs.
func (c *Cost) Locks() bool { return c.Lock == LockShared || c.Lock == LockExclusive }

// Clause is the ALGORITHM/LOCK clause that holds a server to this cost:
// ", ALGORITHM=INSTANT" or ", ALGORITHM=INPLACE, LOCK=NONE". It is empty
// when the algorithm is not one the server knows (ONLINE, unset).
func (c *Cost) Clause() string {
	return Clause(c.Algorithm, c.Lock)
}

// Clause renders the ALGORITHM/LOCK clause of an ALTER TABLE for algorithm
// and lock; "" when algorithm is not INSTANT, INPLACE or COPY.
func Clause(algorithm, lock string) string { return ddlclause.Clause(algorithm, lock) }

// CostOptions are the target's settings that judge costs.
type CostOptions struct {
	// MaxBlockingRows: a statement that makes writes wait on a table with
	// more rows than this is blocking and needs --allow-blocking. 0 means
	// every statement that makes writes wait is blocking.
	MaxBlockingRows int64
	// Online is true when the target's engine changes tables without
	// blocking writes whatever the statement (PlanetScale deploy requests):
	// every ALTER is ONLINE with no lock.
	Online bool
	// OnlineCopy, when set, is the target's online engine for the
	// statements that would otherwise block (see onlineCopy).
	OnlineCopy OnlineCopier
}

// Blocking returns the findings that need --allow-blocking.
func (p *Plan) Blocking() []Finding {
	var out []Finding
	for _, f := range p.Findings {
		if f.Severity == SeverityBlocking {
			out = append(out, f)
		}
	}
	return out
}

// Cost fills in the cost of each of pl's statements and adds a blocking
// finding for each statement that blocks writes to a table over
// opts.MaxBlockingRows. live is the pool on the live schema; shadow the
// pool on the shadow server. When the shadow server runs the same version
// as the live one, each ALTER is tried in a shadow copy of its table with
// ever weaker ALGORITHM/LOCK clauses (INSTANT; INPLACE with LOCK=NONE,
// SHARED, EXCLUSIVE; COPY with SHARED, EXCLUSIVE): the server refuses a
// clause it cannot honour without changing anything, so the first it
// accepts is how it runs the statement. Otherwise the documented rules of
// the live server's version decide. The shadow copy is dropped before Cost
// returns.
func (p *Planner) Cost(ctx context.Context, pl *Plan, live, shadow *sql.DB, opts CostOptions) error {
	return p.cost(ctx, pl, live, shadow, opts, nil)
}

// PlanAndCost is Plan followed by Cost, sooner: the shadow copies of the
// live tables that Cost asks the server about are loaded while the plan
// is diffed and ordered. Both shadow schemas are dropped before it
// returns.
func (p *Planner) PlanAndCost(ctx context.Context, d *Desired, live, shadow *sql.DB, opts CostOptions) (_ *Plan, err error) {
	var cc *costCopy
	if !opts.Online && shadow != nil {
		same, err := sameVersion(ctx, live, shadow)
		if err != nil {
			return nil, err
		}
		if same {
			if cc, err = p.newCostCopy(ctx, shadow); err != nil {
				return nil, err
			}
			defer func() {
				if derr := cc.drop(); derr != nil && err == nil {
					err = derr
				}
			}()
		}
	}
	pl, err := p.plan(ctx, d, live, shadow, cc)
	if err != nil {
		return nil, err
	}
	if err := p.cost(ctx, pl, live, shadow, opts, cc); err != nil {
		return nil, err
	}
	return pl, nil
}

// sameVersion reports whether the live and shadow servers run the same
// version: only then does the shadow's answer stand for the target's.
func sameVersion(ctx context.Context, live, shadow *sql.DB) (bool, error) {
	var lv, sv string
	if err := live.QueryRowContext(ctx, "SELECT VERSION()").Scan(&lv); err != nil {
		return false, fmt.Errorf("cost: read the live server's version: %w", err)
	}
	if err := shadow.QueryRowContext(ctx, "SELECT VERSION()").Scan(&sv); err != nil {
		return false, fmt.Errorf("cost: read the shadow server's version: %w", err)
	}
	return lv == sv, nil
}

// cost is Cost, asking in cc's copy when cc is not nil.
func (p *Planner) cost(ctx context.Context, pl *Plan, live, shadow *sql.DB, opts CostOptions, cc *costCopy) error {
	if pl == nil || !pl.HasChanges() {
		return nil
	}
	start := time.Now()
	defer func() {
		p.logger().Info("costed", "statements", len(pl.Statements), "blocking", len(pl.Blocking()), "elapsed", time.Since(start).Round(time.Millisecond))
	}()
	sizes, err := tableSizes(ctx, live, costTables(pl.Statements))
	if err != nil {
		return err
	}
	var liveVersion, shadowVersion string
	if pl.live != nil {
		liveVersion = pl.live.version
	} else if err := live.QueryRowContext(ctx, "SELECT VERSION()").Scan(&liveVersion); err != nil {
		return fmt.Errorf("cost: read the live server's version: %w", err)
	}
	srv := parseServer(liveVersion)
	costs := make([]*Cost, len(pl.Statements))
	switch {
	case opts.Online:
		for i, s := range pl.Statements {
			c := &Cost{Algorithm: AlgorithmOnline, Lock: LockNone, Source: SourceEngine}
			if s.Kind != KindAlter {
				c.Algorithm = AlgorithmInstant
			}
			costs[i] = c
		}
	default:
		if shadow != nil {
			if err := shadow.QueryRowContext(ctx, "SELECT VERSION()").Scan(&shadowVersion); err != nil {
				return fmt.Errorf("cost: read the shadow server's version: %w", err)
			}
		}
		defs, err := p.costDefs(ctx, live, pl.live, pl.Statements, sizes)
		if err != nil {
			return err
		}
		if shadow != nil && shadowVersion == liveVersion {
			costs, err = p.askServer(ctx, shadow, srv.mariadb, pl.Statements, defs, cc)
			if err != nil {
				return err
			}
		}
		for i, s := range pl.Statements {
			if costs[i] == nil {
				costs[i] = ruleCost(srv, s, defs[s.Table])
			}
		}
	}
	for i := range pl.Statements {
		c := costs[i]
		st := &pl.Statements[i]
		if sz, ok := sizes[st.Table]; ok && st.Kind != KindCreate {
			c.RowsEstimate, c.BytesEstimate = sz.rows, sz.bytes
		}
		if st.Kind == KindAlter && c.Algorithm != AlgorithmInstant && c.Algorithm != AlgorithmOnline {
			c.Duration = durationBand(c.RowsEstimate, c.BytesEstimate)
		}
		if err := onlineCopy(ctx, opts, *st, c); err != nil {
			return err
		}
		if st.Kind == KindAlter && c.Locks() && (opts.MaxBlockingRows <= 0 || c.RowsEstimate > opts.MaxBlockingRows) {
			c.Blocking = true
			pl.Findings = append(pl.Findings, Finding{Severity: SeverityBlocking, Table: st.Table, Statement: i,
				Message: blockingMessage(c, opts.MaxBlockingRows)})
		}
		st.Cost = c
	}
	explainOnlineRefusals(pl)
	return nil
}

func blockingMessage(c *Cost, max int64) string {
	waits := "writes to the table wait"
	if c.Lock == LockExclusive {
		waits = "reads and writes of the table wait"
	}
	msg := fmt.Sprintf("runs as ALGORITHM=%s, LOCK=%s on ~%s rows (~%s, estimates): %s until it ends", c.Algorithm, c.Lock,
		Count(c.RowsEstimate), Bytes(c.BytesEstimate), waits)
	if c.Duration != "" {
		msg += " (" + c.Duration + ")"
	}
	if max > 0 {
		msg += fmt.Sprintf("; the target allows a blocking change on at most %s rows", Count(max))
	} else {
		msg += "; the target allows no blocking change"
	}
	return msg
}

type tableSize struct{ rows, bytes int64 }

// tableSizes reads the estimated rows and bytes of the live schema's
// tables among names from information_schema.TABLES (naming them lets the
// server open only those).
func tableSizes(ctx context.Context, live *sql.DB, names []string) (map[string]tableSize, error) {
	out := map[string]tableSize{}
	for len(names) > 0 {
		batch := names[:min(len(names), 1000)]
		names = names[len(batch):]
		args := make([]any, len(batch))
		for i, n := range batch {
			args[i] = n
		}
		rows, err := live.QueryContext(ctx, `SELECT TABLE_NAME, COALESCE(TABLE_ROWS, 0), COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0)
 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'
 AND TABLE_NAME IN (?`+strings.Repeat(", ?", len(batch)-1)+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("cost: read table sizes: %w", err)
		}
		for rows.Next() {
			var name string
			var sz tableSize
			if err := rows.Scan(&name, &sz.rows, &sz.bytes); err != nil {
				rows.Close()
				return nil, fmt.Errorf("cost: read table sizes: %w", err)
			}
			out[name] = sz
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("cost: read table sizes: %w", err)
		}
	}
	return out, nil
}

// costTables returns the tables the statements name or reference, sorted.
func costTables(stmts []Statement) []string {
	want := map[string]string{}
	for _, s := range stmts {
		want[s.Table] = ""
		for _, t := range referencedNames(s.DDL) {
			want[t] = ""
		}
	}
	return sortedKeys(want)
}

// costDefs returns the live definitions of the tables the statements
// alter, and of the tables the ALTERs' new foreign keys reference, so that the
// shadow copy checks what the live server checks: as the plan read them
// (ls), or read now for a plan that carries none. (The parents of a
// table's existing foreign keys are not needed: the server alters a table
// whose parent is missing as it would otherwise.) A table missing from
// sizes is no live table.
func (p *Planner) costDefs(ctx context.Context, live *sql.DB, ls *liveSchema, stmts []Statement, sizes map[string]tableSize) (map[string]string, error) {
	want := map[string]string{}
	for _, s := range stmts {
		if s.Kind != KindAlter {
			continue // a CREATE or DROP is not asked about
		}
		want[s.Table] = ""
		for _, t := range referencedNames(s.DDL) {
			want[t] = ""
		}
	}
	var names []string
	for _, n := range sortedKeys(want) {
		if _, ok := sizes[n]; ok {
			names = append(names, n)
		}
	}
	if ls != nil {
		defs := make(map[string]string, len(names))
		for _, n := range names {
			if def, ok := ls.raw[n]; ok {
				defs[n] = def
			}
		}
		if len(defs) == len(names) {
			return defs, nil
		}
	}
	defs, err := showCreateTables(ctx, live, "", names, p.conns())
	if err != nil {
		return nil, fmt.Errorf("cost: %w", err)
	}
	return defs, nil
}

// RefusedAlgorithm reports whether err is the server refusing an
// ALGORITHM/LOCK clause it cannot honour (1845, 1846), and its reason.
func RefusedAlgorithm(err error) (reason string, ok bool) { return ddlclause.Refused(err) }

// server is the flavour and version of a server, for the rules.
type server struct {
	mariadb             bool
	major, minor, patch int
}

var fullVersionRE = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)`)

// parseServer reads a VERSION() string such as "8.0.36" or
// "10.11.6-MariaDB-0+deb12u1".
func parseServer(v string) server {
	s := server{mariadb: strings.Contains(strings.ToLower(v), "mariadb")}
	m := fullVersionRE.FindStringSubmatch(strings.TrimPrefix(v, "5.5.5-"))
	if m != nil {
		s.major, _ = strconv.Atoi(m[1])
		s.minor, _ = strconv.Atoi(m[2])
		s.patch, _ = strconv.Atoi(m[3])
	}
	return s
}

// atLeast reports whether the server's version is at least major.minor.patch.
func (s server) atLeast(major, minor, patch int) bool {
	if s.major != major {
		return s.major > major
	}
	if s.minor != minor {
		return s.minor > minor
	}
	return s.patch >= patch
}

// durationBand is an expected duration band for a statement that reads
// and writes the whole table: between a fast (60 MB/s, 300k rows/s) and a
// slow (8 MB/s, 30k rows/s) pace, whichever of rows and bytes says longer.
// BENCHMARKS.md has the pace measured here.
func durationBand(rows, bytes int64) string {
	if rows <= 0 && bytes <= 0 {
		return "~instant (empty table)"
	}
	fast := max(time.Duration(float64(bytes)/60e6*float64(time.Second)), time.Duration(float64(rows)/300e3*float64(time.Second)))
	slow := max(time.Duration(float64(bytes)/8e6*float64(time.Second)), time.Duration(float64(rows)/30e3*float64(time.Second)))
	lo, hi := roughDuration(fast), roughDuration(slow)
	if hi == "<1 s" {
		return hi
	}
	if lo == hi {
		return "~" + hi
	}
	return "~" + lo + " to " + hi
}

// roughDuration renders d in one rounded unit: "<1 s", "40 s", "3 min",
// "2 h".
func roughDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "<1 s"
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()+0.5))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()+0.5))
	}
	return fmt.Sprintf("%d h", int(d.Hours()+0.5))
}

// Count renders n with thousands separators: 1,234,567.
func Count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// Bytes renders n bytes in binary units: "16 KiB", "1.5 GiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	f := "%.1f %ciB"
	if v >= 10 {
		f = "%.0f %ciB"
	}
	return fmt.Sprintf(f, v, "KMGTPE"[exp])
}
