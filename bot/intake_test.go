package bot

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ternhq/tern/internal/fakegithub"
	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/store"
)

// gatedStore passes writes to the real ledger, counting batches; its first
// batch waits until the rest of `total` deliveries are queued behind it, so
// the test knows what the second batch holds.
type gatedStore struct {
	*store.Store
	in      *intake
	total   int
	batches atomic.Int32
	sizes   []int
	mu      sync.Mutex
	// entered, when not nil, is closed as the first batch starts.
	entered chan struct{}
}

func (g *gatedStore) RecordDeliveries(ctx context.Context, ds []store.Delivery) ([]bool, error) {
	if g.batches.Add(1) == 1 {
		if g.entered != nil {
			close(g.entered)
		}
		// The deadline only keeps a broken intake from hanging the test.
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			g.in.mu.Lock()
			n := len(g.in.queue)
			g.in.mu.Unlock()
			if len(ds)+n >= g.total {
				break
			}
		}
	}
	g.mu.Lock()
	g.sizes = append(g.sizes, len(ds))
	g.mu.Unlock()
	return g.Store.RecordDeliveries(ctx, ds)
}

func intakeStore(t *testing.T) *store.Store {
	t.Helper()
	dsn, _ := testdb.New(t, "bot_intake")
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// Deliveries that arrive while a batch is being written go out together in
// the next one, and each caller learns exactly whether its delivery was new,
// duplicates inside one batch included.
func TestIntakeGroupCommit(t *testing.T) {
	st := intakeStore(t)
	if _, err := st.RecordDelivery(context.Background(), store.Delivery{ID: "seen-before", Event: "ping", Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	in := &intake{}
	g := &gatedStore{Store: st, in: in, total: 50, entered: make(chan struct{})}
	in.st = g
	// 50 callers: ids 0..39 once, ids 0..8 a second time, one seen before.
	var ids []string
	for i := 0; i < 40; i++ {
		ids = append(ids, fmt.Sprintf("d-%02d", i))
	}
	for i := 0; i < 9; i++ {
		ids = append(ids, fmt.Sprintf("d-%02d", i))
	}
	ids = append(ids, "seen-before")
	fresh := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := in.record(context.Background(), store.Delivery{ID: id, Event: "issue_comment", Payload: []byte("{}")})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if f {
				fresh[id]++
			}
		}()
		if i == 0 {
			// The first caller's batch is being written before anyone
			// else arrives: the other 49 must queue behind it.
			<-g.entered
		}
	}
	wg.Wait()
	if b := g.batches.Load(); b != 2 || g.sizes[0] != 1 {
		t.Errorf("%d batches (sizes %v), want 2: the first, then all queued behind it", b, g.sizes)
	}
	for i := 0; i < 40; i++ {
		if n := fresh[fmt.Sprintf("d-%02d", i)]; n != 1 {
			t.Errorf("d-%02d reported new %d times, want 1", i, n)
		}
	}
	if fresh["seen-before"] != 0 {
		t.Error("a delivery recorded before was reported new")
	}
	var n int
	st.DB().QueryRow("SELECT COUNT(*) FROM tern_deliveries").Scan(&n)
	if n != 41 {
		t.Errorf("%d rows, want 41", n)
	}
	in.mu.Lock()
	writing := in.writing
	in.mu.Unlock()
	if writing {
		t.Error("the writer did not stop once the queue was empty")
	}
}

// A row the database refuses fails only its own caller: the batch is
// written again one delivery at a time.
func TestIntakeBadRowFailsAlone(t *testing.T) {
	st := intakeStore(t)
	in := &intake{}
	g := &gatedStore{Store: st, in: in, total: 5}
	in.st = g
	ids := []string{"first", "ok-1", strings.Repeat("x", 65), "ok-2", "ok-1"}
	errs := make([]error, len(ids))
	fresh := make([]bool, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i > 0 {
				// "first" opens the gated batch; the rest queue behind it.
				for g.batches.Load() == 0 {
					time.Sleep(time.Millisecond)
				}
			}
			fresh[i], errs[i] = in.record(context.Background(), store.Delivery{ID: id, Event: "ping", Payload: []byte("{}")})
		}()
	}
	wg.Wait()
	if errs[2] == nil {
		t.Error("the 65-character id was stored")
	}
	// Which of the two "ok-1" callers came first is up to the scheduler:
	// exactly one of them is new.
	if errs[1] != nil || errs[4] != nil || fresh[1] == fresh[4] {
		t.Errorf("ok-1 twice: fresh %v %v errors %v %v, want one new", fresh[1], fresh[4], errs[1], errs[4])
	}
	for _, i := range []int{0, 3} {
		if errs[i] != nil || !fresh[i] {
			t.Errorf("%s: fresh %v err %v, want stored as new", ids[i], fresh[i], errs[i])
		}
	}
	var n int
	st.DB().QueryRow("SELECT COUNT(*) FROM tern_deliveries").Scan(&n)
	if n != 3 {
		t.Errorf("%d rows, want 3", n)
	}
}

// Through the webhook handler: 50 signed deliveries at once, ten of them
// sent twice concurrently, are each acknowledged 202 exactly once (200 for
// the copy) and stored once.
func TestWebhookConcurrentDeliveriesAcknowledgedOnce(t *testing.T) {
	h := newHarness(t)
	body, err := fakegithub.CommentPayload(repoName, 9, 1, "alice", "User", "just a comment", inst)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < 40; i++ {
		ids = append(ids, fmt.Sprintf("conc-%02d", i))
	}
	ids = append(ids, ids[:10]...)
	codes := map[string][]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := fakegithub.Deliver(context.Background(), h.url, "issue_comment", id, secret, body)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			codes[id] = append(codes[id], resp.StatusCode)
			mu.Unlock()
		}()
	}
	wg.Wait()
	for id, cs := range codes {
		accepted, dup := 0, 0
		for _, c := range cs {
			switch c {
			case http.StatusAccepted:
				accepted++
			case http.StatusOK:
				dup++
			}
		}
		if accepted != 1 || dup != len(cs)-1 {
			t.Errorf("%s answered %v, want one 202 and the rest 200", id, cs)
		}
	}
	var n int
	h.st.DB().QueryRow("SELECT COUNT(*) FROM tern_deliveries WHERE id LIKE 'conc-%'").Scan(&n)
	if n != 40 {
		t.Errorf("%d deliveries stored, want 40", n)
	}
}
