package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/sethvargo/go-githubactions"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/internal/actions"
	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/report"
	"github.com/ternhq/tern/targets"
)

// Exit codes of tern plan.
const (
	planNoChanges = 0
	planError     = 1
	planChanges   = 2
)

// planArgs are tern plan's flags.
type planArgs struct {
	config, dsn, dir, database, env, repo string
	json                                  bool
}

// runPlan plans a local checkout against a configured target:
// tern plan --config FILE --dir CHECKOUT -d DB -e ENV [--repo OWNER/NAME] [--json],
// or against a live schema named by a DSN, with no config file:
// tern plan --dsn DSN --dir DIR [-d DB] [--json].
// It exits 0 when there is nothing to change, 2 when there is, 1 on error.
func runPlan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return planMain(ctx, args, stdout, stderr, os.Getenv)
}

// planMain runs tern plan with its environment (getenv) injected. Inside
// GitHub Actions it also sets the outputs changes, statements and unsafe,
// writes the plan as the step summary, and exits 0 whenever it planned,
// unless the fail-on input (unsafe, changes, never) says otherwise.
func planMain(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	var gha *githubactions.Action
	if actions.Enabled(getenv) {
		gha = githubactions.New(githubactions.WithGetenv(getenv), githubactions.WithWriter(stdout))
	}
	fail := func(err error) int {
		if gha != nil {
			gha.Errorf("tern plan: %v", err)
		}
		fmt.Fprintf(stderr, "tern plan: %v\n", err)
		return planError
	}
	a, err := parsePlanArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return planNoChanges
	}
	if err != nil {
		return fail(err)
	}
	failOn := actions.FailOnNever
	if gha != nil {
		if failOn, err = actions.ParseFailOn(gha.GetInput("fail-on")); err != nil {
			return fail(err)
		}
		if dc, err := mysql.ParseDSN(a.dsn); err == nil {
			actions.Mask(gha, []string{dc.Passwd})
		}
	}
	p, target, err := planCheckout(ctx, a)
	if gha != nil {
		actions.Mask(gha, target.secrets)
	}
	if err != nil {
		return fail(err)
	}
	if a.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(planJSONOf(target, p)); err != nil {
			return fail(err)
		}
	} else {
		printPlan(stdout, target, p)
	}
	if gha != nil {
		actions.WritePlan(gha, target.describe(), p)
		if why := failOn.Fails(p); why != "" {
			return fail(errors.New(why))
		}
		return planNoChanges
	}
	if p.HasChanges() {
		return planChanges
	}
	return planNoChanges
}

// parsePlanArgs parses flags wherever they are; a positional argument is an
// error.
func parsePlanArgs(args []string, stderr io.Writer) (planArgs, error) {
	var a planArgs
	fs, cfg := newFlags("plan", stderr)
	fs.StringVar(&a.dsn, "dsn", "", "plan against the live schema of this go-sql-driver `DSN` (its database name is the schema), with no config file")
	fs.StringVar(&a.dir, "dir", ".", "the repository checkout `DIR` holding tern.yaml (with --dsn, or a folder of *.sql files)")
	fs.StringVar(&a.database, "database", "", "the `DB` of tern.yaml to plan (required)")
	fs.StringVar(&a.database, "d", "", "short for --database")
	fs.StringVar(&a.env, "env", "", "the `ENV`ironment whose target to plan against (required)")
	fs.StringVar(&a.env, "e", "", "short for --env")
	fs.StringVar(&a.repo, "repo", "", "the `OWNER/NAME` of the target; default: the only target for DB and ENV")
	fs.BoolVar(&a.json, "json", false, "print the plan as JSON")
	// flag stops at the first non-flag argument: parse on past it, so
	// that flags after it still count.
	var extra []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return a, err
		}
		if fs.NArg() == 0 {
			break
		}
		extra = append(extra, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(extra) > 0 {
		return a, fmt.Errorf("unexpected argument %q (flags: --dir CHECKOUT -d DB -e ENV [--repo OWNER/NAME] [--json], or --dsn DSN --dir DIR [-d DB])", extra[0])
	}
	a.config = *cfg
	if a.dsn != "" {
		if a.repo != "" {
			return a, errors.New("--repo names a target of the config: with --dsn there is none")
		}
		return a, nil
	}
	switch {
	case a.database == "":
		return a, errors.New("-d DB is required")
	case a.env == "":
		return a, errors.New("-e ENV is required")
	}
	return a, nil
}

// planTarget names what a plan was made for.
type planTarget struct {
	repo, database, env, schemaDir, live, serverVersion string
	// secrets are the config's, to mask in a workflow log.
	secrets []string
}

