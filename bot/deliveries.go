package bot

import (
	"context"
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

// processDelivery handles one stored delivery and marks it processed.
func (b *Bot) processDelivery(ctx context.Context, d store.Delivery) {
	log := b.log.With("delivery", d.ID, "event", d.Event)
	err := b.handleDelivery(ctx, d)
	if ctx.Err() != nil {
		// Shutting down: leave it to be taken again after its lease.
		return
	}
	msg := ""
	outcome := "processed"
	if err != nil {
		msg = err.Error()
		outcome = "failed"
		log.Error("process delivery", "err", err)
	}
	b.metrics.Delivery(d.Event, outcome)
	if err := b.st.FinishDelivery(ctx, d.ID, msg); err != nil {
		log.Error("finish delivery", "err", err)
	}
}

func (b *Bot) handleDelivery(ctx context.Context, d store.Delivery) (err error) {
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
		return fmt.Errorf("parse %s payload: %w", d.Event, err)
	}
	switch e := ev.(type) {
	case *github.IssueCommentEvent:
		return b.onIssueComment(ctx, e)
	case *github.PullRequestEvent:
		return b.onPullRequest(ctx, e)
	case *github.CheckRunEvent:
		return b.onCheckRun(ctx, e)
	}
	return nil
}
