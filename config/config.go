// Package config loads and validates tern's server configuration (the YAML
// file given to `tern serve`, `tern recover`, `tern plan` and `tern migrate`).
//
// Values may reference the environment as ${VAR}; references are replaced
// after the YAML is parsed, so a multi-line value such as a PEM key survives
// intact. An unset variable is an error that names the key holding it.
package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"gopkg.in/yaml.v3"
)

// Config is the server configuration.
type Config struct {
	// Listen is the address `tern serve` listens on. Default ":8080".
	Listen string `yaml:"listen"`
	// Store is where the ledger lives. Required by serve, recover and
	// migrate (RequireStore); plan does not use it.
	Store Store `yaml:"store"`
	// GitHub holds the GitHub App's credentials. Required by serve and
	// recover (to report on pull requests); optional for plan and migrate.
	GitHub GitHub `yaml:"github"`
	// Targets says where each (repository, database, environment) lives.
	Targets []Target `yaml:"targets"`
	// Recovery tunes retries and the recovery pass.
	Recovery Recovery `yaml:"recovery"`
	// Limits bound what one plan may read and how long it may take.
	Limits Limits `yaml:"limits"`
	// Retention bounds how long the ledger keeps old rows (retention.go).
	Retention Retention `yaml:"retention"`

	// targetIndex is, when LoadTarget dropped targets, the index in the
	// file of each of Targets, for error messages.
	targetIndex []int
}

// index is the index in the file of Targets[i].
func (c *Config) index(i int) int {
	if i < len(c.targetIndex) {
		return c.targetIndex[i]
	}
	return i
}

// Limits bound planning. Schema files come from whoever can push to a
// pull request, so a plan over a limit fails, saying which and by how
// much, before anything is sent to a server. 0 (or absent) takes the
// default.
type Limits struct {
	// MaxFileBytes caps one schema file, in bytes. Default 1048576 (1 MiB).
	MaxFileBytes int64 `yaml:"max_file_bytes"`
	// MaxTotalBytes caps all schema files of one database, in bytes.
	// Default 16777216 (16 MiB).
	MaxTotalBytes int64 `yaml:"max_total_bytes"`
	// MaxTables caps the CREATE TABLE statements of one database. Default
	// 5000.
	MaxTables int `yaml:"max_tables"`
	// PlanTimeout is the deadline of one plan against one target. Default
	// 2m.
	PlanTimeout Duration `yaml:"plan_timeout"`
}

// Store configures the MySQL ledger.
type Store struct {
	// DSN is a go-sql-driver/mysql DSN naming the ledger's database
	// (MySQL 8.0+ or MariaDB 10.6+). Required.
	DSN string `yaml:"dsn"`
}

// GitHub configures the GitHub App.
type GitHub struct {
	// APIURL is the REST API root. Default https://api.github.com/; for
	// GitHub Enterprise Server https://HOST/api/v3/.
	APIURL string `yaml:"api_url"`
	// AppID is the GitHub App's id.
	AppID int64 `yaml:"app_id"`
	// PrivateKey is the App's PEM private key. Exclusive with PrivateKeyFile.
	PrivateKey string `yaml:"private_key"`
	// PrivateKeyFile is a path to the App's PEM private key.
	PrivateKeyFile string `yaml:"private_key_file"`
	// WebhookSecret verifies X-Hub-Signature-256 on deliveries.
	WebhookSecret string `yaml:"webhook_secret"`
}

// Target says where one (repository, database, environment) lives. Exactly
// one of MySQL and PlanetScale is set.
type Target struct {
	Repository  string       `yaml:"repository"`
	Database    string       `yaml:"database"`
	Environment string       `yaml:"environment"`
	MySQL       *MySQL       `yaml:"mysql"`
	PlanetScale *PlanetScale `yaml:"planetscale"`
	// AllowedEngines are the storage engines a planned table may use,
	// checked on the shadow server's own SHOW CREATE TABLE whatever the
	// files said. Default [InnoDB]. Only engines that keep their data in
	// the database's files can be named: InnoDB, MyISAM, Aria, MEMORY.
	AllowedEngines []string `yaml:"allowed_engines"`
}

// plannableEngines are the engines allowed_engines may name: the ones
// the planner's own checks accept in schema files (plan.allowedEngines).
var plannableEngines = []string{"innodb", "myisam", "aria", "memory"}

