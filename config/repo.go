package config

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// RepoFile is the name of the repository config at the repository root.
const RepoFile = "tern.yaml"

// Repo is a repository's tern.yaml, read at the pull request's head commit.
type Repo struct {
	// Databases lists the databases the repository manages.
	Databases []RepoDatabase `yaml:"databases"`
	// ApplyRequirements must hold before `/tern apply` runs: "approved"
	// (an approving review and no outstanding change request) and/or
	// "mergeable" (GitHub reports the PR mergeable).
	ApplyRequirements []string `yaml:"apply_requirements"`
	// Lint tunes the plan's lint checks. It is policy, like
	// apply_requirements.
	Lint Lint `yaml:"lint"`
}

// Lint is tern.yaml's lint: key.
type Lint struct {
	// Checks sets a check, by its id, to error (unsafe: applying needs
	// --allow-unsafe), warning (shown) or off. Unlisted checks keep their
	// default level (the README lists them).
	Checks map[string]string `yaml:"checks"`
	// Charset is the character set tables and columns should use (the
	// charset check). Default utf8mb4.
	Charset string `yaml:"charset"`
	// MaxIndexBytes is the longest index key, in bytes, that the
	// long-index-prefix check lets pass. Default 767.
	MaxIndexBytes int `yaml:"max_index_bytes"`
}

// Lint levels of tern.yaml's lint.checks.
const (
	LintError   = "error"
	LintWarning = "warning"
	LintOff     = "off"
)

// RepoDatabase is one database of tern.yaml.
type RepoDatabase struct {
	// Name is the database's name, matched against the server config's
	// targets[].database.
	Name string `yaml:"name"`
	// SchemaDir holds *.sql files with the desired CREATE TABLE statements,
	// relative to the repository root.
	SchemaDir string `yaml:"schema_dir"`
	// Environments in promotion order: an environment may be applied only
	// after every earlier one was applied with the same desired schema.
	Environments []string `yaml:"environments"`
}

// Requirement values allowed in apply_requirements.
const (
	RequireApproved  = "approved"
	RequireMergeable = "mergeable"
)

// ParseRepo parses and validates tern.yaml; every error names the file and
// the key.
func ParseRepo(b []byte) (*Repo, error) {
	var r Repo
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err == nil {
		if err := checkKeys(&root, reflect.TypeOf(r), "", true); err != nil {
			return nil, atFile(RepoFile, err)
		}
	}
	d := yaml.NewDecoder(strings.NewReader(string(b)))
	d.KnownFields(true)
	if err := d.Decode(&r); err != nil {
		if err.Error() == "EOF" {
			return nil, fmt.Errorf("%s: file is empty; it needs a databases: list", RepoFile)
		}
		return nil, fmt.Errorf("%s: %w", RepoFile, err)
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

func (r *Repo) validate() error {
	var errs []error
	bad := func(key, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s: %s: %s", RepoFile, key, fmt.Sprintf(format, a...)))
	}
	if len(r.Databases) == 0 {
		bad("databases", "at least one database is required")
	}
	names := map[string]bool{}
	for i, db := range r.Databases {
		p := fmt.Sprintf("databases[%d]", i)
		if db.Name == "" {
			bad(p+".name", "required")
		} else if names[db.Name] {
			bad(p+".name", "database %q is listed twice", db.Name)
		}
		names[db.Name] = true
		if db.SchemaDir == "" {
			bad(p+".schema_dir", "required (the folder holding the *.sql files)")
		} else if path.IsAbs(db.SchemaDir) || slices.Contains(strings.Split(path.Clean(db.SchemaDir), "/"), "..") {
			bad(p+".schema_dir", "%q must be a path inside the repository", db.SchemaDir)
		}
		if len(db.Environments) == 0 {
			bad(p+".environments", "at least one environment is required, in promotion order")
		}
		envs := map[string]bool{}
		for j, e := range db.Environments {
			if e == "" {
				bad(fmt.Sprintf("%s.environments[%d]", p, j), "empty name")
			} else if envs[e] {
				bad(fmt.Sprintf("%s.environments[%d]", p, j), "environment %q is listed twice", e)
			}
			envs[e] = true
		}
	}
	for _, id := range slices.Sorted(maps.Keys(r.Lint.Checks)) {
		if lv := r.Lint.Checks[id]; lv != LintError && lv != LintWarning && lv != LintOff {
			bad("lint.checks."+id, "unknown level %q (known: error, warning, off)", lv)
		}
	}
	if r.Lint.MaxIndexBytes < 0 {
		bad("lint.max_index_bytes", "must not be negative")
	}
	for i, req := range r.ApplyRequirements {
		if req != RequireApproved && req != RequireMergeable {
			bad(fmt.Sprintf("apply_requirements[%d]", i), "unknown requirement %q (known: approved, mergeable)", req)
		}
	}
	return errors.Join(errs...)
}

// Database returns the named database.
func (r *Repo) Database(name string) (*RepoDatabase, bool) {
	for i := range r.Databases {
		if r.Databases[i].Name == name {
			return &r.Databases[i], true
		}
	}
	return nil, false
}

// SchemaDirClean returns SchemaDir without a leading "./" or trailing "/".
func (d *RepoDatabase) SchemaDirClean() string { return path.Clean(d.SchemaDir) }

// Previous returns the environment before env in promotion order, or "" if
// env is the first.
func (d *RepoDatabase) Previous(env string) string {
	i := slices.Index(d.Environments, env)
	if i <= 0 {
		return ""
	}
	return d.Environments[i-1]
}
