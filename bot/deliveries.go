package bot

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/store"
)

// deliveryLease is how long a process owns a delivery it is processing
// before another may take it over.
const deliveryLease = 5 * time.Minute

// deliveryLoop processes stored deliveries, a few at a time.
func (b *Bot) deliveryLoop(ctx context.Context) {
	t := time.NewTicker(b.poll)
	defer t.Stop()
	for ctx.Err() == nil {
		ds, err := b.st.ClaimDeliveries(ctx, b.owner, 4, deliveryLease)
		if err != nil && ctx.Err() == nil {
			b.log.Error("claim deliveries", "err", err)
		}
		var wg sync.WaitGroup
		for _, d := range ds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b.processDelivery(ctx, d)
			}()
		}
		wg.Wait()
		if len(ds) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
		case <-b.wakeDeliveries:
		case <-t.C:
		}
	}
}

// maxDeliveryBackoff caps the wait between attempts of a failed delivery.
const maxDeliveryBackoff = 5 * time.Minute

// permanentError is a delivery failure that another attempt cannot fix
// (a payload that does not parse).
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// deliveryRetryIn is the wait after failed attempt k (1-based):
// backoff * 2^(k-1), at most maxDeliveryBackoff.
func (b *Bot) deliveryRetryIn(attempt int) time.Duration {
	d := b.deliveryBackoff
	for i := 1; i < attempt && d < maxDeliveryBackoff; i++ {
		d *= 2
	}
	return min(d, maxDeliveryBackoff)
}

// processDelivery handles one stored delivery. Success marks it processed.
// A failure hands it back to the queue, due again after a backoff, until
// its attempts run out; then it is marked failed for good. Commands are
// safe to process again: the ledger makes queueing an apply idempotent,
// reactions are not duplicated by GitHub, and a command's error reply is
// posted only by its last attempt.
func (b *Bot) processDelivery(ctx context.Context, d store.Delivery) {
	log := b.log.With("delivery", d.ID, "event", d.Event, "attempt", d.Attempts)
	final := d.Attempts >= b.deliveryAttempts
	err := b.handleDelivery(ctx, d, final)
	if ctx.Err() != nil {
		// Shutting down: leave it to be taken again after its lease.
		return
	}
	if err == nil {
		b.metrics.Delivery(d.Event, "processed")
		if err := b.st.FinishDelivery(ctx, d.ID, ""); err != nil {
			log.Error("finish delivery", "err", err)
		}
		return
	}
	var perm *permanentError
	if !final && !errors.As(err, &perm) {
		wait := b.deliveryRetryIn(d.Attempts)
		log.Warn("process delivery failed; will retry", "max_attempts", b.deliveryAttempts, "retry_in", wait.String(), "err", err)
		b.metrics.Delivery(d.Event, "retrying")
		if err := b.st.RetryDelivery(ctx, d.ID, err.Error(), wait); err != nil {
			log.Error("requeue delivery", "err", err)
		}
		return
	}
	log.Error("delivery failed for good", "attempts", d.Attempts, "err", err)
	b.metrics.Delivery(d.Event, "failed")
	if err := b.st.FinishDelivery(ctx, d.ID, err.Error()); err != nil {
		log.Error("finish delivery", "err", err)
	}
}

// handleDelivery dispatches one delivery to its event's handler. final is
// true on the delivery's last attempt.
func (b *Bot) handleDelivery(ctx context.Context, d store.Delivery, final bool) (err error) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("panic processing delivery", "delivery", d.ID, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	ev, err := github.ParseWebHook(d.Event, d.Payload)
	if err != nil {
		if d.Event == "ping" || d.Event == "installation" || d.Event == "installation_repositories" {
			return nil
		}
		return &permanentError{fmt.Errorf("parse %s payload: %w", d.Event, err)}
	}
	switch e := ev.(type) {
	case *github.IssueCommentEvent:
		return b.onIssueComment(ctx, e, final)
	case *github.PullRequestEvent:
		return b.onPullRequest(ctx, e)
	case *github.CheckRunEvent:
		return b.onCheckRun(ctx, e)
	case *github.CheckSuiteEvent:
		return b.onCheckSuite(ctx, e)
	case *github.InstallationEvent:
		return b.onInstallation(ctx, e)
	case *github.InstallationRepositoriesEvent:
		return b.onInstallationRepos(ctx, e)
	}
	return nil
}
