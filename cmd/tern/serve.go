package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ternhq/tern/bot"
	"github.com/ternhq/tern/internal/app"
	"github.com/ternhq/tern/recovery"
)

// runServe is `tern serve`: the webhook server, the apply workers and,
// when recovery.interval > 0, the recovery loop, until ctx ends.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cfgPath := newFlags("serve", stderr)
	listen := fs.String("listen", "", "listen `ADDRESS` (default: listen from the config, else :8080)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if err := serve(ctx, *cfgPath, *listen, stderr); err != nil {
		fmt.Fprintf(stderr, "tern serve: %v\n", err)
		return 1
	}
	return 0
}

// serve loads the config, wires tern and runs it until ctx ends.
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
	a, err := app.New(ctx, cfg, app.Options{Logger: log})
	if err != nil {
		return err
	}
	defer a.Close()
	return runServer(ctx, a, log)
}

// runServer serves the bot's handler on the config's listen address and
// runs the bot's workers and, when recovery.interval > 0, the recovery
// loop. When ctx ends it stops taking requests (waiting up to 15s for
// those under way), stops the workers and the loop, and returns.
func runServer(ctx context.Context, a *app.App, log *slog.Logger) error {
	ln, err := net.Listen("tcp", a.Config.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           a.Bot.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); a.Bot.Run(runCtx) }()
	interval := a.Config.Recovery.Interval.D()
	if interval > 0 {
		pass := a.RecoveryPass()
		pass.Logger = log.With("component", "recovery")
		wg.Add(1)
		go func() { defer wg.Done(); recovery.Loop(runCtx, pass, interval) }()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "recovery_interval", interval.String())

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