// planUnused are the key paths of the server config that tern plan never
// reads: an unset ${VAR} in them is no error, and store.dsn may be absent
// (CONTRACT §2 names their users: serve, recover, migrate).
var planUnused = []string{"store", "github"}

// planCheckout reads the checkout and the config (or, with --dsn, makes
// the one target the DSN names), connects to the target and plans.
func planCheckout(ctx context.Context, a planArgs) (*plan.Plan, planTarget, error) {
	find := configTarget
	if a.dsn != "" {
		find = dsnTarget
	}
	src, err := find(a)
	if err != nil {
		return nil, planTarget{}, err
	}
	cfg, t := src.cfg, src.target
	masked := planTarget{secrets: cfg.Secrets()} // returned with errors too, for masking
	limits := plan.LimitsFromConfig(cfg.Limits)
	desired, err := limits.LoadDir(a.dir, src.schemaDir)
	if err != nil {
		return nil, masked, err
	}
	desired.Lint = src.lint
	// The same engines the apply runner uses: a MySQL target's own server,
	// or a PlanetScale branch password, for the live schema.
	set := targets.New(cfg, slog.New(slog.DiscardHandler))
	defer set.Close()
	tg, err := set.Target(ctx, t.Repository, t.Database, t.Environment)
	if err != nil {
		return nil, masked, err
	}
	live, err := tg.Engine.Live(ctx)
	if err != nil {
		return nil, masked, fmt.Errorf("connect to the live schema: %w", err)
	}
	var schema sql.NullString
	var version string
	if err := live.QueryRowContext(ctx, "SELECT DATABASE(), VERSION()").Scan(&schema, &version); err != nil {
		return nil, masked, fmt.Errorf("connect to the live schema: %w", err)
	}
	planner := &plan.Planner{Limits: limits, AllowedEngines: tg.AllowedEngines}
	p, err := planner.PlanAndCost(ctx, desired, live, tg.Shadow, tg.Cost)
	if err != nil {
		return nil, masked, err
	}
	return p, planTarget{repo: t.Repository, database: src.name, env: t.Environment, schemaDir: path.Clean(src.schemaDir), live: schema.String, serverVersion: version, secrets: masked.secrets}, nil
}

// planSource is what a plan reads besides the schema files: the config
// holding its target, the database's name and schema_dir, and the lint
// policy of tern.yaml.
type planSource struct {
	cfg       *config.Config
	target    *config.Target
	schemaDir string
	name      string
	lint      config.Lint
}

// configTarget finds the target of a.database and a.env in the server
// config and the database's schema_dir in the checkout's tern.yaml.
func configTarget(a planArgs) (planSource, error) {
	if a.config == "" {
		return planSource{}, errors.New("no config: pass --config FILE (or set TERN_CONFIG), or plan against a DSN with --dsn DSN --dir DIR")
	}
	// Only the target planned is read: the other targets' variables may
	// be unset.
	keep := func(repo, database, env string) bool {
		return database == a.database && env == a.env && (a.repo == "" || strings.EqualFold(repo, a.repo))
	}
	cfg, err := config.LoadTarget(a.config, keep, append([]string{webhookSecretKey}, planUnused...)...)
	if err != nil {
		return planSource{}, err
	}
	repo, err := readRepo(a.dir)
	if err != nil {
		return planSource{}, err
	}
	db, ok := repo.Database(a.database)
	if !ok {
		return planSource{}, fmt.Errorf("database %q is not in %s (it lists: %s)", a.database, config.RepoFile, strings.Join(dbNames(repo), ", "))
	}
	if !slices.Contains(db.Environments, a.env) {
		return planSource{}, fmt.Errorf("environment %q is not listed for database %s in %s (it lists: %s)", a.env, db.Name, config.RepoFile, strings.Join(db.Environments, ", "))
	}
	t, err := findTarget(cfg, a.repo, a.database, a.env)
	if err != nil {
		return planSource{}, err
	}
	if ps := t.PlanetScale; ps != nil && ps.ShadowDSN == "" && cfg.Store.DSN == "" {
		return planSource{}, fmt.Errorf("target %s %s %s: planetscale.shadow_dsn is unset, so planning uses the store's server, and store.dsn is not set either: set one of them", t.Repository, t.Database, t.Environment)
	}
	return planSource{cfg: cfg, target: t, schemaDir: db.SchemaDir, name: db.Name, lint: repo.Lint}, nil
}

