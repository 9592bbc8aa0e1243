package bot

import (
	"context"
	"time"

	"github.com/google/go-github/v60/github"
)

// mergeableAsks bounds how many times a pull request whose mergeability
// GitHub has not computed yet ("mergeable": null) is read again before
// tern refuses; the waits between are 1s, 2s, 4s.
const mergeableAsks = 3

// mergeable reports whether GitHub says pr can be merged. GitHub computes
// it in the background after every push and answers null meanwhile, so
// a null is asked again a few times before it counts as not mergeable.
func (b *Bot) mergeable(ctx context.Context, gh *github.Client, pr *prInfo) (bool, error) {
	m := pr.Mergeable
	wait := time.Second
	for i := 0; m == nil && i < mergeableAsks; i++ {
		if err := b.sleep(ctx, wait); err != nil {
			return false, err
		}
		wait *= 2
		again, err := b.getPR(ctx, gh, pr.Repo, pr.Number, pr.InstallationID)
		if err != nil {
			return false, err
		}
		m = again.Mergeable
	}
	return m != nil && *m, nil
}
