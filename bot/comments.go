package bot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/store"
)

// findComment returns the id of the bot's comment carrying marker, or 0.
// Only a comment written by this App counts: another App's bot, or a
// person, quoting the marker is never adopted (and so never edited).
func (b *Bot) findComment(ctx context.Context, gh *github.Client, repo string, pr int, marker string) (int64, error) {
	login, err := b.botLogin(ctx)
	if err != nil {
		return 0, err
	}
	owner, name := splitRepo(repo)
	opt := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for {
		cs, resp, err := gh.Issues.ListComments(ctx, owner, name, pr, opt)
		if err != nil {
			return 0, fmt.Errorf("list comments of %s#%d: %w", repo, pr, err)
		}
		for _, c := range cs {
			if c.GetUser().GetType() == "Bot" && strings.EqualFold(c.GetUser().GetLogin(), login) && strings.Contains(c.GetBody(), marker) {
				return c.GetID(), nil
			}
		}
		if resp.NextPage == 0 {
			return 0, nil
		}
		opt.Page = resp.NextPage
	}
}

// upsertComment edits the comment stored under key, or creates it, once
// across processes (see createOnce), and then brings it to body.
func (b *Bot) upsertComment(ctx context.Context, gh *github.Client, repo string, pr int, key, marker, body string) error {
	sum := sha256.Sum256([]byte(body))
	hash := hex.EncodeToString(sum[:8])
	id, meta, err := b.st.Ref(ctx, repo, key)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("read ref %s: %w", key, err)
	}
	if err != nil || id == 0 {
		// Not created yet, or being created by another reporter.
		id, wrote, err := b.createOnce(ctx, gh, repo, pr, key, marker, body, hash)
		if err != nil || wrote {
			return err
		}
		meta = ""
		if _, m, err := b.st.Ref(ctx, repo, key); err == nil {
			meta = m
		}
		if meta == hash {
			return nil
		}
		return b.editComment(ctx, gh, repo, pr, key, id, hash, body)
	}
	if meta == hash {
		return nil // GitHub already shows this text
	}
	err = b.editComment(ctx, gh, repo, pr, key, id, hash, body)
	if !isNotFound(err) {
		return err
	}
	// Deleted on GitHub: post it again.
	cid, err := b.createComment(ctx, gh, repo, pr, marker, body)
	if err != nil {
		return err
	}
	return b.setRef(ctx, repo, key, cid, hash)
}

// editComment sets comment id's text to body and records its hash.
func (b *Bot) editComment(ctx context.Context, gh *github.Client, repo string, pr int, key string, id int64, hash, body string) error {
	owner, name := splitRepo(repo)
	if _, _, err := gh.Issues.EditComment(ctx, owner, name, id, &github.IssueComment{Body: &body}); err != nil {
		return fmt.Errorf("edit comment %d on %s#%d: %w", id, repo, pr, err)
	}
	return b.setRef(ctx, repo, key, id, hash)
}

// refClaimStale is how long a claim to post a comment may stay unfinished
// before another reporter takes it over (its holder died). It is well
// beyond the GitHub client's timeout of the two calls a post makes.
const refClaimStale = 2 * time.Minute

// refClaimWait bounds how long a reporter waits for another one (another
// process) that is posting the same comment.
const refClaimWait = 20 * time.Second

// postOnce creates the comment stored under key unless it exists already,
// exactly once across processes.
func (b *Bot) postOnce(ctx context.Context, gh *github.Client, repo string, pr int, key, marker, body string) error {
	_, _, err := b.createOnce(ctx, gh, repo, pr, key, marker, body, "")
	return err
}

// createOnce makes sure the comment stored under key exists, creating it
// with body exactly once across processes: a reporter first claims the key
// in the ledger and posts only when it won; one that lost waits for the
// winner's reference. A post that fails drops the claim, so a later report
// retries. It returns the comment's id, and wrote=true when this caller
// posted body (the reference then carries meta).
func (b *Bot) createOnce(ctx context.Context, gh *github.Client, repo string, pr int, key, marker, body, meta string) (id int64, wrote bool, err error) {
	deadline := time.Now().Add(refClaimWait)
	var claim *store.RefClaim
	for claim == nil {
		id, _, err := b.st.Ref(ctx, repo, key)
		switch {
		case err == nil && id != 0:
			return id, false, nil
		case err != nil && !errors.Is(err, store.ErrNotFound):
			return 0, false, fmt.Errorf("read ref %s: %w", key, err)
		}
		if claim, err = b.st.ClaimRef(ctx, repo, key, refClaimStale); err != nil {
			return 0, false, err
		}
		if claim != nil {
			break
		}
		// In a report, a claim on the apply's own objects left by the
		// reporter before this one need not be waited out.
		if g, ok := ctx.Value(guardKey{}).(*reportGuard); ok && strings.HasPrefix(key, fmt.Sprintf("apply/%d/", g.w.ApplyID)) {
			if claim, err = b.st.TakeOverRefClaim(ctx, repo, key, g.w); err != nil {
				return 0, false, err
			}
			if claim != nil {
				break
			}
		}
		if time.Now().After(deadline) {
			return 0, false, fmt.Errorf("comment %s on %s#%d: another reporter is still posting it", key, repo, pr)
		}
		select {
		case <-ctx.Done():
			return 0, false, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	id, wrote, err = b.postClaimed(ctx, gh, repo, pr, marker, body)
	if err != nil {
		// Let a later report try again; the ledger still says it is due.
		if rerr := b.st.ReleaseRefClaim(context.WithoutCancel(ctx), claim); rerr != nil {
			b.log.Warn("release comment claim", "key", key, "err", rerr)
		}
		return 0, false, err
	}
	if !wrote {
		meta = ""
	}
	return id, wrote, b.setRef(ctx, repo, key, id, meta)
}

// postClaimed posts the comment a claim was won for, unless one with its
// marker is on the PR already (posted by a reporter that died before it
// stored the reference), and returns its id and whether it posted body.
func (b *Bot) postClaimed(ctx context.Context, gh *github.Client, repo string, pr int, marker, body string) (int64, bool, error) {
	id, err := b.findComment(ctx, gh, repo, pr, marker)
	if err != nil || id != 0 {
		return id, false, err
	}
	cid, err := b.createComment(ctx, gh, repo, pr, marker, body)
	if err != nil {
		return 0, false, err
	}
	return cid, true, nil
}

func (b *Bot) setRef(ctx context.Context, repo, key string, id int64, meta string) error {
	if err := b.st.SetRef(ctx, repo, key, id, meta); err != nil {
		return fmt.Errorf("store ref %s: %w", key, err)
	}
	return nil
}