// MySQL is a target applied with direct DDL.
type MySQL struct {
	// DSN is a go-sql-driver/mysql DSN. Its database name, when present, is
	// the live schema; otherwise the target's database name is. Its
	// parameters are honoured.
	DSN string `yaml:"dsn"`
	// LockWaitTimeout bounds how long one DDL may wait for a metadata lock.
	// Default 10s.
	LockWaitTimeout Duration `yaml:"lock_wait_timeout"`
	// ShadowDSN is the server that holds throwaway shadow schemas while
	// planning. Default: the target's own server.
	ShadowDSN string `yaml:"shadow_dsn"`
	// MaxBlockingRows: a statement that makes writes wait (a copy, or a
	// shared or exclusive lock) on a table with more rows than this needs
	// --allow-blocking. Default 1,000,000; 0 means every such statement
	// needs it.
	MaxBlockingRows *int64 `yaml:"max_blocking_rows"`
	// ProgressInterval is how often, at most, a long DDL's progress is
	// recorded and shown on the pull request. Default 30s.
	ProgressInterval Duration `yaml:"progress_interval"`
	// Online names the engine that runs, as an online row copy, the
	// statements that would otherwise make writes wait on a table over
	// MaxBlockingRows. Default "": none, every statement is direct DDL.
	// The one engine is OnlinePTOSC.
	Online string `yaml:"online"`
}

// OnlinePTOSC is the value of mysql.online that runs copying changes
// through pt-online-schema-change (percona-toolkit).
const OnlinePTOSC = "pt-osc"

// BlockingRows is MaxBlockingRows with its default.
func (m *MySQL) BlockingRows() int64 {
	if m.MaxBlockingRows == nil {
		return 1_000_000
	}
	return *m.MaxBlockingRows
}

// PlanetScale is a target applied through PlanetScale deploy requests.
type PlanetScale struct {
	Organization   string `yaml:"organization"`
	Database       string `yaml:"database"`
	Branch         string `yaml:"branch"`
	ServiceTokenID string `yaml:"service_token_id"`
	ServiceToken   string `yaml:"service_token"`
	// APIURL is the API root. Default https://api.planetscale.com/.
	APIURL string `yaml:"api_url"`
	// TLS makes branch connections use TLS. Default true; false only for a
	// local stand-in of the API.
	TLS *bool `yaml:"tls"`
	// ShadowDSN is the MySQL server that holds shadow schemas while
	// planning (PlanetScale branches cannot hold extra schemas). Default:
	// the store's server.
	ShadowDSN string `yaml:"shadow_dsn"`
}

// UseTLS reports whether branch connections use TLS.
func (p *PlanetScale) UseTLS() bool { return p.TLS == nil || *p.TLS }

// Recovery tunes the retry policy and the recovery pass.
type Recovery struct {
	// Interval runs the recovery pass inside `tern serve` this often, so
	// that the server retries by itself; 0 (written out) leaves passes to
	// `tern recover`. Default 30s (DefaultRecoveryInterval).
	Interval Duration `yaml:"interval"`
	// MaxAttempts is the attempts per apply before it fails for good.
	// Default 5.
	MaxAttempts int `yaml:"max_attempts"`
	// BackoffBase is the delay after the first failed attempt; attempt k
	// waits min(BackoffMax, BackoffBase*2^(k-1)) plus 0-20% jitter.
	// Default 1m.
	BackoffBase Duration `yaml:"backoff_base"`
	// BackoffMax caps the delay. Default 30m.
	BackoffMax Duration `yaml:"backoff_max"`
	// Lease is how long a worker owns a running apply without renewing it;
	// a running apply whose lease lapsed is rescued by the next pass.
	// Default 5m.
	Lease Duration `yaml:"lease"`
	// MaxRescues fails an apply for good (rescue_exhausted) once its worker
	// has died this many times. Default 3.
	MaxRescues int `yaml:"max_rescues"`
}

// DefaultRecoveryInterval is recovery.interval when the config leaves it
// out.
const DefaultRecoveryInterval = Duration(30 * time.Second)

// Duration is a time.Duration written in YAML as "10s", "1m" or "0".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Load reads, expands, defaults and validates the config file at path.
//
// unused names key paths (such as "github.webhook_secret", or "github"
// for every key under it) that the calling command does not read: an
// unset ${VAR} in one of them leaves
// that value empty instead of failing, so one server config serves
// `tern serve` and the recovery Action, whose step has no webhook secret.
// An unset variable anywhere else is an error naming the key.
func Load(path string, unused ...string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := parse(b, lookupExcept(os.LookupEnv, unused), nil)
	if err != nil {
		return nil, atFile(path, err)
	}
	return c, nil
}

