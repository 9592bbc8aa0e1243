package store

import (
	"context"
	"fmt"
	"time"
)

// RefClaim is a reservation of a GitHub reference key, taken by a caller
// about to create the object the key names (a comment that must exist
// once). See ClaimRef.
type RefClaim struct {
	Repository string
	Key        string
	Token      string
}

// claimMeta is the meta of a reference row that is a claim (ref_id 0).
func claimMeta(token string) string { return "claim:" + token }

// ClaimRef reserves the reference key of repo so that, of several callers
// (in one process or many) about to create the same GitHub object, exactly
// one does. It returns the claim when this caller won: no reference
// existed, or only a claim older than stale, left by a caller that died
// before finishing. It returns nil when the key holds a reference or a
// live claim. The winner stores the object's id with SetRef once created,
// which ends the claim, or calls ReleaseRefClaim when it could not create
// it, so that a later caller tries again. While claimed, Ref returns id 0.
func (s *Store) ClaimRef(ctx context.Context, repo, key string, stale time.Duration) (*RefClaim, error) {
	tok, err := newToken()
	if err != nil {
		return nil, fmt.Errorf("claim ref %s %s: %w", repo, key, err)
	}
	c := &RefClaim{Repository: repo, Key: key, Token: tok}
	_, err = s.db.ExecContext(ctx, `INSERT INTO tern_github_refs (repository, ref_key, ref_id, meta, updated_at)
 VALUES (?, ?, 0, ?, UTC_TIMESTAMP(6))`, repo, key, claimMeta(tok))
	if err == nil {
		return c, nil
	}
	if !isDuplicateKey(err) {
		return nil, fmt.Errorf("claim ref %s %s: %w", repo, key, err)
	}
	// Taken: only a claim whose holder went quiet may be taken over.
	res, err := s.db.ExecContext(ctx, `UPDATE tern_github_refs SET meta = ?, updated_at = UTC_TIMESTAMP(6)
 WHERE repository = ? AND ref_key = ? AND ref_id = 0 AND meta LIKE 'claim:%'
 AND updated_at < UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND`, claimMeta(tok), repo, key, micros(stale))
	if err != nil {
		return nil, fmt.Errorf("claim ref %s %s: %w", repo, key, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return nil, err
	}
	return c, nil
}

// ReleaseRefClaim drops c if it is still an unfinished claim held by its
// token; a reference stored since, or a claim taken over, is left alone.
func (s *Store) ReleaseRefClaim(ctx context.Context, c *RefClaim) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM tern_github_refs
 WHERE repository = ? AND ref_key = ? AND ref_id = 0 AND meta = ?`, c.Repository, c.Key, claimMeta(c.Token))
	if err != nil {
		return fmt.Errorf("release ref claim %s %s: %w", c.Repository, c.Key, err)
	}
	return nil
}
