package targets

import (
	"context"
	"strings"
	"testing"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/engine/route"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/plan"
)

// TestOnlineTarget: a MySQL target with mysql.online: pt-osc routes
// between the direct engine and pt-online-schema-change, and its plans ask
// the online engine about blocking statements: one it can take is
// ONLINE, one on a table without a key stays a COPY with the reason.
func TestOnlineTarget(t *testing.T) {
	ctx := context.Background()
	live, name := testdb.Open(t, "targets_online")
	for _, q := range []string{"CREATE TABLE keyed (id INT PRIMARY KEY, v INT)", "CREATE TABLE bare (v INT)"} {
		if _, err := live.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	cfg := &config.Config{Targets: []config.Target{{Repository: "a/b", Database: "d", Environment: "e",
		MySQL: &config.MySQL{DSN: dsn(t, name, nil), Online: config.OnlinePTOSC}}}}
	s := New(cfg, nil)
	defer s.Close()
	tg, err := s.Target(ctx, "a/b", "d", "e")
	if err != nil {
		t.Fatalf("Target: %v (is pt-online-schema-change installed? ./scripts/ensure-percona-toolkit.sh)", err)
	}
	if _, ok := tg.Engine.(*route.Engine); !ok {
		t.Fatalf("engine %T, want a routing engine", tg.Engine)
	}
	if tg.Cost.OnlineCopy == nil {
		t.Fatal("no online copier in the target's cost options")
	}
	for _, tt := range []struct{ table, want string }{{"keyed", ""}, {"bare", "no primary key"}} {
		got, err := tg.Cost.OnlineCopy(ctx, plan.Statement{Table: tt.table, Kind: plan.KindAlter, DDL: "ALTER TABLE `" + tt.table + "` MODIFY COLUMN `v` bigint"})
		if err != nil || (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("OnlineCopy(%s) = %q, %v; want %q", tt.table, got, err, tt.want)
		}
	}
}
