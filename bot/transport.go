package bot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy bounds how the GitHub client waits out rate limits and
// retries failed requests. The zero value means the defaults.
type RetryPolicy struct {
	// Budget is the most one request may spend waiting (rate-limit waits
	// and backoffs together). A limit that asks for a longer wait is
	// returned to the caller at once; the delivery or report is retried
	// later by its own queue. Default 3 minutes.
	Budget time.Duration
	// Attempts bounds the tries of one request. Default 4.
	Attempts int
	// Backoff is the first wait before retrying a 5xx or a lost
	// connection; it doubles each time, with up to 25% jitter. Default
	// 500ms.
	Backoff time.Duration
	// TryTimeout bounds one try, answer included. Default 30s.
	TryTimeout time.Duration
	// Sleep waits d or until ctx is done. Default: a timer. Tests record
	// the waits instead.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Budget <= 0 {
		p.Budget = 3 * time.Minute
	}
	if p.Attempts <= 0 {
		p.Attempts = 4
	}
	if p.Backoff <= 0 {
		p.Backoff = 500 * time.Millisecond
	}
	if p.TryTimeout <= 0 {
		p.TryTimeout = 30 * time.Second
	}
	if p.Sleep == nil {
		p.Sleep = sleepCtx
	}
	return p
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// secondaryLimitWait is the wait GitHub's documentation asks for after a
// secondary rate limit that names none: "wait for at least one minute".
const secondaryLimitWait = time.Minute

// retryTransport waits out GitHub's rate limits and retries what is safe
// to retry, inside a bounded budget:
//
//   - a rate-limited answer (429, or 403 with Retry-After, with
//     x-ratelimit-remaining: 0, or naming a secondary rate limit) did not
//     perform the request, so any request is sent again after
//     Retry-After, or until x-ratelimit-reset, or a minute;
//   - a 5xx or a lost connection is retried with backoff only for
//     idempotent methods (GET, HEAD, PUT, PATCH of a whole state, DELETE):
//     a POST may have been performed, and its caller guards against a
//     duplicate instead (see createGuarded).
type retryTransport struct {
	next   http.RoundTripper
	policy RetryPolicy
	now    func() time.Time
}

func newRetryTransport(next http.RoundTripper, p RetryPolicy) *retryTransport {
	return &retryTransport{next: next, policy: p.withDefaults(), now: time.Now}
}

// idempotent reports whether sending req twice has the effect of sending
// it once. tern's PATCHes set a check run's or comment's whole state.
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// RoundTrip implements http.RoundTripper.
func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	spent := time.Duration(0)
	backoff := t.policy.Backoff
	guard, _ := ctx.Value(guardKey{}).(writeGuard)
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
		guard = nil
	}
	for attempt := 1; ; attempt++ {
		// A write is announced to its guard before each try: one that
		// would land after writes made meanwhile from a newer state (or by
		// a reporter that took over) is not sent.
		if guard != nil {
			if err := guard.sending(ctx, attempt > 1); err != nil {
				return nil, fmt.Errorf("%w: %w", errStaleWrite, err)
			}
		}
		tctx, cancel := context.WithTimeout(ctx, t.policy.TryTimeout)
		r := req.Clone(tctx)
		if body != nil {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		}
		resp, err := t.next.RoundTrip(r)
		if resp != nil && guard != nil {
			guard.answered(ctx)
		}
		if resp != nil {
			resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
		} else {
			cancel()
		}
		var wait time.Duration
		switch {
		case err != nil:
			if !idempotent(req.Method) || ctx.Err() != nil {
				return nil, err
			}
			wait = jitter(backoff)
			backoff *= 2
		case rateLimited(resp):
			wait = t.limitWait(resp)
		case resp.StatusCode >= 500 && idempotent(req.Method):
			wait = jitter(backoff)
			backoff *= 2
		default:
			return resp, nil
		}
		if attempt >= t.policy.Attempts || spent+wait > t.policy.Budget {
			return resp, err
		}
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
		}
		if serr := t.policy.Sleep(ctx, wait); serr != nil {
			return nil, serr
		}
		spent += wait
	}
}

// errStaleWrite ends a write that would land after writes of a newer
// state.
var errStaleWrite = errors.New("github write not sent: the state it shows was superseded meanwhile")

// writeGuard orders a reporter's GitHub writes against other reporters'.
type writeGuard interface {
	// sending is called before each try of a write (resend: a try after
	// a wait); an error refuses the try.
	sending(ctx context.Context, resend bool) error
	// answered is called once a try got GitHub's answer.
	answered(ctx context.Context)
}

type guardKey struct{}

// withWriteGuard returns ctx carrying g, which the retrying transport asks
// before each try of a write and tells of each answer.
func withWriteGuard(ctx context.Context, g writeGuard) context.Context {
	return context.WithValue(ctx, guardKey{}, g)
}

func jitter(d time.Duration) time.Duration {
	return d + time.Duration(rand.Int64N(int64(d)/4+1))
}

// rateLimited reports whether GitHub refused resp for a rate limit: a 429,
// or a 403 that says so (Retry-After, no requests left, or a secondary
// limit's message). A 403 for a missing permission is none of these.
func rateLimited(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		return true
	case http.StatusForbidden:
	default:
		return false
	}
	if resp.Header.Get("Retry-After") != "" || resp.Header.Get("X-Ratelimit-Remaining") == "0" {
		return true
	}
	// A secondary limit without headers is known by its message. Peek at
	// the body and put it back.
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return strings.Contains(strings.ToLower(string(b)), "rate limit")
}

// limitWait is how long GitHub asks to wait before the next try:
// Retry-After in seconds, else until x-ratelimit-reset when no requests
// are left, else the minute GitHub documents for secondary limits.
func (t *retryTransport) limitWait(resp *http.Response) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(resp.Header.Get("Retry-After"))); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if resp.Header.Get("X-Ratelimit-Remaining") == "0" {
		if reset, err := strconv.ParseInt(resp.Header.Get("X-Ratelimit-Reset"), 10, 64); err == nil {
			d := time.Unix(reset, 0).Sub(t.now())
			return max(d, 0) + time.Second
		}
	}
	return secondaryLimitWait
}

// cancelOnClose ends a try's context once its answer has been read.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
