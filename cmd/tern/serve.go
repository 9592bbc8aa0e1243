package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ternhq/tern/apply"
	"github.com/ternhq/tern/bot"
	"github.com/ternhq/tern/metrics"
	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/recovery"
	"github.com/ternhq/tern/store"
	"github.com/ternhq/tern/targets"
)

// runServe is `tern serve`: the webhook server, the apply workers and,
// when recovery.interval > 0, the recovery loop, until ctx ends.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cfgPath := newFlags("serve", stderr)
	listen := fs.String("listen", "", "listen `ADDRESS` (default: listen from the config, else :8080)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tern serve: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if err := serve(ctx, *cfgPath, *listen, stderr); err != nil {
		fmt.Fprintf(stderr, "tern serve: %v\n", err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfgPath, listen string, stderr io.Writer) error {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg, true).With("cmd", "serve")
	if err := errors.Join(cfg.RequireGitHub(), bot.RequireWebhookSecret(cfg)); err != nil {
		return err
	}
	if listen != "" {
		cfg.Listen = listen
	}
	st, err := store.Open(ctx, cfg.Store.DSN)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate store: %w", err)
	}
	m := metrics.New(st.DB())
	tg := targets.New(cfg, log)
	defer tg.Close()
	planner := &plan.Planner{Logger: log}
	runner := &apply.Runner{Store: st, Targets: tg, Planner: planner, Policy: apply.PolicyFromConfig(cfg.Recovery), Logger: log}
	b, err := bot.New(bot.Options{Config: cfg, Store: st, Runner: runner, Targets: tg, Planner: planner, Logger: log, Metrics: m})
	if err != nil {
		return err
	}
	runner.Listener = b

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           b.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); b.Run(runCtx) }()
	// The recovery loop (issue 7) runs in-process when configured.
	if iv := cfg.Recovery.Interval.D(); iv > 0 {
		pass := &recovery.Pass{
			Store: st, Runner: runner, Reporter: b.Reporter(), PRs: b,
			MaxRescues: cfg.Recovery.MaxRescues, Lease: cfg.Recovery.Lease.D(),
			Logger: log.With("component", "recovery"), Metrics: m,
		}
		wg.Add(1)
		go func() { defer wg.Done(); recovery.Loop(runCtx, pass, iv) }()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "recovery_interval", cfg.Recovery.Interval.D().String())

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	stop()
	wg.Wait()
	log.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serveErr)
	}
	return nil
}
