package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/ternhq/tern/internal/demo"
)

// runDemo is `tern demo`: the whole story on this machine, no GitHub
// account needed.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, _ := newFlags("demo", stderr) // --config is accepted and not needed
	dsn := fs.String("dsn", "", "MySQL 8 / MariaDB 10.6+ server `DSN` to work on (default $TERN_DEMO_DSN, else "+demo.DefaultDSN+"); where none answers, a private MariaDB is started")
	keep := fs.Bool("keep", false, "keep the demo databases (tern_demo_<id>_*) instead of dropping them")
	verbose := fs.Bool("verbose", false, "print tern's own log to stderr")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *dsn == "" {
		*dsn = os.Getenv("TERN_DEMO_DSN")
	}
	opts := demo.Options{DSN: *dsn, Keep: *keep} // an empty DSN means demo.DefaultDSN
	if *verbose {
		opts.Log = stderr
	}
	if err := demo.Run(ctx, stdout, opts); err != nil {
		fmt.Fprintf(stderr, "tern %v\n", err)
		return 1
	}
	return 0
}
