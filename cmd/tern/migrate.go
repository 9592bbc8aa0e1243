package main

import (
	"context"
	"fmt"
	"io"

	"github.com/ternhq/tern/store"
)

// runMigrate creates or upgrades the store's tables: tern migrate --config FILE.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cfgPath := newFlags("migrate", stderr)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, err := loadConfig(*cfgPath, webhookSecretKey)
	if err != nil {
		fmt.Fprintf(stderr, "tern migrate: %v\n", err)
		return 1
	}
	st, err := store.Open(ctx, cfg.Store.DSN)
	if err != nil {
		fmt.Fprintf(stderr, "tern migrate: %v\n", err)
		return 1
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		fmt.Fprintf(stderr, "tern migrate: %v\n", err)
		return 1
	}
	v, err := st.SchemaVersion(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "tern migrate: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "store migrated to version %d\n", v)
	return 0
}
