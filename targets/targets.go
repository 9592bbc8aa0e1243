// Package targets builds, from the server config, the engine and shadow
// pool of each (repository, database, environment): direct DDL for MySQL
// targets (with pt-online-schema-change for the copies that would block
// writes, when mysql.online says so), deploy requests for PlanetScale
// ones.
package targets

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/go-sql-driver/mysql"

	"github.com/ternhq/tern/apply"
	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/engine"
	"github.com/ternhq/tern/engine/mysqlddl"
	"github.com/ternhq/tern/engine/psdeploy"
	"github.com/ternhq/tern/engine/ptosc"
	"github.com/ternhq/tern/engine/route"
	"github.com/ternhq/tern/plan"
)

// ClassNotConfigured is the error class of an apply whose target is not in
// the server config.
const ClassNotConfigured = "target_not_configured"

// Set resolves targets from the config and caches their engines and shadow
// pools until Close. It implements apply.Targets and is safe for
// concurrent use.
type Set struct {
	cfg *config.Config
	log *slog.Logger

	// PlanetScale holds the options PlanetScale engines are made with
	// (poll interval, HTTP client). Set it before the first Target call;
	// its Logger defaults to the Set's.
	PlanetScale psdeploy.Options

	mu      sync.Mutex
	closed  bool
	targets map[string]*apply.Target
	engines []engine.Engine
	shadows map[string]*sql.DB // by DSN
}

var _ apply.Targets = (*Set)(nil)

// New returns a Set over cfg's targets. Nothing connects until a target is
// used. A nil logger means slog.Default().
func New(cfg *config.Config, logger *slog.Logger) *Set {
	if logger == nil {
		logger = slog.Default()
	}
	return &Set{cfg: cfg, log: logger, targets: map[string]*apply.Target{}, shadows: map[string]*sql.DB{}}
}

// Target returns the engine and shadow pool of (repo, database, env),
// building them the first time. A target missing from the config is a
// permanent error of class target_not_configured that says what to add.
func (s *Set) Target(ctx context.Context, repo, database, env string) (*apply.Target, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("targets: closed")
	}
	key := strings.ToLower(repo) + "\x00" + database + "\x00" + env
	if t, ok := s.targets[key]; ok {
		return t, nil
	}
	tc, ok := s.cfg.Target(repo, database, env)
	if !ok {
		return nil, &engine.PermanentError{Class: ClassNotConfigured, Err: fmt.Errorf(
			"no target for repository %s, database %s, environment %s in the server config: "+
				"add an entry under targets: with repository: %s, database: %s, environment: %s and a mysql: or planetscale: section",
			repo, database, env, repo, database, env)}
	}
	t, err := s.build(tc)
	if err != nil {
		return nil, &engine.PermanentError{Class: "target_config", Err: fmt.Errorf(
			"target %s %s %s: %w", tc.Repository, tc.Database, tc.Environment, err)}
	}
	s.targets[key] = t
	return t, nil
}

func (s *Set) build(tc *config.Target) (*apply.Target, error) {
	switch {
	case tc.MySQL != nil:
		shadowDSN := tc.MySQL.ShadowDSN
		if shadowDSN == "" {
			shadowDSN = tc.MySQL.DSN
		}
		shadow, err := s.shadow(shadowDSN, tc.MySQL.ShadowDSN == "")
		if err != nil {
			return nil, fmt.Errorf("mysql.shadow_dsn: %w", err)
		}
		direct, err := mysqlddl.New(*tc.MySQL, tc.Database)
		if err != nil {
			return nil, err
		}
		cost := plan.CostOptions{MaxBlockingRows: tc.MySQL.BlockingRows()}
		var e engine.Engine = direct
		if tc.MySQL.Online == config.OnlinePTOSC {
			online, err := ptosc.New(*tc.MySQL, tc.Database, ptosc.Options{Logger: s.log})
			if err != nil {
				direct.Close()
				return nil, err
			}
			e = route.New(direct, online)
			cost.OnlineCopy = func(ctx context.Context, st plan.Statement) (string, error) {
				return online.Eligible(ctx, st.Table, st.DDL)
			}
		}
		s.engines = append(s.engines, e)
		return &apply.Target{Engine: e, Shadow: shadow, AllowedEngines: tc.AllowedEngines, Cost: cost}, nil
	case tc.PlanetScale != nil:
		shadowDSN, server := tc.PlanetScale.ShadowDSN, false
		if shadowDSN == "" {
			shadowDSN, server = s.cfg.Store.DSN, true
		}
		shadow, err := s.shadow(shadowDSN, server)
		if err != nil {
			return nil, fmt.Errorf("planetscale.shadow_dsn: %w", err)
		}
		opts := s.PlanetScale
		if opts.Logger == nil {
			opts.Logger = s.log
		}
		e, err := psdeploy.New(*tc.PlanetScale, opts)
		if err != nil {
			return nil, err
		}
		s.engines = append(s.engines, e)
		return &apply.Target{Engine: e, Shadow: shadow, AllowedEngines: tc.AllowedEngines, Cost: plan.CostOptions{Online: true}}, nil
	default:
		return nil, errors.New("neither mysql nor planetscale is set")
	}
}

// shadow returns a pool for shadow schemas on the server of dsn, shared by
// every target that uses the same server and credentials. With
// serverOnly, dsn's database name is dropped (the pool needs none).
func (s *Set) shadow(dsn string, serverOnly bool) (*sql.DB, error) {
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, errors.New("invalid DSN")
	}
	if serverOnly {
		mc.DBName = ""
	}
	mc.ParseTime = true
	key := mc.FormatDSN()
	if db, ok := s.shadows[key]; ok {
		return db, nil
	}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, errors.New("invalid DSN")
	}
	db := sql.OpenDB(conn)
	s.shadows[key] = db
	return db, nil
}

// Close closes every engine and shadow pool the Set made. The Set cannot
// be used afterwards.
func (s *Set) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	for _, e := range s.engines {
		if err := e.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, db := range s.shadows {
		if err := db.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	s.engines, s.targets, s.shadows = nil, map[string]*apply.Target{}, map[string]*sql.DB{}
	return errors.Join(errs...)
}
