package targets

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/engine"
	"github.com/ternhq/tern/engine/mysqlddl"
	"github.com/ternhq/tern/engine/psdeploy"
	"github.com/ternhq/tern/internal/testdb"
)

func dsn(t *testing.T, db string, params map[string]string) string {
	t.Helper()
	c := testdb.Config(t)
	c.DBName = db
	c.Params = params
	return c.FormatDSN()
}

func scalar(t *testing.T, db *sql.DB, q string) sql.NullString {
	t.Helper()
	var v sql.NullString
	if err := db.QueryRowContext(context.Background(), q).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

func TestTargets(t *testing.T) {
	ctx := context.Background()
	_, staging := testdb.New(t, "targets")
	_, store := testdb.New(t, "targets_store")
	no := false
	cfg := &config.Config{
		Store: config.Store{DSN: dsn(t, store, nil)},
		Targets: []config.Target{
			{Repository: "acme/shop", Database: "shop", Environment: "staging",
				MySQL: &config.MySQL{DSN: dsn(t, "", nil)}},
			{Repository: "acme/shop", Database: "shop", Environment: "qa",
				MySQL: &config.MySQL{DSN: dsn(t, staging, nil), ShadowDSN: dsn(t, "", map[string]string{"sql_mode": "'ANSI_QUOTES'"})}},
			{Repository: "acme/shop", Database: "shop", Environment: "production",
				PlanetScale: &config.PlanetScale{Organization: "acme", Database: "shop", Branch: "main",
					ServiceTokenID: "id", ServiceToken: "tok", APIURL: "http://127.0.0.1:1/", TLS: &no}},
		},
	}
	s := New(cfg, nil)
	defer s.Close()

	t.Run("mysql: database from the target, shadow on the target's server", func(t *testing.T) {
		// No database named "shop" exists; the engine must use it as the
		// live schema name, and the shadow must name no database.
		tg, err := s.Target(ctx, "ACME/Shop", "shop", "staging")
		if err != nil {
			t.Fatal(err)
		}
		e, ok := tg.Engine.(*mysqlddl.Engine)
		if !ok || e.Database() != "shop" {
			t.Fatalf("engine %T database %q", tg.Engine, e.Database())
		}
		if v := scalar(t, tg.Shadow, "SELECT DATABASE()"); v.Valid {
			t.Errorf("shadow pool has default database %q, want none", v.String)
		}
		again, err := s.Target(ctx, "acme/shop", "shop", "staging")
		if err != nil || again != tg {
			t.Errorf("second Target call did not return the cached target")
		}
	})

	t.Run("mysql: shadow_dsn", func(t *testing.T) {
		tg, err := s.Target(ctx, "acme/shop", "shop", "qa")
		if err != nil {
			t.Fatal(err)
		}
		live, err := tg.Engine.Live(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v := scalar(t, live, "SELECT DATABASE()"); v.String != staging {
			t.Errorf("live database %q, want the DSN's %q", v.String, staging)
		}
		if v := scalar(t, tg.Shadow, "SELECT @@SESSION.sql_mode"); !strings.Contains(v.String, "ANSI_QUOTES") {
			t.Errorf("shadow pool does not use shadow_dsn: sql_mode %q", v.String)
		}
	})

	t.Run("planetscale: psdeploy with the store's server as shadow", func(t *testing.T) {
		tg, err := s.Target(ctx, "acme/shop", "shop", "production")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := tg.Engine.(*psdeploy.Engine); !ok {
			t.Fatalf("engine %T, want *psdeploy.Engine", tg.Engine)
		}
		if v := scalar(t, tg.Shadow, "SELECT DATABASE()"); v.Valid {
			t.Errorf("shadow pool has default database %q, want none", v.String)
		}
	})

	t.Run("missing target", func(t *testing.T) {
		_, err := s.Target(ctx, "acme/shop", "shop", "preview")
		if err == nil {
			t.Fatal("want an error")
		}
		for _, want := range []string{"acme/shop", "shop", "preview", "targets:"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
		}
		if engine.IsRetryable(err) || engine.Class(err) != ClassNotConfigured {
			t.Errorf("class %q retryable %v", engine.Class(err), engine.IsRetryable(err))
		}
	})

	t.Run("close", func(t *testing.T) {
		tg, err := s.Target(ctx, "acme/shop", "shop", "staging")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if err := tg.Shadow.PingContext(ctx); err == nil {
			t.Error("shadow pool still open after Close")
		}
		if _, err := tg.Engine.Live(ctx); err == nil {
			t.Error("engine still open after Close")
		}
		if _, err := s.Target(ctx, "acme/shop", "shop", "staging"); err == nil {
			t.Error("Target after Close: want an error")
		}
	})
}
