// Command benchscale times `tern plan` against `skeema diff` on the
// workloads of testdata/bench/gen.go, on the same server in the same run:
// for each point (live tables / changed tables, plus 20 new) it generates
// live and desired schemas, loads live into a fresh database, then runs
// the two planners alternately (which goes first alternates too) and
// prints the medians, the spread of the runs and the ratio of the medians
// as a BENCHMARKS.md row.
//
//	go run ./cmd/benchscale -skeema /tmp/skeema-bin/skeema [-runs 5] [-points 500/50,5000/500] [-before OLD_TERN]
//
// Skeema is not part of tern: build it from its public source first (see
// BENCHMARKS.md). The tern binary is built from this checkout unless -tern
// names one. Nothing here runs in the test suite.
package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
)

// livePrefix starts the name of the live database each point loads.
const livePrefix = "tern_benchscale_"

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchscale:", err)
		os.Exit(1)
	}
}

// options are benchscale's flags.
type options struct {
	dsn, work, tern, skeema, gen string
	// before is another tern binary (an older commit) timed in the same
	// runs, or "".
	before string
	points []point
	runs   int
}

// point is one workload: tables live, changes of them altered.
type point struct{ tables, changes int }

func (p point) String() string { return fmt.Sprintf("%d/%d", p.tables, p.changes) }

func parsePoints(s string) ([]point, error) {
	var out []point
	for _, f := range strings.Split(s, ",") {
		a, b, ok := strings.Cut(strings.TrimSpace(f), "/")
		n, err1 := strconv.Atoi(a)
		m, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || n <= 0 || m < 0 || m > n {
			return nil, fmt.Errorf("-points: %q is not TABLES/CHANGES", f)
		}
		out = append(out, point{n, m})
	}
	return out, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("benchscale", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var points string
	fs.StringVar(&o.dsn, "dsn", "root@tcp(127.0.0.1:3306)/", "go-sql-driver `DSN` of the server both planners use (no database)")
	fs.StringVar(&o.work, "work", filepath.Join(os.TempDir(), "tern-benchscale"), "`DIR` for the workloads and configs")
	fs.StringVar(&o.tern, "tern", "", "tern `BINARY`; default: built from this checkout into -work")
	fs.StringVar(&o.skeema, "skeema", "", "skeema `BINARY` (required)")
	fs.StringVar(&o.before, "before", "", "another tern `BINARY` (say, an older commit) to time in the same runs")
	fs.StringVar(&o.gen, "gen", "testdata/bench/gen.go", "the workload generator")
	fs.StringVar(&points, "points", "500/50,2000/5,2000/200,5000/5,5000/500", "workloads as TABLES/CHANGES, comma-separated")
	fs.IntVar(&o.runs, "runs", 5, "timed runs of each planner per point (after one untimed warm-up run each)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.points, err = parsePoints(points); err != nil {
		return err
	}
	if o.skeema == "" {
		return errors.New("-skeema BINARY is required (build Skeema from its public source: see BENCHMARKS.md)")
	}
	if o.runs < 1 {
		return errors.New("-runs must be at least 1")
	}
	if err := os.MkdirAll(o.work, 0o755); err != nil {
		return err
	}
	if o.tern == "" {
		o.tern = filepath.Join(o.work, "tern")
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", o.tern, "./cmd/tern").CombinedOutput(); err != nil {
			return fmt.Errorf("build tern: %v: %s", err, out)
		}
	}
	sv, err := exec.CommandContext(ctx, o.skeema, "version").Output()
	if err != nil {
		return fmt.Errorf("skeema version: %w", err)
	}
	fmt.Fprintf(stdout, "skeema: %s", sv)
	fmt.Fprintln(stdout, "| point | tern wall median (min-max) | tern CPU median | skeema wall median (min-max) | ratio of medians (per-run range) | before: wall, CPU |")
	fmt.Fprintln(stdout, "|---|---|---|---|---|---|")
	for _, p := range o.points {
		r, err := benchPoint(ctx, o, p, stderr)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		fmt.Fprintln(stdout, r.row(p))
	}
	return nil
}

// result holds the timed runs of one point.
type result struct {
	ternWall, ternCPU, skeemaWall, beforeWall, beforeCPU []time.Duration
}

