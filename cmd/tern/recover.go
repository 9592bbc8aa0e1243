package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/sethvargo/go-githubactions"

	"github.com/ternhq/tern/apply"
	"github.com/ternhq/tern/bot"
	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/internal/actions"
	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/recovery"
	"github.com/ternhq/tern/store"
	"github.com/ternhq/tern/targets"
)

// recoverDeps are the pieces of a pass beyond the ledger: the runner, and
// the GitHub side (reporter and closed-PR check; nil skips them).
type recoverDeps struct {
	runner   recovery.Runner
	reporter recovery.Reporter
	prs      recovery.PRs
	close    func()
}

// depsFunc builds recoverDeps from the config and the open ledger.
type depsFunc func(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger) (*recoverDeps, error)

// runRecover is `tern recover`: one recovery pass, then exit.
func runRecover(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return recoverMain(ctx, args, stdout, stderr, os.Getenv, productionDeps)
}

// productionDeps wires the apply runner over the configured targets and the
// GitHub App, which reports to pull requests and checks for closed ones. The
// runner reports each step of an attempt through the App as it happens;
// the pass then reports every apply it touched once more and retries what
// did not reach GitHub.
func productionDeps(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger) (*recoverDeps, error) {
	if err := cfg.RequireGitHub(); err != nil {
		return nil, fmt.Errorf("tern recover reports to pull requests as the GitHub App: %w", err)
	}
	ts := targets.New(cfg, log)
	planner := &plan.Planner{Logger: log}
	runner := &apply.Runner{Store: st, Targets: ts, Planner: planner, Policy: apply.PolicyFromConfig(cfg.Recovery), Logger: log}
	b, err := bot.New(bot.Options{Config: cfg, Store: st, Runner: runner, Targets: ts, Planner: planner, Logger: log})
	if err != nil {
		ts.Close()
		return nil, fmt.Errorf("github app: %w", err)
	}
	runner.Listener = b
	return &recoverDeps{runner: runner, reporter: b.Reporter(), prs: b, close: func() { ts.Close() }}, nil
}

// recoverMain runs `tern recover` with its environment and dependencies
// injected. Exit codes: 0 when the pass ran, whatever became of the
// applies; 1 when it could not run (bad flags or config, ledger
// unreachable, pieces that could not be built).
func recoverMain(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, deps depsFunc) int {
	fs, cfgPath := newFlags("recover", stderr)
	limit := fs.Int("limit", recovery.DefaultLimit, "claim at most `N` due applies in this pass")
	parallel := fs.Int("parallel", recovery.DefaultParallel, "run at most `N` applies at once")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tern recover: unexpected arguments %q\n", fs.Args())
		return 2
	}

	var gha *githubactions.Action
	if actions.Enabled(getenv) {
		gha = githubactions.New(githubactions.WithGetenv(getenv), githubactions.WithWriter(stdout))
	}
	fail := func(format string, a ...any) int {
		msg := fmt.Sprintf(format, a...)
		if gha != nil {
			gha.Errorf("tern recover: %s", msg)
		}
		fmt.Fprintf(stderr, "tern recover: %s\n", msg)
		return 1
	}
	if *limit < 1 || *parallel < 1 {
		return fail("--limit and --parallel must be at least 1")
	}

	cfg, err := loadConfig(*cfgPath, webhookSecretKey)
	if err != nil {
		return fail("%v", err)
	}
	// Masks first: nothing may reach the log before the runner knows what
	// to hide.
	if gha != nil {
		actions.Mask(gha, cfg.Secrets())
	}
	log := newLogger(stderr, cfg, false).With("cmd", "recover")

	st, err := store.Open(ctx, cfg.Store.DSN)
	if err != nil {
		return fail("open store: %v", err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return fail("migrate store: %v", err)
	}
	d, err := deps(ctx, cfg, st, log)
	if err != nil {
		return fail("%v", err)
	}
	if d.close != nil {
		defer d.close()
	}
	if d.reporter == nil {
		log.Warn("no GitHub reporter: applies stay report-due for a pass that has one")
	}

	p := &recovery.Pass{
		Store:      st,
		Runner:     d.runner,
		Reporter:   d.reporter,
		PRs:        d.prs,
		Limit:      *limit,
		Parallel:   *parallel,
		MaxRescues: cfg.Recovery.MaxRescues,
		Lease:      cfg.Recovery.Lease.D(),
		Logger:     log,
	}
	res, err := p.Run(ctx)
	if err != nil {
		return fail("recovery pass: %v", err)
	}
	for _, l := range res.Lines {
		fmt.Fprintln(stdout, l.String())
	}
	fmt.Fprintln(stdout, res.Summary())
	if gha != nil {
		actions.WritePass(gha, res)
	}
	return 0
}
