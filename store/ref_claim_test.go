package store

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestClaimRef(t *testing.T) {
	ctx := context.Background()
	s, dsn := newStore(t)
	const repo, key = "acme/shop", "apply/1/outcome"

	// Eight callers over two pools at once: exactly one wins.
	other := openStore(t, dsn)
	var wins atomic.Int32
	var won *RefClaim
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := s
			if i%2 == 1 {
				st = other
			}
			c, err := st.ClaimRef(ctx, repo, key, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			if c != nil {
				wins.Add(1)
				mu.Lock()
				won = c
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d winners, want 1", wins.Load())
	}
	if id, _, err := s.Ref(ctx, repo, key); err != nil || id != 0 {
		t.Errorf("claimed ref: id %d err %v, want id 0", id, err)
	}

	// Released, it can be claimed again.
	if err := s.ReleaseRefClaim(ctx, won); err != nil {
		t.Fatal(err)
	}
	c, err := s.ClaimRef(ctx, repo, key, time.Minute)
	if err != nil || c == nil {
		t.Fatalf("claim after release: %v %v", c, err)
	}

	// A claim whose holder went quiet is taken over; the old holder's
	// release then leaves the new claim alone.
	if _, err := s.db.Exec(`UPDATE tern_github_refs SET updated_at = UTC_TIMESTAMP(6) - INTERVAL 2 MINUTE WHERE ref_key = ?`, key); err != nil {
		t.Fatal(err)
	}
	c2, err := s.ClaimRef(ctx, repo, key, time.Minute)
	if err != nil || c2 == nil {
		t.Fatalf("stale claim not taken over: %v %v", c2, err)
	}
	if err := s.ReleaseRefClaim(ctx, c); err != nil {
		t.Fatal(err)
	}
	if c3, err := s.ClaimRef(ctx, repo, key, time.Minute); err != nil || c3 != nil {
		t.Fatalf("the old holder's release dropped the new claim: %v %v", c3, err)
	}

	// A stored reference is never claimed, however old.
	if err := s.SetRef(ctx, repo, key, 77, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`UPDATE tern_github_refs SET updated_at = UTC_TIMESTAMP(6) - INTERVAL 1 DAY WHERE ref_key = ?`, key); err != nil {
		t.Fatal(err)
	}
	if c4, err := s.ClaimRef(ctx, repo, key, time.Minute); err != nil || c4 != nil {
		t.Fatalf("a stored reference was claimed: %v %v", c4, err)
	}
	if err := s.ReleaseRefClaim(ctx, c2); err != nil {
		t.Fatal(err)
	}
	if id, _, err := s.Ref(ctx, repo, key); err != nil || id != 77 {
		t.Errorf("release removed a stored reference: id %d err %v", id, err)
	}
}