func (r result) row(p point) string {
	var ratios []float64
	for i := range r.ternWall {
		ratios = append(ratios, r.ternWall[i].Seconds()/r.skeemaWall[i].Seconds())
	}
	slices.Sort(ratios)
	before := "—"
	if len(r.beforeWall) > 0 {
		before = fmt.Sprintf("%s, %.2f s", spread(r.beforeWall), median(r.beforeCPU).Seconds())
	}
	return fmt.Sprintf("| %s | %s | %.2f s | %s | %.2fx (%.2f-%.2fx) | %s |", p, spread(r.ternWall), median(r.ternCPU).Seconds(),
		spread(r.skeemaWall), median(r.ternWall).Seconds()/median(r.skeemaWall).Seconds(), ratios[0], ratios[len(ratios)-1], before)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func spread(ds []time.Duration) string {
	return fmt.Sprintf("%.2f s (%.2f-%.2f)", median(ds).Seconds(), slices.Min(ds).Seconds(), slices.Max(ds).Seconds())
}

// benchPoint prepares one workload and times both planners on it.
func benchPoint(ctx context.Context, o options, p point, log io.Writer) (result, error) {
	dir := filepath.Join(o.work, fmt.Sprintf("s%d_%d", p.tables, p.changes))
	if _, err := os.Stat(filepath.Join(dir, "live.sql")); err != nil {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return result{}, err
		}
		gen := exec.CommandContext(ctx, "go", "run", filepath.Base(o.gen), "-out", abs,
			"-tables", strconv.Itoa(p.tables), "-changes", strconv.Itoa(p.changes), "-new", "20")
		gen.Dir = filepath.Dir(o.gen)
		if out, err := gen.CombinedOutput(); err != nil {
			return result{}, fmt.Errorf("gen.go: %v: %s", err, out)
		}
	}
	db := livePrefix + fmt.Sprintf("%d_%d", p.tables, p.changes)
	fmt.Fprintf(log, "%s: loading %s\n", p, db)
	if err := loadLive(ctx, o.dsn, db, filepath.Join(dir, "live.sql")); err != nil {
		return result{}, err
	}
	ternCmd, err := ternSetup(o, dir, db)
	if err != nil {
		return result{}, err
	}
	skeemaCmd, err := skeemaSetup(o, dir, db)
	if err != nil {
		return result{}, err
	}
	cmds := []planner{ternCmd, skeemaCmd}
	if o.before != "" {
		b := ternCmd
		b.name = "before"
		b.args = append([]string{o.before}, ternCmd.args[1:]...)
		cmds = append(cmds, b)
	}
	var r result
	for i := -1; i < o.runs; i++ { // run -1 warms all up and is not kept
		order := slices.Clone(cmds)
		if i%2 != 0 {
			slices.Reverse(order)
		}
		for _, c := range order {
			wall, cpu, err := c.time(ctx)
			if err != nil {
				return result{}, err
			}
			fmt.Fprintf(log, "%s run %d: %s %.2f s (CPU %.2f s)\n", p, i, c.name, wall.Seconds(), cpu.Seconds())
			if i < 0 {
				continue
			}
			switch c.name {
			case "tern":
				r.ternWall, r.ternCPU = append(r.ternWall, wall), append(r.ternCPU, cpu)
			case "before":
				r.beforeWall, r.beforeCPU = append(r.beforeWall, wall), append(r.beforeCPU, cpu)
			default:
				r.skeemaWall = append(r.skeemaWall, wall)
			}
		}
	}
	return r, nil
}

// planner is one command to time and the exit code that means "planned,
// with changes".
type planner struct {
	name    string
	dir     string
	args    []string
	changes int
}

