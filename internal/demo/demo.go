// Package demo tells tern's whole story on one machine, for `tern demo`:
// a pull request that autoplans, an apply to staging hit by a transient
// fault, a recovery pass that finishes it, and an apply to production
// through a PlanetScale deploy request. GitHub and PlanetScale are the
// in-process stand-ins (internal/fakegithub, internal/fakeps); tern itself
// is the real bot, apply runner, engines, ledger and recovery pass, wired
// as `tern serve` and `tern recover` wire them, against a real MySQL or
// MariaDB server.
package demo

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/ternhq/tern/internal/localdb"
)

// DefaultDSN is the server the demo uses when Options.DSN is empty.
const DefaultDSN = "root@tcp(127.0.0.1:3306)/"

// Options configures Run.
type Options struct {
	// DSN is the MySQL 8 or MariaDB 10.6+ server the demo works on, as a
	// go-sql-driver DSN; a database name in it is ignored. Its user must
	// be able to create databases and users. Where no server answers, a
	// private MariaDB is started for the run (see localdb.Ensure).
	// Default DefaultDSN.
	DSN string
	// Keep leaves the demo's databases on the server at the end (they are
	// named tern_demo_<id>_*); by default they are dropped.
	Keep bool
	// Log receives tern's own log lines (slog text, debug level), with
	// every secret the demo knows of redacted. Default: discarded.
	Log io.Writer
}

// waitLimit bounds every wait of the story; it only stops a demo that is
// stuck, the story takes seconds.
const waitLimit = 45 * time.Second

// Run tells the story, printing to w the pull request's comments and check
// runs as a person on GitHub would see them, step by step, then a summary
// line. It returns an error when a step does not end as the story says.
func Run(ctx context.Context, w io.Writer, opts Options) (err error) {
	start := time.Now()
	if opts.DSN == "" {
		opts.DSN = DefaultDSN
	}
	mc, err := mysql.ParseDSN(opts.DSN)
	if err != nil {
		// The driver's message may quote the DSN, password included.
		return errors.New("demo: invalid DSN (want e.g. root@tcp(127.0.0.1:3306)/)")
	}
	p := &printer{w: w, secrets: []string{mc.Passwd}}
	defer func() {
		if err != nil {
			if msg := p.redact(err.Error()); msg != err.Error() {
				err = errors.New(msg)
			}
		}
	}()
	logOut := opts.Log
	if logOut == nil {
		logOut = io.Discard
	}
	log := slog.New(slog.NewTextHandler(redactingWriter{p: p, w: logOut}, &slog.HandlerOptions{Level: slog.LevelDebug}))

	srv, err := localdb.Ensure(ctx, opts.DSN, redactingWriter{p: p, w: w})
	if err != nil {
		return fmt.Errorf("demo: find a MySQL server: %w", err)
	}
	if srv.Started {
		defer srv.Stop()
	}

	d := &demo{p: p, log: log, keep: opts.Keep && !srv.Started, serverDSN: srv.DSN, id: randHex(3)}
	defer d.close()
	if err := d.setup(ctx); err != nil {
		return fmt.Errorf("demo: set up: %w", err)
	}
	for _, step := range []func(context.Context) error{
		d.intro, d.openPR, d.applyStaging, d.recover, d.applyProduction, d.final,
	} {
		if err := step(ctx); err != nil {
			return fmt.Errorf("demo: %w", err)
		}
		if p.err != nil {
			return fmt.Errorf("demo: write output: %w", p.err)
		}
	}
	d.summary(time.Since(start))
	if opts.Keep {
		if srv.Started {
			p.printf("(--keep: the databases lived on a private MariaDB that stops with the demo; nothing was kept)\n")
		} else {
			p.printf("Kept: databases %s, %s and %s on %s (drop them when done).\n",
				d.ledgerDB, d.stagingDB, d.ps.MainDatabase(), mc.Addr)
		}
	}
	return p.err
}

// redactingWriter passes writes on with secrets redacted. Each write is
// redacted on its own: slog and localdb write whole lines.
type redactingWriter struct {
	p *printer
	w io.Writer
}

func (r redactingWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(r.w, r.p.redact(string(b))); err != nil {
		return 0, err
	}
	return len(b), nil
}

// waitFor polls cond until it holds, ctx ends or waitLimit passes.
func waitFor(ctx context.Context, what string, cond func(context.Context) (bool, error)) error {
	deadline := time.Now().Add(waitLimit)
	for {
		ok, err := cond(ctx)
		if err != nil {
			return fmt.Errorf("wait for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up waiting for %s after %s", what, waitLimit)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// exec runs statements in order on db.
func exec(ctx context.Context, db *sql.DB, stmts ...string) error {
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	return nil
}
