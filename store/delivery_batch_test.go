package store

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestRecordDeliveries(t *testing.T) {
	ctx := context.Background()
	s, dsn := newStore(t)
	if _, err := s.RecordDelivery(ctx, Delivery{ID: "old", Event: "ping", Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	d := func(id string) Delivery {
		return Delivery{ID: id, Event: "issue_comment", Payload: []byte(`{"id":"` + id + `"}`)}
	}
	cases := []struct {
		name string
		ids  []string
		want []bool
	}{
		{"all new", []string{"b", "a", "c"}, []bool{true, true, true}},
		{"duplicates inside the batch", []string{"d", "d", "e", "d"}, []bool{true, false, true, false}},
		{"recorded before, one at a time and in a batch", []string{"old", "f", "a"}, []bool{false, true, false}},
		{"empty", nil, []bool{}},
	}
	for _, c := range cases {
		var ds []Delivery
		for _, id := range c.ids {
			ds = append(ds, d(id))
		}
		got, err := s.RecordDeliveries(ctx, ds)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: fresh %v, want %v", c.name, got, c.want)
		}
	}
	// Each stored once, pending, unleased, with its own payload.
	rows, err := s.db.Query("SELECT id, state, attempts, lease_owner, payload FROM tern_deliveries ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for rows.Next() {
		var id, state, owner, payload string
		var attempts int
		if err := rows.Scan(&id, &state, &attempts, &owner, &payload); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		if state != deliveryPending || attempts != 0 || owner != "" || (id != "old" && payload != `{"id":"`+id+`"}`) {
			t.Errorf("row %s: state %q attempts %d owner %q payload %q", id, state, attempts, owner, payload)
		}
	}
	rows.Close()
	if got := strings.Join(ids, ","); got != "a,b,c,d,e,f,old" {
		t.Errorf("stored %s", got)
	}
	// A batch the database refuses stores nothing of it.
	if _, err := s.RecordDeliveries(ctx, []Delivery{d("g"), d(strings.Repeat("x", 65))}); err == nil {
		t.Error("a batch with a 65-character id was accepted")
	}
	var n int
	s.db.QueryRow("SELECT COUNT(*) FROM tern_deliveries WHERE id = 'g'").Scan(&n)
	if n != 0 {
		t.Error("a failed batch stored part of itself")
	}

	// Four writers over two pools record overlapping batches at once:
	// every id is reported new exactly once.
	other := openStore(t, dsn)
	const ids2, writers = 40, 4
	counts := make([]int, ids2)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := s
			if w%2 == 1 {
				st = other
			}
			var ds []Delivery
			for i := 0; i < ids2; i++ {
				// Writer 0 sends every id; the others overlap it, with repeats.
				ds = append(ds, d(fmt.Sprintf("race-%02d", (i*(w+1)+w)%ids2)))
			}
			fresh, err := st.RecordDeliveries(ctx, ds)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for i, f := range fresh {
				if f {
					var k int
					fmt.Sscanf(ds[i].ID, "race-%d", &k)
					counts[k]++
				}
			}
		}()
	}
	wg.Wait()
	for i, c := range counts {
		if c != 1 {
			t.Errorf("race-%02d reported new %d times, want 1", i, c)
		}
	}
}
