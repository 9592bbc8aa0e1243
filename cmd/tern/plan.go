package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ternhq/tern/config"
	"github.com/ternhq/tern/plan"
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
	config, dir, database, env, repo string
	json                             bool
}

// runPlan plans a local checkout against a configured target:
// tern plan --config FILE --dir CHECKOUT -d DB -e ENV [--repo OWNER/NAME] [--json].
// It exits 0 when there is nothing to change, 2 when there is, 1 on error.
func runPlan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a, err := parsePlanArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return planNoChanges
	}
	if err != nil {
		fmt.Fprintf(stderr, "tern plan: %v\n", err)
		return planError
	}
	p, target, err := planCheckout(ctx, a)
	if err != nil {
		fmt.Fprintf(stderr, "tern plan: %v\n", err)
		return planError
	}
	if a.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(p); err != nil {
			fmt.Fprintf(stderr, "tern plan: %v\n", err)
			return planError
		}
	} else {
		printPlan(stdout, target, p)
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
	fs.StringVar(&a.dir, "dir", ".", "the repository checkout `DIR` holding tern.yaml")
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
		return a, fmt.Errorf("unexpected argument %q (flags: --dir CHECKOUT -d DB -e ENV [--repo OWNER/NAME] [--json])", extra[0])
	}
	a.config = *cfg
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
	repo, database, env, schemaDir, live string
}

// planCheckout reads the checkout and the config, connects to the target
// and plans.
func planCheckout(ctx context.Context, a planArgs) (*plan.Plan, planTarget, error) {
	cfg, err := loadConfig(a.config, webhookSecretKey)
	if err != nil {
		return nil, planTarget{}, err
	}
	repoFile := filepath.Join(a.dir, config.RepoFile)
	b, err := os.ReadFile(repoFile)
	if err != nil {
		return nil, planTarget{}, fmt.Errorf("read %s: %w", config.RepoFile, err)
	}
	repo, err := config.ParseRepo(b)
	if err != nil {
		return nil, planTarget{}, err
	}
	db, ok := repo.Database(a.database)
	if !ok {
		var names []string
		for _, d := range repo.Databases {
			names = append(names, d.Name)
		}
		return nil, planTarget{}, fmt.Errorf("database %q is not in %s (it lists: %s)", a.database, config.RepoFile, strings.Join(names, ", "))
	}
	if !slices.Contains(db.Environments, a.env) {
		return nil, planTarget{}, fmt.Errorf("environment %q is not listed for database %s in %s (it lists: %s)", a.env, db.Name, config.RepoFile, strings.Join(db.Environments, ", "))
	}
	t, err := findTarget(cfg, a.repo, a.database, a.env)
	if err != nil {
		return nil, planTarget{}, err
	}
	desired, err := plan.LoadDir(a.dir, db.SchemaDir)
	if err != nil {
		return nil, planTarget{}, err
	}
	// The same engines the apply runner uses: a MySQL target's own server,
	// or a PlanetScale branch password, for the live schema.
	set := targets.New(cfg, slog.New(slog.DiscardHandler))
	defer set.Close()
	tg, err := set.Target(ctx, t.Repository, t.Database, t.Environment)
	if err != nil {
		return nil, planTarget{}, err
	}
	live, err := tg.Engine.Live(ctx)
	if err != nil {
		return nil, planTarget{}, fmt.Errorf("connect to the live schema: %w", err)
	}
	var schema string
	if err := live.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&schema); err != nil {
		return nil, planTarget{}, fmt.Errorf("connect to the live schema: %w", err)
	}
	p, err := (&plan.Planner{}).Plan(ctx, desired, live, tg.Shadow)
	if err != nil {
		return nil, planTarget{}, err
	}
	return p, planTarget{repo: t.Repository, database: db.Name, env: a.env, schemaDir: db.SchemaDirClean(), live: schema}, nil
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
	fmt.Fprintf(w, "-- tern plan: %s, database %s, environment %s (live schema %s, desired %s)\n", t.repo, t.database, t.env, t.live, t.schemaDir)
	if !p.HasChanges() {
		fmt.Fprintln(w, "No changes: the live schema matches the desired schema.")
		return
	}
	fmt.Fprintln(w)
	for _, s := range p.Statements {
		note := ""
		if s.Instant {
			note = " -- instant on MySQL 8"
		}
		fmt.Fprintf(w, "%s;%s\n\n", s.DDL, note)
	}
	if len(p.Findings) > 0 {
		fmt.Fprintln(w, "Lint:")
		for _, f := range p.Findings {
			fmt.Fprintf(w, "  %-7s %s: %s\n", f.Severity, f.Table, f.Message)
		}
		fmt.Fprintln(w)
	}
	counts := map[string]int{}
	for _, s := range p.Statements {
		counts[s.Kind]++
	}
	unsafe := len(p.Unsafe())
	summary := fmt.Sprintf("Plan: %d statements (%d create, %d alter, %d drop), %d unsafe, %d warnings.",
		len(p.Statements), counts[plan.KindCreate], counts[plan.KindAlter], counts[plan.KindDrop], unsafe, len(p.Findings)-unsafe)
	if unsafe > 0 {
		summary += " Applying needs --allow-unsafe."
	}
	fmt.Fprintln(w, summary)
}
