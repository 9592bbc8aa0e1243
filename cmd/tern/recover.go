package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/sethvargo/go-githubactions"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/internal/actions"
	"github.com/ternhq/tern/internal/app"
	"github.com/ternhq/tern/recovery"
	"github.com/ternhq/tern/store"
)

// passFunc builds the recovery pass of `tern recover` over the open
// ledger: its runner and, to report to GitHub, its Reporter and PRs (nil
// skips them). close, when not nil, releases what it built. recoverMain
// then sets the flags' Limit and Parallel.
type passFunc func(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger) (p *recovery.Pass, close func(), err error)

// runRecover is `tern recover`: one recovery pass, then exit.
func runRecover(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return recoverMain(ctx, args, stdout, stderr, os.Getenv, productionPass)
}

// productionPass wires the apply runner over the configured targets and
// the GitHub App, which reports to pull requests and checks for closed
// ones, and first asks GitHub to redeliver the webhooks that no server
// received. The runner reports each step of an attempt through the App as it
// happens; the pass then reports every apply it touched once more and
// retries what did not reach GitHub.
func productionPass(ctx context.Context, cfg *config.Config, st *store.Store, log *slog.Logger) (*recovery.Pass, func(), error) {
	if err := cfg.RequireGitHub(); err != nil {
		return nil, nil, fmt.Errorf("tern recover reports to pull requests as the GitHub App: %w", err)
	}
	a, err := app.New(ctx, cfg, app.Options{Store: st, Logger: log})
	if err != nil {
		return nil, nil, fmt.Errorf("github app: %w", err)
	}
	// Webhooks that failed while no server answered are asked for again
	// (GitHub delivers them to the server); a failure does not stop the pass.
	if res, err := a.Bot.RedeliverMissed(ctx); err != nil {
		log.Warn("look for missed webhook deliveries", "err", err)
	} else if res.Asked > 0 {
		log.Info("asked GitHub to redeliver missed webhooks", "missed", res.Missed, "asked", res.Asked)
	}
	if _, err := a.Bot.Prune(ctx); err != nil {
		log.Warn("prune the ledger", "err", err)
	}
	return a.RecoveryPass(), func() { a.Close() }, nil
}

// recoverMain runs `tern recover` with its environment (getenv) and its
// pass (newPass) injected. Exit codes: 0 when the pass ran, whatever
// became of the applies; 1 when it could not run (a --limit or --parallel
// below 1, a bad config, the ledger unreachable, a pass that could not be
// built or run); 2 for an unknown flag or an argument.
func recoverMain(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, newPass passFunc) int {
	fs, cfgPath := newFlags("recover", stderr)
	limit := fs.Int("limit", recovery.DefaultLimit, "claim at most `N` due applies in this pass")
	parallel := fs.Int("parallel", recovery.DefaultParallel, "run at most `N` applies at once")
	if code, ok := parseFlags(fs, args); !ok {
		return code
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

	st, err := app.OpenStore(ctx, cfg.Store.DSN)
	if err != nil {
		return fail("%v", err)
	}
	defer st.Close()
	p, closePass, err := newPass(ctx, cfg, st, log)
	if err != nil {
		return fail("%v", err)
	}
	if closePass != nil {
		defer closePass()
	}
	if p.Reporter == nil {
		log.Warn("no GitHub reporter: applies stay report-due for a pass that has one")
	}
	p.Limit, p.Parallel = *limit, *parallel

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