// LoadTarget is Load for a command that uses only the targets keep
// accepts (tern plan): the others are dropped before their variables are
// expanded, so an unset variable in them is no error. Errors still name
// the kept targets by their index in the file.
func LoadTarget(path string, keep func(repository, database, environment string) bool, unused ...string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := parse(b, lookupExcept(os.LookupEnv, unused), keep)
	if err != nil {
		return nil, atFile(path, err)
	}
	return c, nil
}

// Parse parses YAML config text. lookup resolves ${VAR} references (use
// os.LookupEnv); an unset variable is an error naming the key.
func Parse(b []byte, lookup func(string) (string, bool)) (*Config, error) {
	return parse(b, func(_, name string) (string, bool) { return lookup(name) }, nil)
}

// keyLookup resolves ${VAR} name found in the value at key path.
type keyLookup func(path, name string) (string, bool)

// lookupExcept resolves variables with lookup, answering "" for an unset
// variable in one of the unused key paths.
func lookupExcept(lookup func(string) (string, bool), unused []string) keyLookup {
	return func(path, name string) (string, bool) {
		v, ok := lookup(name)
		if !ok && slices.ContainsFunc(unused, func(u string) bool { return path == u || strings.HasPrefix(path, u+".") }) {
			return "", true
		}
		return v, ok
	}
}

// parse parses config text; keep, when not nil, says which targets to
// keep (see LoadTarget).
func parse(b []byte, lookup keyLookup, keep func(repository, database, environment string) bool) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("parse yaml: %w", err)
	}
	if len(root.Content) == 0 {
		return nil, errors.New("config is empty")
	}
	// Unknown keys first: a misspelt block is reported as such, not as an
	// unset variable inside it.
	if err := checkKeys(&root, reflect.TypeOf(Config{}), "", false); err != nil {
		return nil, err
	}
	kept := keptTargets(root.Content[0], keep)
	if kept != nil {
		lookup = skipTargets(lookup, kept)
	}
	if err := expand(root.Content[0], "", lookup); err != nil {
		return nil, err
	}
	if err := checkKeys(&root, reflect.TypeOf(Config{}), "", true); err != nil {
		return nil, err
	}
	// The recovery loop runs unless the config says otherwise: "0s"
	// written out turns it off, an absent key is the default.
	c := Config{Recovery: Recovery{Interval: DefaultRecoveryInterval}}
	dec := root.Content[0]
	if err := decodeStrict(dec, &c); err != nil {
		return nil, err
	}
	if kept != nil {
		var ts []Target
		for i, t := range c.Targets {
			if kept[i] {
				ts = append(ts, t)
				c.targetIndex = append(c.targetIndex, i)
			}
		}
		c.Targets = ts
	}
	c.setDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func decodeStrict(n *yaml.Node, v any) error {
	// Re-encode and decode with KnownFields so that a misspelt key is
	// reported instead of silently ignored.
	b, err := yaml.Marshal(n)
	if err != nil {
		return fmt.Errorf("parse yaml: %w", err)
	}
	d := yaml.NewDecoder(strings.NewReader(string(b)))
	d.KnownFields(true)
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("parse yaml: %w", err)
	}
	return nil
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand replaces ${VAR} in every scalar value, tracking the key path for
// error messages.
func expand(n *yaml.Node, path string, lookup keyLookup) error {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			p := key
			if path != "" {
				p = path + "." + key
			}
			if err := expand(n.Content[i+1], p, lookup); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := expand(c, fmt.Sprintf("%s[%d]", path, i), lookup); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		var missing string
		out := varRef.ReplaceAllStringFunc(n.Value, func(m string) string {
			name := m[2 : len(m)-1]
			v, ok := lookup(path, name)
			if !ok && missing == "" {
				missing = name
			}
			return v
		})
		if missing != "" {
			return fmt.Errorf("%s: environment variable %s is not set", path, missing)
		}
		if out != n.Value {
			n.Value = out
			// An expanded value is always a string, whatever it looks like,
			// except where the field wants a number (app_id) — yaml decodes
			// "!!str" into int fields only if untagged, so drop the tag.
			n.Tag = ""
			n.Style = 0
			if strings.Contains(out, "\n") {
				n.Style = yaml.LiteralStyle
			}
		}
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = ":8080"
	}
	if c.GitHub.APIURL == "" {
		c.GitHub.APIURL = "https://api.github.com/"
	}
	if !strings.HasSuffix(c.GitHub.APIURL, "/") {
		c.GitHub.APIURL += "/"
	}
	for i := range c.Targets {
		t := &c.Targets[i]
		if t.MySQL != nil && t.MySQL.LockWaitTimeout == 0 {
			t.MySQL.LockWaitTimeout = Duration(10 * time.Second)
		}
		if t.PlanetScale != nil {
			if t.PlanetScale.APIURL == "" {
				t.PlanetScale.APIURL = "https://api.planetscale.com/"
			}
			if t.PlanetScale.Branch == "" {
				t.PlanetScale.Branch = "main"
			}
		}
	}
	r := &c.Recovery
	if r.MaxAttempts == 0 {
		r.MaxAttempts = 5
	}
	if r.BackoffBase == 0 {
		r.BackoffBase = Duration(time.Minute)
	}
	if r.BackoffMax == 0 {
		r.BackoffMax = Duration(30 * time.Minute)
	}
	if r.Lease == 0 {
		r.Lease = Duration(5 * time.Minute)
	}
	if r.MaxRescues == 0 {
		r.MaxRescues = 3
	}
	c.Retention.defaults()
}

