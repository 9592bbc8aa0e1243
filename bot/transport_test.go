package bot

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/fakegithub"
)

// sleeps records the waits of a RetryPolicy instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return nil
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// The retry transport waits out rate limits as GitHub sends them and
// retries 5xx only where a second send cannot duplicate anything, inside
// its budget. The fake answers the limits; a try past them reaches its
// routes, which answer these unauthenticated requests 401 (GET, PATCH) or
// 404 (POST, which has no route on that path).
func TestRetryTransport(t *testing.T) {
	for _, tc := range []struct {
		name     string
		method   string
		arm      func(gh *fakegithub.Server, p string)
		status   int             // final status seen by the caller
		tries    int             // requests the fake received
		waitLow  []time.Duration // each wait is at least this
		waitHigh []time.Duration // and at most this
	}{
		{"secondary limit with Retry-After", "GET", func(gh *fakegithub.Server, p string) { gh.SecondaryLimitNext("GET", p, 1, 90*time.Second) },
			401, 2, []time.Duration{90 * time.Second}, []time.Duration{90 * time.Second}},
		{"secondary limit without Retry-After waits a minute", "GET", func(gh *fakegithub.Server, p string) { gh.SecondaryLimitNext("GET", p, 1, 0) },
			401, 2, []time.Duration{time.Minute}, []time.Duration{time.Minute}},
		{"secondary limit on a POST is retried: nothing was performed", "POST", func(gh *fakegithub.Server, p string) { gh.SecondaryLimitNext("POST", p, 1, 61*time.Second) },
			404, 2, []time.Duration{61 * time.Second}, []time.Duration{61 * time.Second}},
		{"429 with Retry-After", "POST", func(gh *fakegithub.Server, p string) { gh.FailNext("POST", p, 429, 1) },
			404, 2, []time.Duration{time.Second}, []time.Duration{time.Second}},
		{"primary limit waits until x-ratelimit-reset", "GET", func(gh *fakegithub.Server, p string) { gh.PrimaryLimitNext("GET", p, 1, time.Now().Add(2*time.Minute)) },
			401, 2, []time.Duration{118 * time.Second}, []time.Duration{122 * time.Second}},
		{"a wait beyond the budget is not waited", "GET", func(gh *fakegithub.Server, p string) { gh.SecondaryLimitNext("GET", p, 1, time.Hour) },
			403, 1, nil, nil},
		{"5xx on GET retried with backoff", "GET", func(gh *fakegithub.Server, p string) { gh.FailNext("GET", p, 502, 2) },
			401, 3, []time.Duration{500 * time.Millisecond, time.Second}, []time.Duration{625 * time.Millisecond, 1250 * time.Millisecond}},
		{"5xx on GET gives up after its attempts", "GET", func(gh *fakegithub.Server, p string) { gh.FailNext("GET", p, 500, 10) },
			500, 4, []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second}, []time.Duration{625 * time.Millisecond, 1250 * time.Millisecond, 2500 * time.Millisecond}},
		{"5xx on POST is not retried", "POST", func(gh *fakegithub.Server, p string) { gh.FailNext("POST", p, 502, 1) },
			502, 1, nil, nil},
		{"lost answer of a PATCH is retried", "PATCH", func(gh *fakegithub.Server, p string) { gh.LoseAnswerNext("PATCH", p, 1) },
			401, 2, []time.Duration{500 * time.Millisecond}, []time.Duration{625 * time.Millisecond}},
		{"403 that is no rate limit is not retried", "GET", func(gh *fakegithub.Server, p string) { gh.FailNext("GET", p, 403, 1) },
			403, 1, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gh, err := fakegithub.New()
			if err != nil {
				t.Fatal(err)
			}
			defer gh.Close()
			p := "/repos/acme/shop/check-runs/1"
			tc.arm(gh, p)
			var sl sleeps
			hc := &http.Client{Transport: newRetryTransport(http.DefaultTransport, RetryPolicy{Sleep: sl.sleep})}
			req, err := http.NewRequest(tc.method, strings.TrimSuffix(gh.URL, "/")+p, strings.NewReader(`{"name":"x"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			n := 0
			for _, r := range gh.Requests() {
				if r.Path == p {
					n++
					if tc.method != "GET" && len(r.Body) == 0 {
						t.Errorf("try %d sent no body", n)
					}
				}
			}
			if resp.StatusCode != tc.status || n != tc.tries {
				t.Errorf("status %d after %d tries, want %d after %d", resp.StatusCode, n, tc.status, tc.tries)
			}
			got := sl.all()
			if len(got) != len(tc.waitLow) {
				t.Fatalf("waits %v, want %d", got, len(tc.waitLow))
			}
			for i, d := range got {
				if d < tc.waitLow[i] || d > tc.waitHigh[i] {
					t.Errorf("wait %d = %v, want in [%v, %v]", i, d, tc.waitLow[i], tc.waitHigh[i])
				}
			}
		})
	}
}

// staleAfterFirst is a write guard that lets the first try through and
// refuses the others when stale.
type staleAfterFirst bool

func (s staleAfterFirst) sending(_ context.Context, resend bool) error {
	if resend && bool(s) {
		return errors.New("superseded")
	}
	return nil
}

func (staleAfterFirst) answered(context.Context) {}

// TestStaleWriteNotSentAgain: a write that waited out a 5xx or a rate
// limit is not sent again when its caller says the state it shows was
// superseded meanwhile (a newer report must not be overwritten by it);
// while the state is current it is sent again.
func TestStaleWriteNotSentAgain(t *testing.T) {
	for _, tc := range []struct {
		name  string
		arm   func(gh *fakegithub.Server, p string)
		stale bool
		tries int
	}{
		{"5xx, superseded", func(gh *fakegithub.Server, p string) { gh.FailNext("PATCH", p, 502, 1) }, true, 1},
		{"secondary limit, superseded", func(gh *fakegithub.Server, p string) { gh.SecondaryLimitNext("PATCH", p, 1, time.Minute) }, true, 1},
		{"5xx, current", func(gh *fakegithub.Server, p string) { gh.FailNext("PATCH", p, 502, 1) }, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gh, err := fakegithub.New()
			if err != nil {
				t.Fatal(err)
			}
			defer gh.Close()
			p := "/repos/acme/shop/check-runs/1"
			tc.arm(gh, p)
			var sl sleeps
			hc := &http.Client{Transport: newRetryTransport(http.DefaultTransport, RetryPolicy{Sleep: sl.sleep})}
			ctx := withWriteGuard(context.Background(), staleAfterFirst(tc.stale))
			req, err := http.NewRequestWithContext(ctx, "PATCH", strings.TrimSuffix(gh.URL, "/")+p, strings.NewReader(`{"name":"x"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if resp != nil {
				resp.Body.Close()
			}
			if tc.stale != errors.Is(err, errStaleWrite) {
				t.Errorf("err = %v, want errStaleWrite: %v", err, tc.stale)
			}
			n := 0
			for _, r := range gh.Requests() {
				if r.Path == p {
					n++
				}
			}
			if n != tc.tries {
				t.Errorf("%d tries, want %d", n, tc.tries)
			}
		})
	}
}