// dsnTarget makes the one MySQL target a.dsn names. The desired files are
// the schema_dir of a.database (or of the only database) when a.dir holds
// a tern.yaml, and the *.sql files of a.dir itself otherwise.
func dsnTarget(a planArgs) (planSource, error) {
	dc, err := mysql.ParseDSN(a.dsn)
	if err != nil {
		return planSource{}, fmt.Errorf("--dsn: %v", err)
	}
	if dc.DBName == "" {
		return planSource{}, errors.New("--dsn: name the live schema as the DSN's database, e.g. user:pass@tcp(127.0.0.1:3306)/shop")
	}
	schemaDir, name, lint := ".", dc.DBName, config.Lint{}
	if _, serr := os.Stat(filepath.Join(a.dir, config.RepoFile)); serr == nil {
		repo, err := readRepo(a.dir)
		if err != nil {
			return planSource{}, err
		}
		var db *config.RepoDatabase
		switch {
		case a.database != "":
			d, ok := repo.Database(a.database)
			if !ok {
				return planSource{}, fmt.Errorf("database %q is not in %s (it lists: %s)", a.database, config.RepoFile, strings.Join(dbNames(repo), ", "))
			}
			db = d
		case len(repo.Databases) == 1:
			db = &repo.Databases[0]
		default:
			return planSource{}, fmt.Errorf("%s lists several databases (%s): pass -d DB", config.RepoFile, strings.Join(dbNames(repo), ", "))
		}
		schemaDir, name, lint = db.SchemaDir, db.Name, repo.Lint
	} else if a.database != "" {
		name = a.database
	}
	cfg := &config.Config{Targets: []config.Target{{
		Database: name, Environment: a.env,
		MySQL: &config.MySQL{DSN: a.dsn, LockWaitTimeout: config.Duration(10 * time.Second)},
	}}}
	return planSource{cfg: cfg, target: &cfg.Targets[0], schemaDir: schemaDir, name: name, lint: lint}, nil
}

// readRepo reads and parses dir's tern.yaml.
func readRepo(dir string) (*config.Repo, error) {
	b, err := os.ReadFile(filepath.Join(dir, config.RepoFile))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", config.RepoFile, err)
	}
	return config.ParseRepo(b)
}

func dbNames(r *config.Repo) []string {
	var names []string
	for _, d := range r.Databases {
		names = append(names, d.Name)
	}
	return names
}

// findTarget finds the target for (repo, database, env); with repo empty,
// the only target for database and env.
func findTarget(cfg *config.Config, repo, database, env string) (*config.Target, error) {
	if repo != "" {
		t, ok := cfg.Target(repo, database, env)
		if !ok {
			return nil, fmt.Errorf("no target in the config for repository %s, database %s, environment %s", repo, database, env)
		}
		return t, nil
	}
	var found []*config.Target
	for i := range cfg.Targets {
		if t := &cfg.Targets[i]; t.Database == database && t.Environment == env {
			found = append(found, t)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("no target in the config for database %s, environment %s", database, env)
	case 1:
		return found[0], nil
	}
	var repos []string
	for _, t := range found {
		repos = append(repos, t.Repository)
	}
	return nil, fmt.Errorf("several targets for database %s, environment %s (%s): pass --repo OWNER/NAME", database, env, strings.Join(repos, ", "))
}

// printPlan prints the DDL, the lint findings and a summary.
func printPlan(w io.Writer, t planTarget, p *plan.Plan) {
	fmt.Fprintf(w, "-- tern plan: %s (live schema %s, desired %s)\n", t.describe(), t.live, t.schemaDir)
	if !p.HasChanges() {
		fmt.Fprintln(w, "No changes: the live schema matches the desired schema.")
		return
	}
	fmt.Fprintln(w)
	for _, s := range p.Statements {
		// How the target's own server runs it (plan.Cost), the same words
		// as the plan comment's cost table.
		note := ""
		if c := report.CostNote(s); c != "" {
			note = " -- " + c
		}
		fmt.Fprintf(w, "%s;%s\n\n", s.DDL, note)
	}
	if len(p.Findings) > 0 {
		fmt.Fprintln(w, "Lint:")
		for _, f := range p.Findings {
			check := ""
			if f.Check != "" {
				check = " (" + f.Check + ")"
			}
			fmt.Fprintf(w, "  %-7s %s: %s%s\n", report.FindingWord(f.Severity), f.Table, f.Message, check)
		}
		fmt.Fprintln(w)
	}
	summary := "Plan: " + report.SummaryLine(p) + "."
	blocking := len(p.Blocking())
	if len(p.Unsafe()) > 0 {
		summary += " Applying needs --allow-unsafe."
	}
	if blocking > 0 {
		summary += " Applying needs --allow-blocking."
	}
	fmt.Fprintln(w, summary)
}

// describe names the target: "acme/shop, database shop, environment
// staging", or with --dsn only the database.
func (t planTarget) describe() string {
	s := "database " + t.database
	if t.repo != "" {
		s = t.repo + ", " + s
	}
	if t.env != "" {
		s += ", environment " + t.env
	}
	return s
}
