package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/app"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/store"
)

// tern prune --dry-run counts what the retention policy (here the default
// 14 days for deliveries) would remove and removes nothing; tern prune
// removes it.
func TestPruneCommand(t *testing.T) {
	ctx := context.Background()
	dsn, _ := testdb.New(t, "prune_store")
	st, err := app.OpenStore(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, id := range []string{"old", "recent"} {
		if _, err := st.RecordDelivery(ctx, store.Delivery{ID: id, Event: "ping", Payload: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.DB().Exec("UPDATE tern_deliveries SET state = 'done', received_at = IF(id = 'old', ?, received_at)", time.Now().UTC().Add(-15*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "tern.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("store:\n  dsn: %q\n", dsn)), 0o600); err != nil {
		t.Fatal(err)
	}
	left := func() int {
		var n int
		if err := st.DB().QueryRow("SELECT COUNT(*) FROM tern_deliveries").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tc := range []struct {
		args []string
		out  string
		left int
	}{
		{[]string{"--dry-run"}, "would prune deliveries=1 plans=0 events=0", 2},
		{nil, "pruned deliveries=1 plans=0 events=0", 1},
	} {
		var stdout, stderr bytes.Buffer
		if code := runPrune(ctx, append([]string{"--config", cfg}, tc.args...), &stdout, &stderr); code != 0 {
			t.Fatalf("tern prune %v: exit %d\n%s", tc.args, code, stderr.String())
		}
		if !strings.HasPrefix(stdout.String(), tc.out) {
			t.Errorf("tern prune %v printed %q, want %q...", tc.args, stdout.String(), tc.out)
		}
		if n := left(); n != tc.left {
			t.Errorf("after tern prune %v: %d deliveries, want %d", tc.args, n, tc.left)
		}
	}
}
