package bot

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/go-github/v60/github"
)

// GitHub never redelivers a webhook by itself: a delivery that failed while
// tern was down (or answered too slowly) is lost unless the App asks again.
// RedeliverMissed lists the App's recent deliveries and asks GitHub to
// deliver again each one that never succeeded and that the ledger never
// recorded.

const (
	// redeliverLookback is how far back the delivery log is read: GitHub
	// keeps three days of it.
	redeliverLookback = 72 * time.Hour
	// redeliverPages bounds the pages of 100 read per pass.
	redeliverPages = 10
	// redeliverMax bounds the redeliveries asked for per pass; the rest
	// wait for the next pass.
	redeliverMax = 25
	// redeliverPause is how long a delivery asked for is not asked for
	// again by this process (GitHub is delivering it).
	redeliverPause = 10 * time.Minute
	// defaultRedeliverInterval is how often `tern serve` looks.
	defaultRedeliverInterval = 5 * time.Minute
)

// Redelivered is what one look at the delivery log found.
type Redelivered struct {
	// Listed counts the delivery attempts read.
	Listed int
	// Missed counts deliveries that never succeeded and are not in the
	// ledger.
	Missed int
	// Asked counts the redeliveries asked for.
	Asked int
}

// appClient is a GitHub client authenticated as the App itself (its JWT),
// for the /app endpoints.
func (b *Bot) appClient() *github.Client {
	c := github.NewClient(&http.Client{Transport: b.appAuth})
	c.BaseURL, c.UploadURL = b.apiURL, b.uploadURL
	return c
}

// RedeliverMissed asks GitHub to deliver again every recent delivery that
// failed and that the ledger never recorded, newest first, at most
// redeliverMax per call. It is safe to call from several processes at
// once: a delivery arriving twice is recorded once (X-GitHub-Delivery).
func (b *Bot) RedeliverMissed(ctx context.Context) (Redelivered, error) {
	var res Redelivered
	gh := b.appClient()
	type seen struct {
		ok     bool
		latest *github.HookDelivery
	}
	byGUID := map[string]*seen{}
	var order []string // newest first
	horizon := b.now().Add(-redeliverLookback)
	opt := &github.ListCursorOptions{PerPage: 100}
	for page := 0; page < redeliverPages; page++ {
		ds, resp, err := gh.Apps.ListHookDeliveries(ctx, opt)
		if err != nil {
			return res, fmt.Errorf("list webhook deliveries: %w", err)
		}
		old := false
		for _, d := range ds {
			res.Listed++
			if d.GetDeliveredAt().Before(horizon) {
				old = true
				continue
			}
			s, ok := byGUID[d.GetGUID()]
			if !ok {
				s = &seen{latest: d}
				byGUID[d.GetGUID()] = s
				order = append(order, d.GetGUID())
			}
			if c := d.GetStatusCode(); c >= 200 && c <= 299 {
				s.ok = true
			}
		}
		if old || resp.Cursor == "" {
			break
		}
		opt.Cursor = resp.Cursor
	}
	var failed []string
	for _, g := range order {
		if !byGUID[g].ok && g != "" {
			failed = append(failed, g)
		}
	}
	if len(failed) == 0 {
		return res, nil
	}
	known, err := b.st.KnownDeliveries(ctx, failed)
	if err != nil {
		return res, err
	}
	now := b.now()
	for _, g := range failed {
		if known[g] {
			continue // recorded though GitHub saw no answer in time
		}
		res.Missed++
		b.mu.Lock()
		asked, recently := b.redelivered[g]
		b.mu.Unlock()
		if (recently && now.Sub(asked) < redeliverPause) || res.Asked >= redeliverMax {
			continue
		}
		d := byGUID[g].latest
		_, _, err := gh.Apps.RedeliverHookDelivery(ctx, d.GetID())
		var accepted *github.AcceptedError
		if err != nil && !errors.As(err, &accepted) {
			return res, fmt.Errorf("redeliver %s %s: %w", d.GetEvent(), g, err)
		}
		b.mu.Lock()
		b.redelivered[g] = now
		b.mu.Unlock()
		res.Asked++
		b.log.Info("asked GitHub to redeliver a missed webhook", "delivery", g, "event", d.GetEvent(), "action", d.GetAction(), "failed_at", d.GetDeliveredAt().UTC().Format(time.RFC3339))
	}
	return res, nil
}

// redeliverLoop looks for missed deliveries at start and then every
// interval until ctx ends, and prunes the ledger each time (retention.go).
func (b *Bot) redeliverLoop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if res, err := b.RedeliverMissed(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("look for missed webhook deliveries", "err", err)
		} else if res.Asked > 0 {
			b.log.Info("missed webhook deliveries", "missed", res.Missed, "asked", res.Asked)
		}
		if _, err := b.Prune(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("prune the ledger", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
