package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/internal/redact"
)

// newFlags returns a flag set of its own (never flag.CommandLine, where
// vitess registers glog's flags) with --config already defined.
func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("tern "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := fs.String("config", os.Getenv("TERN_CONFIG"), "server config `FILE` (default $TERN_CONFIG)")
	return fs, cfg
}

// parseFlags parses a command's args, which take no positional
// arguments. When the command must not go on, ok is false and code is its
// exit code: 0 after -h, 2 for a bad flag or an argument (the flag
// package or parseFlags has said why on fs's output).
func parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return 2, false
	}
	return 0, true
}

// newLogger returns the log of a command: JSON lines (for servers) or text
// (for a person or a workflow log), with every secret of cfg masked.
func newLogger(w io.Writer, cfg *config.Config, json bool) *slog.Logger {
	w = redact.NewWriter(w, cfg.Secrets())
	if json {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// loadConfig loads the server config named by --config for a command that
// uses the ledger (serve, recover, migrate): store.dsn is required. unused
// names the key paths the command does not read (see config.Load).
func loadConfig(path string, unused ...string) (*config.Config, error) {
	if path == "" {
		return nil, fmt.Errorf("no config: pass --config FILE or set TERN_CONFIG")
	}
	cfg, err := config.Load(path, unused...)
	if err != nil {
		return nil, err
	}
	if err := cfg.RequireStore(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// webhookSecretKey is the config key only `tern serve` reads: the other
// commands receive no webhooks, and the recovery Action's step has no
// webhook secret in its environment (CONTRACT §7).
const webhookSecretKey = "github.webhook_secret"
