// Package app wires tern together from a server config, once, for every
// command that runs applies: `tern serve`, `tern recover` and `tern demo`.
//
// The pieces are built in the order an apply flows through them: the
// ledger (store), the targets and their engines (targets), the planner
// (plan), the apply runner (apply), and the GitHub App (bot), which hears
// the runner's progress and reports it on the pull request. A recovery
// pass (recovery) over the same pieces comes from RecoveryPass.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/ternhq/tern/apply"
	"github.com/ternhq/tern/bot"
	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/engine/psdeploy"
	"github.com/ternhq/tern/metrics"
	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/recovery"
	"github.com/ternhq/tern/store"
	"github.com/ternhq/tern/targets"
)

// Options tunes New. The zero value is what `tern serve` and `tern recover`
// use.
type Options struct {
	// Store is an open, migrated ledger to build on; App.Close leaves it
	// open. Nil: New opens cfg.Store.DSN with OpenStore and Close closes
	// it.
	Store *store.Store
	// Logger receives every piece's log. Default slog.Default().
	Logger *slog.Logger
	// PlanetScale is the options PlanetScale engines are made with (see
	// targets.Set.PlanetScale). Default: psdeploy's defaults.
	PlanetScale psdeploy.Options
	// Poll is how often the bot's workers look for work nobody woke them
	// for (see bot.Options.Poll). Default: the bot's.
	Poll time.Duration
}

// App is tern wired from one server config. Its fields are the pieces, for
// callers that need one directly; they must not be replaced.
type App struct {
	// Config is the server config the App was built from.
	Config *config.Config
	// Store is the ledger.
	Store *store.Store
	// Metrics is the registry the bot serves at /metrics; the bot, and
	// passes from RecoveryPass, record into it.
	Metrics *metrics.Metrics
	// Targets resolves (repository, database, environment) to an engine
	// and a shadow server.
	Targets *targets.Set
	// Planner plans desired schemas against live ones.
	Planner *plan.Planner
	// Runner runs claimed applies; its Listener is Bot.
	Runner *apply.Runner
	// Bot is the GitHub App: webhooks, commands, apply workers, reports.
	Bot *bot.Bot

	log       *slog.Logger
	ownsStore bool
}

// OpenStore opens the ledger at dsn and creates or upgrades its tables
// (safe from several processes at once).
func OpenStore(ctx context.Context, dsn string) (*store.Store, error) {
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("migrate store: %w", err)
	}
	return st, nil
}

// New builds the pieces from cfg: the ledger (unless opts.Store gives
// one), the metrics, the targets, the planner, the apply runner and the
// bot, with the runner reporting each step through the bot. It needs the
// GitHub App's id and key (config.RequireGitHub); the webhook secret only
// matters to a server (bot.RequireWebhookSecret). Nothing connects to a
// target until an apply or a plan needs it. Close releases what New
// opened.
func New(ctx context.Context, cfg *config.Config, opts Options) (*App, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	a := &App{Config: cfg, Store: opts.Store, log: log}
	if a.Store == nil {
		st, err := OpenStore(ctx, cfg.Store.DSN)
		if err != nil {
			return nil, err
		}
		a.Store, a.ownsStore = st, true
	}
	a.Metrics = metrics.New(a.Store.DB())
	a.Targets = targets.New(cfg, log)
	a.Targets.PlanetScale = opts.PlanetScale
	// Every PlanetScale API call counts in tern_api_calls_total{api="planetscale"}.
	hc := http.Client{Timeout: time.Minute}
	if opts.PlanetScale.HTTPClient != nil {
		hc = *opts.PlanetScale.HTTPClient
	}
	hc.Transport = a.Metrics.Transport("planetscale", hc.Transport)
	a.Targets.PlanetScale.HTTPClient = &hc
	a.Planner = &plan.Planner{Logger: log, Limits: plan.LimitsFromConfig(cfg.Limits)}
	a.Runner = &apply.Runner{
		Store: a.Store, Targets: a.Targets, Planner: a.Planner,
		Policy: apply.PolicyFromConfig(cfg.Recovery), Logger: log, Metrics: a.Metrics,
	}
	b, err := bot.New(bot.Options{
		Config: cfg, Store: a.Store, Runner: a.Runner, Targets: a.Targets, Planner: a.Planner,
		Logger: log, Metrics: a.Metrics, Poll: opts.Poll,
	})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.Bot = b
	a.Runner.Listener = b
	return a, nil
}

// RecoveryPass returns a recovery pass over the App's pieces: the runner
// runs what it claims, the bot reports and checks for closed pull
// requests, and the config's recovery section sets rescues, the lease and
// the backoff of rescued applies.
// Callers may set Limit, Parallel or Logger before running it.
func (a *App) RecoveryPass() *recovery.Pass {
	return &recovery.Pass{
		Store:         a.Store,
		Runner:        a.Runner,
		Reporter:      a.Bot.Reporter(),
		PRs:           a.Bot,
		MaxRescues:    a.Config.Recovery.MaxRescues,
		Lease:         a.Config.Recovery.Lease.D(),
		RescueBackoff: a.Runner.Policy.Backoff,
		UnderWay:      func(ap *store.Apply) bool { return ap.EngineState[psdeploy.StateDeployRequest] != "" },
		Logger:        a.log,
		Metrics:       a.Metrics,
	}
}

// Close closes the targets' connections and, when New opened it, the
// ledger. Stop the bot's workers and any pass first.
func (a *App) Close() error {
	err := a.Targets.Close()
	if a.ownsStore {
		if cerr := a.Store.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
