// Command tern changes MySQL schemas from pull requests: it plans the DDL,
// applies it on command, and retries through transient database faults.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/go-sql-driver/mysql"

	"github.com/ternhq/tern/internal/actions"
)

// Set by the linker: -ldflags "-X main.version=v1.2.3 -X main.commit=abc".
var (
	version = "dev"
	commit  = "none"
)

type command struct {
	name, usage string
	run         func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"serve", "GitHub App webhook server, apply workers and (optionally) the recovery loop", runServe},
		{"recover", "one recovery pass, then exit", runRecover},
		{"plan", "plan a local checkout against a configured target, or against a DSN (--dsn)", runPlan},
		{"migrate", "create or upgrade the store's tables", runMigrate},
		{"prune", "remove what the retention policy no longer keeps (--dry-run: count it)", runPrune},
		{"demo", "the whole story on this machine, no GitHub account needed", runDemo},
		{"version", "print version and commit", runVersion},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	extra, err := actionArgs(os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "tern: %v\n", err)
		os.Exit(1)
	}
	args := append(os.Args[1:], extra...)
	tuneGC(args, os.Getenv)
	code := run(ctx, args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// planGCPercent is the garbage collector's target for tern plan, a
// short process that builds parse trees of every table and then exits:
// collecting at four times the live heap instead of once takes 350-375 MB
// instead of 225 MB at 5,000 tables and saves about 0.4-0.6 s of CPU there
// (BENCHMARKS.md, plan at scale).
const planGCPercent = 400

// planMemoryLimit is the soft limit tern plan's heap is collected to stay
// under when planGCPercent would let it grow past it (a schema of tens of
// thousands of tables): the garbage collector then runs as often as it
// needs to.
const planMemoryLimit = 1 << 30

// tuneGC sets planGCPercent and planMemoryLimit for tern plan, unless
// GOGC or GOMEMLIMIT say otherwise. The long-running commands keep Go's
// defaults.
func tuneGC(args []string, getenv func(string) string) {
	if len(args) == 0 || args[0] != "plan" {
		return
	}
	if getenv("GOGC") == "" {
		debug.SetGCPercent(planGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(planMemoryLimit)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	// The MySQL driver logs some connection errors itself ("[mysql] ...
	// packets.go:58: unexpected EOF") before returning them: tern says
	// what went wrong in its own words, so the driver's lines are dropped.
	// Its logger is the driver's global, hence set here, once per process.
	_ = mysql.SetLogger(log.New(io.Discard, "", 0))
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 1
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "tern: unknown command %q\n\n", args[0])
	usage(stderr)
	return 1
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: tern <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.usage)
	}
	fmt.Fprintln(w, "\nEvery command accepts --config FILE (default $TERN_CONFIG). Run 'tern <command> -h' for its flags.")
}

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintf(stdout, "tern %s (commit %s)\n", version, commit)
	return 0
}

// actionArgs returns the extra flags given to the GitHub Action's `args`
// input: in a Docker action GitHub passes each input as INPUT_<NAME>, and
// action.yml's fixed argument list cannot hold optional flags such as
// `tern plan`'s `--dir . -d shop -e staging`. They are split as a shell
// would (quotes keep blanks), with no shell. Outside Actions it is empty.
func actionArgs(getenv func(string) string) ([]string, error) {
	if !actions.Enabled(getenv) {
		return nil, nil
	}
	return actions.SplitArgs(getenv("INPUT_ARGS"))
}
