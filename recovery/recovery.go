// Package recovery runs tern's recovery pass: it drives the durable queue of
// applies kept in the ledger. A pass rescues applies whose worker died,
// reconciles pull requests closed while a webhook was missed, fails for good
// what is out of attempts, claims due applies (SKIP LOCKED, so any number of
// passes may run at once) and runs them through the apply runner, then
// reports every apply it touched, and every apply whose latest state has not
// reached GitHub, to the pull request.
//
// The same pass runs from `tern recover` (one pass, then exit; the scheduled
// GitHub Action) and inside `tern serve` through Loop.
//
// # Order of a pass
//
//  1. Rescue: running applies whose lease lapsed are handed back through
//     store.RescueAfter (failed_retryable, due after RescueBackoff, the
//     rescues of one pass staggered by RescueSpread; rescue_exhausted past
//     MaxRescues). The runner re-plans them against the live schema before
//     anything runs.
//  2. Closed pull requests: for every PR holding a lock or an active apply,
//     PRs.PRClosed asks GitHub; a closed one is handed to PRs.HandleClosed
//     (locks released, pending and retrying applies cancelled). This runs
//     before claiming so that DDL of a PR closed behind tern's back is not
//     run.
//  3. Out of attempts: store.FailExhausted fails them for good
//     (retries_exhausted), before claiming and again after running.
//  4. Claim and run: up to Limit due applies are claimed one at a time by
//     Parallel workers (each claim is a short SKIP LOCKED transaction, so a
//     claimed apply's lease starts when a worker is ready for it) and run
//     through Runner. A claim the ledger fails transiently (deadlock, lock
//     wait timeout) is tried again; one that keeps failing ends the claims
//     of this pass (counted in Errors), not the pass: the report step
//     still runs.
//  5. Report: Reporter.Report for each touched apply and each apply the
//     ledger says is report-due, read fresh from the ledger; on success the
//     version reported is recorded with store.MarkReported. A failed report
//     leaves the apply report-due, so a later pass retries it: the ledger
//     is the truth, GitHub a view of it. Failures are counted
//     (store.ReportFailed): the applies whose reports failed least often
//     are taken first, so ones GitHub never accepts cannot starve the
//     others, and after ReportGiveUp the pass gives up on them with a
//     logged reason.
//
// # Touched
//
// An apply is touched by a pass when that pass changed its state in the
// ledger: it rescued it, claimed and ran it (whatever the outcome), failed
// it for good as out of attempts, or its state changed while the pass
// handled its closed pull request. Applies that were only reported are not
// touched. The counts of Result are taken over touched applies, by the state
// each is in at the end of the pass.
package recovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/ternhq/tern/apply"
	"github.com/ternhq/tern/metrics"
	"github.com/ternhq/tern/store"
)

// Runner runs one claimed apply's attempt to its end (completed, failed or
// failed_retryable) and returns the apply as stored afterwards.
// (*apply.Runner).Run satisfies it.
type Runner interface {
	Run(ctx context.Context, a *store.Apply) (*store.Apply, error)
}

// Reporter shows an apply's current state on its pull request (check run,
// apply comment, notifying comment). The bot's reporter satisfies it.
type Reporter interface {
	Report(ctx context.Context, a *store.Apply) error
}

// PRs asks GitHub whether a pull request was closed and carries out what
// closing it means (the same handler as the pull_request closed webhook).
// The bot satisfies it.
type PRs interface {
	PRClosed(ctx context.Context, pr store.PRRef) (closed, merged bool, err error)
	HandleClosed(ctx context.Context, pr store.PRRef, merged bool) error
}

// Defaults of Pass fields left zero.
const (
	DefaultLimit      = 100
	DefaultParallel   = 4
	DefaultMaxRescues = 3
	DefaultLease      = 5 * time.Minute
	// DefaultRescueSpread is Pass.RescueSpread's default.
	DefaultRescueSpread = 5 * time.Second
	// DefaultReportGiveUpFailures and DefaultReportGiveUpAfter are
	// Pass.ReportGiveUp's defaults.
	DefaultReportGiveUpFailures = 10
	DefaultReportGiveUpAfter    = 24 * time.Hour
)

// batch bounds how many rows one ledger query of the pass returns.
const batch = 500