// time runs the planner once and returns its wall time and the CPU time
// (user and system) of its process.
func (c planner) time(ctx context.Context) (wall, cpu time.Duration, err error) {
	cmd := exec.CommandContext(ctx, c.args[0], c.args[1:]...)
	cmd.Dir = c.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	t0 := time.Now()
	err = cmd.Run()
	wall = time.Since(t0)
	var ee *exec.ExitError
	if err != nil && (!errors.As(err, &ee) || ee.ExitCode() != c.changes) {
		return 0, 0, fmt.Errorf("%s: %v: %s", c.name, err, tail(out.Bytes()))
	}
	if err == nil && c.changes != 0 {
		return 0, 0, fmt.Errorf("%s found no changes: %s", c.name, tail(out.Bytes()))
	}
	return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

func tail(b []byte) []byte {
	if len(b) > 2000 {
		return b[len(b)-2000:]
	}
	return b
}

// ternSetup writes a server config naming the live database, with limits
// raised for the big points, and a tern.yaml whose schema_dir is the
// workload's desired/ folder.
func ternSetup(o options, dir, db string) (planner, error) {
	dc, err := mysql.ParseDSN(o.dsn)
	if err != nil {
		return planner{}, fmt.Errorf("-dsn: %w", err)
	}
	dc.DBName = db
	cfg := fmt.Sprintf(`targets:
  - repository: bench/scale
    database: bench
    environment: bench
    mysql:
      dsn: %q
limits:
  max_tables: 1000000
  max_file_bytes: 1073741824
  max_total_bytes: 1073741824
  plan_timeout: 1h
`, dc.FormatDSN())
	cfgFile := filepath.Join(dir, "tern-server.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		return planner{}, err
	}
	repo := "databases:\n  - name: bench\n    schema_dir: desired\n    environments: [bench]\n"
	if err := os.WriteFile(filepath.Join(dir, "tern.yaml"), []byte(repo), 0o644); err != nil {
		return planner{}, err
	}
	tern, err := filepath.Abs(o.tern)
	if err != nil {
		return planner{}, err
	}
	return planner{name: "tern", dir: dir, changes: 2,
		args: []string{tern, "plan", "--config", cfgFile, "--dir", dir, "-d", "bench", "-e", "bench"}}, nil
}

// skeemaSetup writes a Skeema schema folder: the desired files and a
// .skeema naming the server and the live database, with Skeema's defaults
// otherwise.
func skeemaSetup(o options, dir, db string) (planner, error) {
	dc, err := mysql.ParseDSN(o.dsn)
	if err != nil {
		return planner{}, fmt.Errorf("-dsn: %w", err)
	}
	host, port, ok := strings.Cut(dc.Addr, ":")
	if !ok || dc.Net != "tcp" {
		return planner{}, fmt.Errorf("-dsn: want tcp(HOST:PORT), got %s(%s)", dc.Net, dc.Addr)
	}
	sk := filepath.Join(dir, "skeema")
	if err := os.RemoveAll(sk); err != nil {
		return planner{}, err
	}
	if err := os.MkdirAll(sk, 0o755); err != nil {
		return planner{}, err
	}
	files, err := filepath.Glob(filepath.Join(dir, "desired", "*.sql"))
	if err != nil {
		return planner{}, err
	}
	for _, f := range files {
		if err := os.Link(f, filepath.Join(sk, filepath.Base(f))); err != nil {
			return planner{}, err
		}
	}
	conf := fmt.Sprintf("[production]\nflavor=mariadb:10.11\nhost=%s\nport=%s\nuser=%s\nschema=%s\n", host, port, dc.User, db)
	if err := os.WriteFile(filepath.Join(sk, ".skeema"), []byte(conf), 0o600); err != nil {
		return planner{}, err
	}
	skeema, err := filepath.Abs(o.skeema)
	if err != nil {
		return planner{}, err
	}
	args := []string{skeema, "diff", "production", "--allow-unsafe"}
	if dc.Passwd != "" {
		// Skeema reads the password from MYSQL_PWD when the flag is
		// given without a value; never put it on the command line.
		args = append(args, "--password")
	}
	return planner{name: "skeema", dir: sk, changes: 1, args: args}, nil
}

// loadLive recreates database db and runs the CREATE TABLEs of file in it
// over 6 connections with foreign key checks off.
func loadLive(ctx context.Context, dsn, db, file string) error {
	dc, err := mysql.ParseDSN(dsn)
	if err != nil {
		return fmt.Errorf("-dsn: %w", err)
	}
	root, err := sql.Open("mysql", dc.FormatDSN())
	if err != nil {
		return err
	}
	defer root.Close()
	for _, q := range []string{"DROP DATABASE IF EXISTS `" + db + "`", "CREATE DATABASE `" + db + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"} {
		if _, err := root.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	stmts, err := splitCreates(file)
	if err != nil {
		return err
	}
	dc.DBName = db
	dc.Params = map[string]string{"foreign_key_checks": "0"}
	pool, err := sql.Open("mysql", dc.FormatDSN())
	if err != nil {
		return err
	}
	defer pool.Close()
	work := make(chan string)
	errc := make(chan error, 6)
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var first error
			for q := range work {
				if _, err := pool.ExecContext(ctx, q); err != nil && first == nil {
					first = fmt.Errorf("load %s: %w", file, err)
				}
			}
			errc <- first
		}()
	}
	for _, q := range stmts {
		work <- q
	}
	close(work)
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			return err
		}
	}
	return nil
}

// splitCreates splits gen.go's live.sql into its CREATE TABLE statements:
// each ends on a line that starts with ")" and ends with ";".
func splitCreates(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasPrefix(line, ")") && strings.HasSuffix(line, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if strings.TrimSpace(cur.String()) != "" {
		return nil, fmt.Errorf("%s: text after the last statement", file)
	}
	return out, nil
}
