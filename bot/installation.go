package bot

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/store"
)

// An installation of the App that was deleted or suspended, or a
// repository removed from it, can no longer be reported to: tern keeps
// its state in the ledger (refs of no repository, so every process sees
// it), fails the applies waiting on it (store.ClassInstallation*), drops
// their reports with a log line, and evicts the cached client. Unsuspending
// (or adding the repository back) resumes.

func installationKey(id int64) string { return fmt.Sprintf("installation/%d", id) }

// removedKey marks a repository removed from its installation.
const removedKey = "installation/removed"

// Installation states kept in the ledger.
const (
	installationDeleted   = "deleted"
	installationSuspended = "suspended"
	installationActive    = "active"
)

// onInstallation handles installation deleted, suspend and unsuspend (and
// created, which clears a state left from before).
func (b *Bot) onInstallation(ctx context.Context, e *github.InstallationEvent) error {
	id := e.GetInstallation().GetID()
	if id == 0 {
		return nil
	}
	var state, class string
	switch e.GetAction() {
	case "deleted":
		state, class = installationDeleted, store.ClassInstallationDeleted
	case "suspend":
		state, class = installationSuspended, store.ClassInstallationSuspended
	case "unsuspend", "created":
		state = installationActive
	default:
		return nil
	}
	b.evict(id)
	if err := b.setRef(ctx, "", installationKey(id), id, state); err != nil {
		return err
	}
	b.log.Info("installation "+state, "installation", id, "account", e.GetInstallation().GetAccount().GetLogin())
	if class == "" {
		return nil
	}
	failed, err := b.st.FailWaiting(ctx, id, "", class, "the GitHub App installation was "+state)
	for _, a := range failed {
		b.log.Warn("apply failed: its installation is gone", "apply", a.ID, "repo", a.Repository, "pr", a.PR, "class", class)
	}
	return err
}

// onInstallationRepos handles repositories removed from (or added back
// to) an installation.
func (b *Bot) onInstallationRepos(ctx context.Context, e *github.InstallationRepositoriesEvent) error {
	b.evict(e.GetInstallation().GetID())
	for _, r := range e.RepositoriesAdded {
		if err := b.setRef(ctx, r.GetFullName(), removedKey, 0, installationActive); err != nil {
			return err
		}
	}
	for _, r := range e.RepositoriesRemoved {
		repo := r.GetFullName()
		if err := b.setRef(ctx, repo, removedKey, 1, "removed"); err != nil {
			return err
		}
		failed, err := b.st.FailWaiting(ctx, 0, repo, store.ClassRepositoryRemoved, "the repository was removed from the GitHub App installation")
		if err != nil {
			return err
		}
		for _, a := range failed {
			b.log.Warn("apply failed: its repository left the installation", "apply", a.ID, "repo", repo, "pr", a.PR)
		}
	}
	return nil
}

// evict forgets the cached client of an installation.
func (b *Bot) evict(id int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.clients, id)
}

// unreachable returns the error class for an installation (or repository)
// that can no longer be reported to, or "".
func (b *Bot) unreachable(ctx context.Context, repo string, inst int64) (string, error) {
	_, meta, err := b.st.Ref(ctx, "", installationKey(inst))
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return "", fmt.Errorf("read installation state: %w", err)
	case meta == installationDeleted:
		return store.ClassInstallationDeleted, nil
	case meta == installationSuspended:
		return store.ClassInstallationSuspended, nil
	}
	_, meta, err = b.st.Ref(ctx, repo, removedKey)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return "", fmt.Errorf("read repository state: %w", err)
	case meta == "removed":
		return store.ClassRepositoryRemoved, nil
	}
	return "", nil
}

// dropReport reports whether a's report must be dropped because its
// installation is gone: it then fails a if it is waiting, logs, and marks
// the report done so no pass retries it.
func (b *Bot) dropReport(ctx context.Context, a *store.Apply) (bool, error) {
	class, err := b.unreachable(ctx, a.Repository, a.InstallationID)
	if err != nil || class == "" {
		return false, err
	}
	if a.State == store.Pending || a.State == store.FailedRetryable {
		if _, err := b.st.FailWaiting(ctx, a.InstallationID, "", class, "the GitHub App installation is gone"); err != nil {
			return true, err
		}
		if a, err = b.st.Apply(ctx, a.ID); err != nil {
			return true, err
		}
	}
	b.log.Warn("report dropped: the GitHub App installation is gone", "apply", a.ID, "repo", a.Repository, "pr", a.PR, "state", a.State, "class", class)
	return true, b.st.MarkReported(ctx, a.ID, a.Version)
}