// Validate checks the config and reports the first problem with its key
// path, e.g. "targets[1].mysql.dsn: required".
func (c *Config) Validate() error {
	var errs []error
	bad := func(path, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, a...)))
	}
	// store.dsn is required only by the commands that use the ledger
	// (RequireStore).
	if c.Store.DSN != "" {
		if _, err := mysql.ParseDSN(c.Store.DSN); err != nil {
			bad("store.dsn", "invalid DSN: %s", redactDSNError(err))
		}
	}
	if _, err := url.Parse(c.GitHub.APIURL); err != nil {
		bad("github.api_url", "invalid URL")
	}
	c.Retention.validate(bad)
	if c.GitHub.PrivateKey != "" && c.GitHub.PrivateKeyFile != "" {
		bad("github.private_key", "set private_key or private_key_file, not both")
	}
	seen := map[string]int{}
	for i, t := range c.Targets {
		p := fmt.Sprintf("targets[%d]", c.index(i))
		if t.Repository == "" {
			bad(p+".repository", "required (owner/name)")
		} else if strings.Count(t.Repository, "/") != 1 {
			bad(p+".repository", "%q is not owner/name", t.Repository)
		}
		if t.Database == "" {
			bad(p+".database", "required")
		}
		if t.Environment == "" {
			bad(p+".environment", "required")
		}
		key := strings.ToLower(t.Repository) + "\x00" + t.Database + "\x00" + t.Environment
		if j, ok := seen[key]; ok {
			bad(p, "duplicates targets[%d] (%s %s %s)", j, t.Repository, t.Database, t.Environment)
		}
		seen[key] = c.index(i)
		for j, e := range t.AllowedEngines {
			if !slices.Contains(plannableEngines, strings.ToLower(e)) {
				bad(fmt.Sprintf("%s.allowed_engines[%d]", p, j), "%q is not an engine tern plans (InnoDB, MyISAM, Aria or MEMORY)", e)
			}
		}
		switch {
		case t.MySQL != nil && t.PlanetScale != nil:
			bad(p, "set mysql or planetscale, not both")
		case t.MySQL == nil && t.PlanetScale == nil:
			bad(p, "one of mysql or planetscale is required")
		case t.MySQL != nil:
			m := t.MySQL
			if m.DSN == "" {
				bad(p+".mysql.dsn", "required")
			} else if _, err := mysql.ParseDSN(m.DSN); err != nil {
				bad(p+".mysql.dsn", "invalid DSN: %s", redactDSNError(err))
			}
			if m.ShadowDSN != "" {
				if _, err := mysql.ParseDSN(m.ShadowDSN); err != nil {
					bad(p+".mysql.shadow_dsn", "invalid DSN: %s", redactDSNError(err))
				}
			}
			if m.LockWaitTimeout < 0 || (m.LockWaitTimeout > 0 && m.LockWaitTimeout.D() < time.Second) {
				bad(p+".mysql.lock_wait_timeout", "must be at least 1s")
			}
			if m.MaxBlockingRows != nil && *m.MaxBlockingRows < 0 {
				bad(p+".mysql.max_blocking_rows", "must be 0 or more")
			}
			if m.ProgressInterval < 0 {
				bad(p+".mysql.progress_interval", "must be 0 or more")
			}
			if m.Online != "" && m.Online != OnlinePTOSC {
				bad(p+".mysql.online", "unknown online engine %q; the only one is %s (pt-online-schema-change), or leave it out for direct DDL", m.Online, OnlinePTOSC)
			}
		case t.PlanetScale != nil:
			ps := t.PlanetScale
			for _, f := range []struct{ k, v string }{
				{"organization", ps.Organization}, {"database", ps.Database},
				{"service_token_id", ps.ServiceTokenID}, {"service_token", ps.ServiceToken},
			} {
				if f.v == "" {
					bad(p+".planetscale."+f.k, "required")
				}
			}
			if u, err := url.Parse(ps.APIURL); err != nil || u.Scheme == "" || u.Host == "" {
				bad(p+".planetscale.api_url", "invalid URL %q", ps.APIURL)
			}
			if ps.ShadowDSN != "" {
				if _, err := mysql.ParseDSN(ps.ShadowDSN); err != nil {
					bad(p+".planetscale.shadow_dsn", "invalid DSN: %s", redactDSNError(err))
				}
			}
		}
	}
	r := c.Recovery
	if r.Interval < 0 {
		bad("recovery.interval", "must not be negative")
	}
	if r.MaxAttempts < 1 {
		bad("recovery.max_attempts", "must be at least 1")
	}
	if r.BackoffBase < 0 {
		bad("recovery.backoff_base", "must not be negative")
	}
	if r.BackoffMax < r.BackoffBase {
		bad("recovery.backoff_max", "must be at least backoff_base")
	}
	if r.Lease.D() < time.Second {
		bad("recovery.lease", "must be at least 1s")
	}
	if r.MaxRescues < 1 {
		bad("recovery.max_rescues", "must be at least 1")
	}
	l := c.Limits
	for _, f := range []struct {
		k string
		v int64
	}{{"max_file_bytes", l.MaxFileBytes}, {"max_total_bytes", l.MaxTotalBytes}, {"max_tables", int64(l.MaxTables)}, {"plan_timeout", int64(l.PlanTimeout)}} {
		if f.v < 0 {
			bad("limits."+f.k, "must not be negative (0 or absent: the default)")
		}
	}
	return errors.Join(errs...)
}

