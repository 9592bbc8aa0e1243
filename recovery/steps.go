package recovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/ternhq/tern/engine"
	"github.com/ternhq/tern/store"
)

// The steps of a pass, in the order Run takes them (see the package
// doc). Each records what it did to an apply in the tracker.

// rescue hands back running applies whose lease lapsed. A rescue another
// pass made first is a conflict and is skipped.
func (p *Pass) rescue(ctx context.Context, t *tracker, log *slog.Logger) error {
	seen := map[int64]bool{}
	rescued := 0
	for {
		lapsed, err := p.Store.LapsedApplies(ctx, batch)
		if err != nil {
			return fmt.Errorf("list lapsed applies: %w", err)
		}
		progress := false
		for _, a := range lapsed {
			if seen[a.ID] {
				continue
			}
			seen[a.ID] = true
			progress = true
			wait := p.RescueBackoff(a.Attempt) + time.Duration(rescued/p.Parallel)*p.RescueSpread
			maxRescues := p.MaxRescues
			if p.UnderWay != nil && p.UnderWay(a) {
				maxRescues = store.NoRescueLimit
			}
			got, err := p.Store.RescueAfter(ctx, a, maxRescues, wait)
			if errors.Is(err, store.ErrConflict) {
				log.Debug("rescue lost to another pass", "apply", a.ID)
				continue
			}
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				log.Error("rescue apply", "apply", a.ID, "err", err)
				t.touch(a, ActionRescued, fmt.Errorf("rescue: %w", err))
				continue
			}
			rescued++
			log.Info("rescued apply", "apply", got.ID, "state", got.State, "rescues", got.Rescues, "previous_owner", a.LeaseOwner, "due_in", wait)
			t.touch(got, ActionRescued, nil)
			p.Metrics.Transition(string(got.State))
			t.count(func(r *Result) { r.Rescued++ })
		}
		if !progress || len(lapsed) < batch {
			return nil
		}
	}
}

// closedPRs finds pull requests closed while a webhook was missed and hands
// them to PRs.HandleClosed. GitHub errors are logged and counted; the PR is
// looked at again by the next pass.
func (p *Pass) closedPRs(ctx context.Context, t *tracker, log *slog.Logger) error {
	refs, err := p.Store.OpenPRs(ctx)
	if err != nil {
		return fmt.Errorf("list open pull requests: %w", err)
	}
	for _, ref := range refs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		closed, merged, err := p.PRs.PRClosed(ctx, ref)
		if err != nil {
			log.Warn("ask GitHub whether a pull request is closed", "repository", ref.Repository, "pr", ref.PR, "err", err)
			t.count(func(r *Result) { r.Errors++ })
			continue
		}
		if !closed {
			continue
		}
		before, err := p.Store.AppliesForPR(ctx, ref.Repository, ref.PR)
		if err != nil {
			return fmt.Errorf("list applies of %s#%d: %w", ref.Repository, ref.PR, err)
		}
		herr := p.PRs.HandleClosed(ctx, ref, merged)
		if herr != nil {
			log.Error("handle closed pull request", "repository", ref.Repository, "pr", ref.PR, "err", herr)
			t.count(func(r *Result) { r.Errors++ })
		} else {
			log.Info("handled pull request closed behind tern's back", "repository", ref.Repository, "pr", ref.PR, "merged", merged)
			t.count(func(r *Result) { r.ClosedPRs++ })
		}
		after, err := p.Store.AppliesForPR(ctx, ref.Repository, ref.PR)
		if err != nil {
			return fmt.Errorf("list applies of %s#%d: %w", ref.Repository, ref.PR, err)
		}
		was := map[int64]store.State{}
		for _, a := range before {
			was[a.ID] = a.State
		}
		for _, a := range after {
			if s, ok := was[a.ID]; ok && s != a.State {
				t.touch(a, ActionClosed, nil)
			}
		}
	}
	return nil
}

// failExhausted fails for good the failed_retryable applies out of attempts.
func (p *Pass) failExhausted(ctx context.Context, t *tracker) error {
	for {
		got, err := p.Store.FailExhausted(ctx, batch)
		if err != nil {
			return fmt.Errorf("fail exhausted applies: %w", err)
		}
		for _, a := range got {
			t.touch(a, ActionExhausted, nil)
			p.Metrics.Transition(string(a.State))
		}
		if len(got) < batch {
			return nil
		}
	}
}

// claimAndRun claims up to Limit due applies, one per claim, with Parallel
// workers, and runs each through the runner.
func (p *Pass) claimAndRun(ctx context.Context, t *tracker, log *slog.Logger) error {
	var (
		mu       sync.Mutex
		left     = p.Limit
		claimErr error
		wg       sync.WaitGroup
	)
	// take reserves one claim slot; false when the limit is reached or a
	// claim failed.
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if left <= 0 || claimErr != nil {
			return false
		}
		left--
		return true
	}
	giveBack := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		left++
		if err != nil && claimErr == nil {
			claimErr = err
		}
	}
	workers := min(p.Parallel, p.Limit)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && take() {
				got, err := p.claim(ctx, log)
				if err != nil {
					giveBack(fmt.Errorf("claim applies: %w", err))
					return
				}
				if len(got) == 0 {
					giveBack(nil)
					return
				}
				for _, a := range got {
					p.run(ctx, t, log, a)
				}
			}
		}()
	}
	wg.Wait()
	if claimErr != nil && ctx.Err() == nil {
		// The pass goes on: what it did, and what is report-due, is still
		// reported.
		log.Error("claim applies; no more claims this pass", "err", claimErr)
		t.count(func(r *Result) { r.Errors++ })
	}
	return ctx.Err()
}

