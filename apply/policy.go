package apply

import (
	"math/rand/v2"
	"time"

	"github.com/ternhq/tern/config"
)

// Policy says how often an apply is tried and how long it waits between
// attempts.
type Policy struct {
	// MaxAttempts is the attempts an apply gets before a transient failure
	// fails it for good (retries_exhausted). An apply's own MaxAttempts,
	// when set, wins. Default 5.
	MaxAttempts int
	// BackoffBase is the delay after the first failed attempt. Default 1m.
	BackoffBase time.Duration
	// BackoffMax caps the delay (before jitter). Default 30m.
	BackoffMax time.Duration
	// Lease is how long a worker owns a running apply; the runner extends
	// it every Lease/3 while it works, and stops the attempt once the last
	// expiry the ledger confirmed, less Lease/4, has passed. Default 5m.
	Lease time.Duration
	// InFlightWait is how long an apply waits, without spending an
	// attempt, when work of an earlier attempt still runs on its target.
	// Default 30s, or BackoffMax when that is shorter.
	InFlightWait time.Duration
	// Jitter returns a number in [0, 1) that scales the 0-20% jitter added
	// to each delay. Default math/rand/v2.Float64.
	Jitter func() float64
}

// Defaults of a zero Policy's fields.
const (
	DefaultMaxAttempts  = 5
	DefaultBackoffBase  = time.Minute
	DefaultBackoffMax   = 30 * time.Minute
	DefaultLease        = 5 * time.Minute
	DefaultInFlightWait = 30 * time.Second
)

// PolicyFromConfig returns the policy of the server config's recovery
// section.
func PolicyFromConfig(r config.Recovery) Policy {
	return Policy{
		MaxAttempts: r.MaxAttempts,
		BackoffBase: r.BackoffBase.D(),
		BackoffMax:  r.BackoffMax.D(),
		Lease:       r.Lease.D(),
	}
}

func (p Policy) withDefaults() Policy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.BackoffBase <= 0 {
		p.BackoffBase = DefaultBackoffBase
	}
	if p.BackoffMax <= 0 {
		p.BackoffMax = DefaultBackoffMax
	}
	if p.BackoffMax < p.BackoffBase {
		p.BackoffMax = p.BackoffBase
	}
	if p.Lease <= 0 {
		p.Lease = DefaultLease
	}
	if p.InFlightWait <= 0 {
		// Never longer than the longest delay between attempts: a team
		// that retries within a second re-checks as often.
		p.InFlightWait = min(DefaultInFlightWait, p.BackoffMax)
	}
	if p.Jitter == nil {
		p.Jitter = rand.Float64
	}
	return p
}

// Backoff returns the delay after failed attempt number attempt (1-based):
// min(BackoffMax, BackoffBase * 2^(attempt-1)), plus 0-20% of that as
// jitter.
func (p Policy) Backoff(attempt int) time.Duration {
	p = p.withDefaults()
	if attempt < 1 {
		attempt = 1
	}
	d := p.BackoffMax
	if attempt-1 < 62 {
		if f := p.BackoffBase << (attempt - 1); f > 0 && f>>(attempt-1) == p.BackoffBase && f < d {
			d = f
		}
	}
	j := p.Jitter()
	if j < 0 || j >= 1 {
		j = 0
	}
	return d + time.Duration(float64(d)*0.2*j)
}