// Pass is one recovery pass's configuration. A Pass may be run many times
// (Loop does), and any number of passes may run at once against one ledger,
// in one process or many.
type Pass struct {
	// Store is the ledger. Required.
	Store *store.Store
	// Runner runs claimed applies. Required.
	Runner Runner
	// Reporter reports applies to GitHub. Nil skips reporting: applies stay
	// report-due for a pass that has one.
	Reporter Reporter
	// PRs checks for pull requests closed behind tern's back. Nil skips
	// that step.
	PRs PRs
	// Owner names this process in leases. Default host/pid.
	Owner string
	// Limit bounds how many applies one pass claims. Default 100.
	Limit int
	// Parallel bounds how many applies run (and how many reports are sent)
	// at once. Default 4.
	Parallel int
	// MaxRescues fails an apply for good (rescue_exhausted) once it has been
	// rescued this many times. Default 3.
	MaxRescues int
	// Lease is how long a claim owns an apply before the runner must extend
	// it. Default 5m.
	Lease time.Duration
	// RescueBackoff is how long a rescued apply waits before it is due,
	// given its attempt (its worker died: whatever killed it may still be
	// going on). Default: the retry backoff of a zero apply.Policy.
	RescueBackoff func(attempt int) time.Duration
	// RescueSpread staggers the applies one pass rescues (after an outage,
	// every lapsed apply at once): they become due Parallel at a time,
	// RescueSpread apart. Default 5s.
	RescueSpread time.Duration
	// ReportLimit bounds how many report-due applies one pass reports
	// (besides those it touched). Default 500.
	ReportLimit int
	// ReportGiveUp says when to stop trying to report an apply whose
	// reports keep failing (the App was uninstalled, the repository is
	// gone): the pass logs why and the ledger marks it reported. Default:
	// 10 failures over at least 24h.
	ReportGiveUp store.ReportGiveUp
	// UnderWay, when set, reports whether an apply's recorded engine state
	// names work under way outside tern (a PlanetScale deploy request): such
	// an apply is rescued however often its worker died, never failed for
	// good (rescue_exhausted) while that work may still land.
	UnderWay func(a *store.Apply) bool
	// Logger receives the pass's log. Default slog.Default().
	Logger *slog.Logger
	// Metrics, when not nil, records pass durations, claim latencies and
	// the state changes the pass itself makes (rescues, exhaustion).
	Metrics *metrics.Metrics
}

func (p *Pass) defaults() Pass {
	q := *p
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	if q.Parallel <= 0 {
		q.Parallel = DefaultParallel
	}
	if q.MaxRescues <= 0 {
		q.MaxRescues = DefaultMaxRescues
	}
	if q.Lease <= 0 {
		q.Lease = DefaultLease
	}
	if q.RescueBackoff == nil {
		q.RescueBackoff = apply.Policy{}.Backoff
	}
	if q.RescueSpread <= 0 {
		q.RescueSpread = DefaultRescueSpread
	}
	if q.ReportLimit <= 0 {
		q.ReportLimit = batch
	}
	if q.ReportGiveUp.Failures <= 0 {
		q.ReportGiveUp.Failures = DefaultReportGiveUpFailures
	}
	if q.ReportGiveUp.After <= 0 {
		q.ReportGiveUp.After = DefaultReportGiveUpAfter
	}
	if q.Logger == nil {
		q.Logger = slog.Default()
	}
	if q.Owner == "" {
		q.Owner = DefaultOwner()
	}
	return q
}

// DefaultOwner names this process for leases: "host/pid".
func DefaultOwner() string {
	h, err := os.Hostname()
	if err != nil {
		h = "unknown"
	}
	return fmt.Sprintf("%s/%d", h, os.Getpid())
}

// Run runs one pass. It returns an error only when the pass could not do
// its work at all (the ledger does not answer, or ctx ended); problems with
// single applies or with GitHub are recorded in the Result and logged, and
// the pass carries on.
func (p *Pass) Run(ctx context.Context) (*Result, error) {
	if p.Store == nil || p.Runner == nil {
		return nil, errors.New("recovery pass: Store and Runner are required")
	}
	q := p.defaults()
	start := time.Now()
	defer func() { q.Metrics.Pass(time.Since(start)) }()
	t := &tracker{lines: map[int64]*Line{}}
	log := q.Logger.With("owner", q.Owner)

	if err := q.rescue(ctx, t, log); err != nil {
		return nil, err
	}
	if q.PRs != nil {
		if err := q.closedPRs(ctx, t, log); err != nil {
			return nil, err
		}
	}
	if err := q.failExhausted(ctx, t); err != nil {
		return nil, err
	}
	if err := q.claimAndRun(ctx, t, log); err != nil {
		return nil, err
	}
	if err := q.failExhausted(ctx, t); err != nil {
		return nil, err
	}
	if err := q.refresh(ctx, t); err != nil {
		return nil, err
	}
	if q.Reporter != nil {
		if err := q.report(ctx, t, log); err != nil {
			return nil, err
		}
	}

	res := t.result()
	log.Info("recovery pass done", "recovered", res.Recovered, "retrying", res.Retrying,
		"failed", res.Failed, "rescued", res.Rescued, "cancelled", res.Cancelled,
		"closed_prs", res.ClosedPRs, "reported", res.Reported, "report_errors", res.ReportErrors,
		"errors", res.Errors)
	return res, nil
}

// Loop runs a pass every interval until ctx ends (`tern serve` with
// recovery.interval > 0). A pass that fails is logged and the loop goes
// on; passes never overlap within one loop.
func Loop(ctx context.Context, p *Pass, interval time.Duration) {
	log := p.Logger
	if log == nil {
		log = slog.Default()
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		res, err := p.Run(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			log.Error("recovery pass", "err", err)
		default:
			log.Debug("recovery pass", "summary", res.Summary())
		}
		timer.Reset(interval)
	}
}