// claimTries bounds the claims one worker of a pass makes in a row while
// the ledger answers with a transient error (a deadlock, a lock wait
// timeout).
const claimTries = 4

// claim claims one due apply, trying again while the ledger fails
// transiently.
func (p *Pass) claim(ctx context.Context, log *slog.Logger) ([]*store.Apply, error) {
	wait := 50 * time.Millisecond
	for try := 1; ; try++ {
		began := time.Now()
		got, err := p.Store.Claim(ctx, store.ClaimOptions{Owner: p.Owner, Limit: 1, Lease: p.Lease})
		p.Metrics.Claim(time.Since(began))
		if err == nil || try >= claimTries || !engine.IsRetryable(engine.ClassifyMySQL(err)) {
			return got, err
		}
		log.Warn("claim failed, retrying", "try", try, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// run runs one claimed apply and records where it ended.
func (p *Pass) run(ctx context.Context, t *tracker, log *slog.Logger, a *store.Apply) {
	log = log.With("apply", a.ID, "repository", a.Repository, "pr", a.PR,
		"database", a.Database, "environment", a.Environment, "attempt", a.Attempt)
	log.Info("running apply")
	got, err := p.Runner.Run(ctx, a)
	if err != nil {
		log.Error("run apply", "err", err)
		// The ledger holds the truth of where the apply ended.
		if fresh, ferr := p.Store.Apply(context.WithoutCancel(ctx), a.ID); ferr == nil {
			got = fresh
		} else if got == nil {
			got = a
		}
		t.touch(got, ActionRan, fmt.Errorf("run: %w", err))
		return
	}
	if got == nil {
		got = a
	}
	log.Info("apply attempt ended", "state", got.State, "error_class", got.ErrorClass)
	t.touch(got, ActionRan, nil)
}

// refresh reads every touched apply again, so that lines and counts show
// where each stands at the end of the pass.
func (p *Pass) refresh(ctx context.Context, t *tracker) error {
	for id, l := range t.lines {
		a, err := p.Store.Apply(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if l.Err == "" {
				l.Err = fmt.Sprintf("read apply: %v", err)
			}
			continue
		}
		l.Apply = a
	}
	return nil
}

// report sends the touched applies and the report-due ones to GitHub,
// Parallel at a time.
func (p *Pass) report(ctx context.Context, t *tracker, log *slog.Logger) error {
	due, err := p.Store.ReportDue(ctx, p.ReportLimit)
	if err != nil {
		return fmt.Errorf("list report-due applies: %w", err)
	}
	var todo []*store.Apply
	queued := map[int64]bool{}
	for _, l := range t.lines {
		if l.Apply.ReportedVersion < l.Apply.Version {
			todo = append(todo, l.Apply)
			queued[l.Apply.ID] = true
		}
	}
	for _, a := range due {
		if !queued[a.ID] {
			todo = append(todo, a)
			queued[a.ID] = true
		}
	}
	sort.Slice(todo, func(i, j int) bool { return todo[i].ID < todo[j].ID })

	sem := make(chan struct{}, p.Parallel)
	var wg sync.WaitGroup
	for _, a := range todo {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			rerr := p.reportOne(ctx, a, log)
			t.mu.Lock()
			defer t.mu.Unlock()
			if rerr != nil {
				log.Warn("report apply to GitHub; it stays report-due", "apply", a.ID, "err", rerr)
				t.res.ReportErrors++
			} else {
				t.res.Reported++
			}
			if l, ok := t.lines[a.ID]; ok {
				l.Reported = rerr == nil
				if rerr != nil {
					l.ReportErr = rerr.Error()
				}
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// reportOne reports a to GitHub and records the version reported, or the
// failure.
func (p *Pass) reportOne(ctx context.Context, a *store.Apply, log *slog.Logger) error {
	if err := p.Reporter.Report(ctx, a); err != nil {
		n, gaveUp, ferr := p.Store.ReportFailed(context.WithoutCancel(ctx), a.ID, a.Version, err.Error(), p.ReportGiveUp)
		switch {
		case ferr != nil:
			log.Warn("record a failed report", "apply", a.ID, "err", ferr)
		case gaveUp:
			log.Error("giving up reporting apply to GitHub: its reports keep failing (App uninstalled? repository gone?)",
				"apply", a.ID, "repository", a.Repository, "pr", a.PR, "version", a.Version, "failures", n, "err", err)
			return fmt.Errorf("gave up after %d failed reports: %w", n, err)
		}
		return err
	}
	if err := p.Store.MarkReported(ctx, a.ID, a.Version); err != nil {
		return fmt.Errorf("mark reported: %w", err)
	}
	return nil
}