// redactDSNError keeps a DSN parse error from echoing the DSN (and its
// password) back.
func redactDSNError(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, ":"); i > 0 && strings.Contains(msg[i:], "@") {
		return msg[:i]
	}
	return msg
}

// RequireStore checks the key that opening the ledger needs: serve,
// recover and migrate call it; plan does not use the ledger.
func (c *Config) RequireStore() error {
	if c.Store.DSN == "" {
		return errors.New("store.dsn: required (a go-sql-driver DSN such as user:pass@tcp(host:3306)/tern)")
	}
	return nil
}

// RequireGitHub checks the keys that talking to GitHub needs.
func (c *Config) RequireGitHub() error {
	var errs []error
	if c.GitHub.AppID == 0 {
		errs = append(errs, errors.New("github.app_id: required"))
	}
	if c.GitHub.PrivateKey == "" && c.GitHub.PrivateKeyFile == "" {
		errs = append(errs, errors.New("github.private_key: required (PEM text, or private_key_file: PATH)"))
	}
	return errors.Join(errs...)
}

// PrivateKeyPEM returns the App's private key, reading private_key_file
// when that is how it was given.
func (g *GitHub) PrivateKeyPEM() ([]byte, error) {
	if g.PrivateKey != "" {
		return []byte(g.PrivateKey), nil
	}
	b, err := os.ReadFile(g.PrivateKeyFile)
	if err != nil {
		return nil, fmt.Errorf("github.private_key_file: %w", err)
	}
	return b, nil
}

// Target returns the target for (repository, database, environment).
// Repository names compare case-insensitively, as GitHub's do.
func (c *Config) Target(repo, database, env string) (*Target, bool) {
	for i := range c.Targets {
		t := &c.Targets[i]
		if strings.EqualFold(t.Repository, repo) && t.Database == database && t.Environment == env {
			return t, true
		}
	}
	return nil, false
}

// Secrets lists every secret value in the config (passwords inside DSNs,
// tokens, keys), for masking in logs and GitHub Actions.
func (c *Config) Secrets() []string {
	var out []string
	add := func(s string) {
		if s != "" {
			out = append(out, s)
		}
	}
	dsnPass := func(dsn string) {
		if cfg, err := mysql.ParseDSN(dsn); err == nil {
			add(cfg.Passwd)
		}
	}
	dsnPass(c.Store.DSN)
	add(c.GitHub.PrivateKey)
	add(c.GitHub.WebhookSecret)
	for _, t := range c.Targets {
		if t.MySQL != nil {
			dsnPass(t.MySQL.DSN)
			dsnPass(t.MySQL.ShadowDSN)
		}
		if t.PlanetScale != nil {
			add(t.PlanetScale.ServiceToken)
			dsnPass(t.PlanetScale.ShadowDSN)
		}
	}
	return out
}
