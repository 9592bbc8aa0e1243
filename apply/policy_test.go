package apply

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	half := func() float64 { return 0.5 }
	zero := func() float64 { return 0 }
	almost := func() float64 { return 0.999999 }
	tests := []struct {
		name    string
		p       Policy
		attempt int
		want    time.Duration
	}{
		{"first attempt", Policy{BackoffBase: time.Minute, BackoffMax: 30 * time.Minute, Jitter: zero}, 1, time.Minute},
		{"second doubles", Policy{BackoffBase: time.Minute, BackoffMax: 30 * time.Minute, Jitter: zero}, 2, 2 * time.Minute},
		{"fifth", Policy{BackoffBase: time.Minute, BackoffMax: 30 * time.Minute, Jitter: zero}, 5, 16 * time.Minute},
		{"capped", Policy{BackoffBase: time.Minute, BackoffMax: 30 * time.Minute, Jitter: zero}, 6, 30 * time.Minute},
		{"huge attempt stays capped", Policy{BackoffBase: time.Minute, BackoffMax: 30 * time.Minute, Jitter: zero}, 500, 30 * time.Minute},
		{"attempt 0 is the first", Policy{BackoffBase: time.Second, BackoffMax: time.Minute, Jitter: zero}, 0, time.Second},
		{"jitter 10%", Policy{BackoffBase: time.Minute, BackoffMax: 30 * time.Minute, Jitter: half}, 1, 66 * time.Second},
		{"jitter on the cap", Policy{BackoffBase: time.Minute, BackoffMax: 30 * time.Minute, Jitter: half}, 9, 33 * time.Minute},
		{"jitter below 20%", Policy{BackoffBase: 10 * time.Second, BackoffMax: time.Minute, Jitter: almost}, 1, 10*time.Second + time.Duration(float64(10*time.Second)*0.2*0.999999)},
		{"defaults", Policy{Jitter: zero}, 3, 4 * time.Minute},
		{"out-of-range jitter ignored", Policy{BackoffBase: time.Minute, BackoffMax: time.Hour, Jitter: func() float64 { return 7 }}, 1, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Backoff(tt.attempt); got != tt.want {
				t.Errorf("Backoff(%d) = %v, want %v", tt.attempt, got, tt.want)
			}
		})
	}
}

func TestBackoffDefaultJitterBounds(t *testing.T) {
	p := Policy{BackoffBase: time.Minute, BackoffMax: time.Hour}
	for i := 0; i < 200; i++ {
		got := p.Backoff(2)
		if got < 2*time.Minute || got > 2*time.Minute+24*time.Second {
			t.Fatalf("Backoff(2) = %v, want within [2m, 2m24s]", got)
		}
	}
}

// TestInFlightWaitDefault: a wait on work still running on the target is
// 30 s, but never longer than the longest delay between attempts the team
// configured (backoff_max): a 1 s backoff_max re-checks in 1 s, not 30.
func TestInFlightWaitDefault(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    Policy
		want time.Duration
	}{
		{"defaults", Policy{}, 30 * time.Second},
		{"short backoff_max", Policy{BackoffBase: 100 * time.Millisecond, BackoffMax: time.Second}, time.Second},
		{"long backoff_max", Policy{BackoffBase: time.Minute, BackoffMax: time.Hour}, 30 * time.Second},
		{"set", Policy{BackoffMax: time.Second, InFlightWait: 5 * time.Second}, 5 * time.Second},
	} {
		if got := tt.p.withDefaults().InFlightWait; got != tt.want {
			t.Errorf("%s: InFlightWait = %v, want %v", tt.name, got, tt.want)
		}
	}
}
