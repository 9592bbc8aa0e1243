package bot

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/config"
)

// repoPolicy is what a pull request is planned and gated by. Whoever can
// push to the PR branch (a fork included) writes the head's tern.yaml, so
// the keys that decide whether and where an apply may run are read at the
// base commit: the databases, their environments and promotion order, and
// apply_requirements. The schema files (what is applied) are the head's.
type repoPolicy struct {
	// repo is the base's tern.yaml, each database's schema_dir taken from
	// the head's tern.yaml where the head names that database. When the
	// base has no usable tern.yaml it is the head's (planOnly is then set).
	repo *config.Repo
	// planOnly, when set, says why nothing may be applied from this PR.
	planOnly string
	// changes names the policy keys the head's tern.yaml changes; they
	// take effect once it is merged.
	changes []string
	// baseRepo and headRepo are each side's tern.yaml (nil: none).
	baseRepo, headRepo *config.Repo
	base, head         *commitReader
}

// readPolicy reads tern.yaml at the PR's base and head commits. It returns
// errNoRepoConfig when neither has one, and *repoConfigError when the
// head's does not parse (the PR author must fix it).
func (b *Bot) readPolicy(ctx context.Context, gh *github.Client, pr *prInfo) (*repoPolicy, error) {
	pol := &repoPolicy{base: newCommitReader(gh, pr, pr.BaseSHA, b.blobs), head: newCommitReader(gh, pr, pr.HeadSHA, b.blobs)}
	headRC, err := readRepoConfigAt(ctx, pol.head)
	if err != nil && !errors.Is(err, errNoRepoConfig) {
		return nil, err
	}
	pol.headRepo = headRC
	if pr.BaseSHA == "" {
		return nil, fmt.Errorf("pull request %s#%d: GitHub gave no base commit", pr.Repo, pr.Number)
	}
	baseRC, err := readRepoConfigAt(ctx, pol.base)
	var rce *repoConfigError
	switch {
	case err == nil:
		pol.baseRepo = baseRC
		pol.repo = withSchemaDirs(baseRC, headRC)
		pol.changes = policyChanges(baseRC, headRC)
		return pol, nil
	case errors.Is(err, errNoRepoConfig), errors.As(err, &rce):
		if headRC == nil {
			return nil, errNoRepoConfig
		}
		pol.repo = headRC
		pol.planOnly = fmt.Sprintf("the base branch%s has no `tern.yaml` yet", branchName(pr.BaseRef))
		if rce != nil {
			pol.planOnly = fmt.Sprintf("`tern.yaml` on the base branch%s is invalid (%s)", branchName(pr.BaseRef), rce.Error())
		}
		return pol, nil
	}
	return nil, err
}

// branchName is " `ref`", or "" when GitHub named no branch.
func branchName(ref string) string {
	if ref == "" {
		return ""
	}
	return " `" + ref + "`"
}

// withSchemaDirs returns a copy of base whose databases take their
// schema_dir from head where head names them.
func withSchemaDirs(base, head *config.Repo) *config.Repo {
	out := *base
	out.Databases = slices.Clone(base.Databases)
	out.ApplyRequirements = slices.Clone(base.ApplyRequirements)
	if head == nil {
		return &out
	}
	for i := range out.Databases {
		if hdb, ok := head.Database(out.Databases[i].Name); ok {
			out.Databases[i].SchemaDir = hdb.SchemaDir
		}
	}
	return &out
}

// policyChanges names the policy keys head changes relative to base.
func policyChanges(base, head *config.Repo) []string {
	if head == nil {
		return []string{"`tern.yaml` is removed"}
	}
	var out []string
	br, hr := slices.Clone(base.ApplyRequirements), slices.Clone(head.ApplyRequirements)
	slices.Sort(br)
	slices.Sort(hr)
	if !slices.Equal(slices.Compact(br), slices.Compact(hr)) {
		out = append(out, "`apply_requirements`")
	}
	if bl, hl := base.Lint, head.Lint; !maps.Equal(bl.Checks, hl.Checks) || bl.Charset != hl.Charset || bl.MaxIndexBytes != hl.MaxIndexBytes {
		out = append(out, "`lint`")
	}
	for _, db := range base.Databases {
		hdb, ok := head.Database(db.Name)
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("database `%s` is removed", db.Name))
		case !slices.Equal(db.Environments, hdb.Environments):
			out = append(out, fmt.Sprintf("the environments of `%s`", db.Name))
		}
	}
	for _, db := range head.Databases {
		if _, ok := base.Database(db.Name); !ok {
			out = append(out, fmt.Sprintf("database `%s` is added", db.Name))
		}
	}
	return out
}
