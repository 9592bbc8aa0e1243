package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRetryDelivery(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	if _, err := s.RecordDelivery(ctx, Delivery{ID: "d1", Event: "issue_comment", Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	claim := func() []Delivery {
		t.Helper()
		ds, err := s.ClaimDeliveries(ctx, "w", 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	if ds := claim(); len(ds) != 1 || ds[0].Attempts != 1 {
		t.Fatalf("first claim %+v", ds)
	}
	// Not due before retryIn has passed.
	if err := s.RetryDelivery(ctx, "d1", "GitHub answered 502", time.Hour); err != nil {
		t.Fatal(err)
	}
	if ds := claim(); len(ds) != 0 {
		t.Fatalf("claimed %d deliveries before their retry time", len(ds))
	}
	var state, lastErr, owner string
	if err := s.db.QueryRow("SELECT state, last_error, lease_owner FROM tern_deliveries WHERE id = 'd1'").Scan(&state, &lastErr, &owner); err != nil {
		t.Fatal(err)
	}
	if state != deliveryPending || lastErr != "GitHub answered 502" || owner != "" {
		t.Errorf("after retry: state %q error %q owner %q", state, lastErr, owner)
	}
	// Due at once: the next claim counts attempt 2.
	if err := s.RetryDelivery(ctx, "d1", "again", 0); err != nil {
		t.Fatal(err)
	}
	if ds := claim(); len(ds) != 1 || ds[0].Attempts != 2 {
		t.Fatalf("second claim %+v", ds)
	}
	// A finished delivery is not put back.
	if err := s.FinishDelivery(ctx, "d1", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.RetryDelivery(ctx, "d1", "late", 0); err != nil {
		t.Fatal(err)
	}
	if ds := claim(); len(ds) != 0 {
		t.Fatalf("a finished delivery was claimed again: %+v", ds)
	}
	if err := s.RetryDelivery(ctx, "nope", "x", 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown delivery: %v, want ErrNotFound", err)
	}
}
