package bot

import (
	"context"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/store"
)

// Retention is the ledger's retention policy that cfg's `retention:`
// sets, in the small batches a pass prunes.
func Retention(cfg *config.Config) store.Retention {
	r := cfg.Retention
	return store.Retention{Deliveries: r.Deliveries.D(), SupersededPlans: r.SupersededPlans.D(), Events: r.Events.D()}
}

// Prune removes what the retention policy no longer keeps, a few batches
// at a time (the server does it every redelivery look, the recovery pass
// once per pass), and logs what it removed.
func (b *Bot) Prune(ctx context.Context) (store.Pruned, error) {
	p, err := b.st.Prune(ctx, Retention(b.cfg), false)
	if p != (store.Pruned{}) {
		b.log.Info("pruned the ledger", "deliveries", p.Deliveries, "plans", p.Plans, "events", p.Events)
	}
	return p, err
}
