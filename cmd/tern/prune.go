package main

import (
	"context"
	"fmt"
	"io"

	"github.com/ternhq/tern/bot"
	"github.com/ternhq/tern/internal/app"
	"github.com/ternhq/tern/store"
)

// runPrune applies the config's retention policy to the ledger:
// tern prune --config FILE [--dry-run]. It prints what it removed (or,
// with --dry-run, what it would remove) as one line,
// `deliveries=N plans=N events=N`. The recovery pass prunes a few batches
// per pass by itself; this command removes everything due at once.
func runPrune(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cfgPath := newFlags("prune", stderr)
	dry := fs.Bool("dry-run", false, "count what would be removed; remove nothing")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, err := loadConfig(*cfgPath, webhookSecretKey)
	if err != nil {
		fmt.Fprintf(stderr, "tern prune: %v\n", err)
		return 1
	}
	st, err := app.OpenStore(ctx, cfg.Store.DSN)
	if err != nil {
		fmt.Fprintf(stderr, "tern prune: %v\n", err)
		return 1
	}
	defer st.Close()
	r := bot.Retention(cfg)
	var total store.Pruned
	for {
		p, err := st.Prune(ctx, r, *dry)
		total.Deliveries += p.Deliveries
		total.Plans += p.Plans
		total.Events += p.Events
		if err != nil {
			fmt.Fprintf(stderr, "tern prune: %v\n", err)
			return 1
		}
		if *dry || p == (store.Pruned{}) {
			break
		}
	}
	verb := "pruned"
	if *dry {
		verb = "would prune"
	}
	fmt.Fprintf(stdout, "%s deliveries=%d plans=%d events=%d (retention: deliveries %s, superseded plans %s, events %s)\n", verb,
		total.Deliveries, total.Plans, total.Events, cfg.Retention.Deliveries.D(), cfg.Retention.SupersededPlans.D(), cfg.Retention.Events.D())
	return 0
}
