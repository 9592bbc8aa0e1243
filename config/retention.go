package config

import "time"

// Retention says how long the ledger keeps what nothing needs any more;
// the recovery pass (in `tern serve` and `tern recover`) prunes it in small
// batches, and `tern prune --dry-run` shows what it would remove. Nothing
// an open pull request, an active apply or a pending report needs is
// removed, whatever its age.
type Retention struct {
	// Deliveries keeps processed webhook deliveries (payloads included)
	// this long after they arrived. Default 336h (14 days); at least 72h,
	// the three days of GitHub's delivery log that tern reads to find
	// missed deliveries.
	Deliveries Duration `yaml:"deliveries"`
	// SupersededPlans keeps a plan that a newer plan of the same PR and
	// target replaced, and that no apply ran, this long. Default 720h
	// (30 days).
	SupersededPlans Duration `yaml:"superseded_plans"`
	// Events keeps the audit events of an apply this long after it ended
	// and was reported. Default 4320h (180 days).
	Events Duration `yaml:"events"`
}

// minDeliveryRetention is GitHub's delivery log window.
const minDeliveryRetention = 72 * time.Hour

func (r *Retention) defaults() {
	if r.Deliveries == 0 {
		r.Deliveries = Duration(14 * 24 * time.Hour)
	}
	if r.SupersededPlans == 0 {
		r.SupersededPlans = Duration(30 * 24 * time.Hour)
	}
	if r.Events == 0 {
		r.Events = Duration(180 * 24 * time.Hour)
	}
}

func (r Retention) validate(bad func(path, format string, a ...any)) {
	if d := r.Deliveries.D(); d != 0 && d < minDeliveryRetention { // 0: not defaulted, keeps forever
		bad("retention.deliveries", "at least 72h (GitHub's delivery log is read back three days to find missed deliveries), got %s", r.Deliveries.D())
	}
	for k, d := range map[string]Duration{"retention.superseded_plans": r.SupersededPlans, "retention.events": r.Events} {
		if d < 0 {
			bad(k, "must not be negative, got %s", d.D())
		}
	}
}
