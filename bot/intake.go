package bot

import (
	"context"
	"sync"
	"time"

	"github.com/ternhq/tern/store"
)

// Limits of one group commit of deliveries.
const (
	maxBatchRows  = 64
	maxBatchBytes = 4 << 20
	// batchTimeout bounds one batch's write: a handler is answered 500
	// (GitHub may redeliver) rather than hang.
	batchTimeout = 10 * time.Second
)

// deliveryStore is the part of the ledger the intake writes to.
type deliveryStore interface {
	RecordDeliveries(ctx context.Context, ds []store.Delivery) ([]bool, error)
	RecordDelivery(ctx context.Context, d store.Delivery) (bool, error)
}

// intake records webhook deliveries by group commit: handlers queue their
// delivery, and one writer at a time stores everything queued so far in a
// single transaction (one fsync for all), then tells each handler whether
// its delivery was new. A batch starts as soon as the previous one is done;
// nobody waits for a batch to fill.
type intake struct {
	st deliveryStore

	mu      sync.Mutex
	queue   []*queued
	writing bool
}

type queued struct {
	d     store.Delivery
	fresh bool
	err   error
	done  chan struct{}
}

// record stores d durably and reports whether it was new. It returns when
// d's batch has committed, or when ctx ends (the delivery may still be
// stored).
func (in *intake) record(ctx context.Context, d store.Delivery) (bool, error) {
	q := &queued{d: d, done: make(chan struct{})}
	in.mu.Lock()
	in.queue = append(in.queue, q)
	if !in.writing {
		in.writing = true
		go in.flush()
	}
	in.mu.Unlock()
	select {
	case <-q.done:
		return q.fresh, q.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// flush writes batches until the queue is empty, then exits; the next
// record starts a new writer.
func (in *intake) flush() {
	for {
		in.mu.Lock()
		n, size := 0, 0
		for n < len(in.queue) && n < maxBatchRows {
			size += len(in.queue[n].d.Payload)
			if n > 0 && size > maxBatchBytes {
				break
			}
			n++
		}
		if n == 0 {
			in.writing = false
			in.mu.Unlock()
			return
		}
		batch := append([]*queued(nil), in.queue[:n]...)
		in.queue = append(in.queue[:0:0], in.queue[n:]...)
		in.mu.Unlock()
		in.write(batch)
	}
}

// write stores one batch and answers its handlers. When the batch fails as
// a whole, each delivery is stored on its own, so one bad row fails only
// its own handler.
func (in *intake) write(batch []*queued) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	ds := make([]store.Delivery, len(batch))
	for i, q := range batch {
		ds[i] = q.d
	}
	fresh, err := in.st.RecordDeliveries(ctx, ds)
	if err != nil && len(batch) > 1 {
		first := map[string]*queued{}
		for _, q := range batch {
			if f, dup := first[q.d.ID]; dup {
				// A later copy in the same batch is not new; it shares
				// the first copy's error, if any.
				q.fresh, q.err = false, f.err
				continue
			}
			first[q.d.ID] = q
			q.fresh, q.err = in.st.RecordDelivery(ctx, q.d)
		}
	} else {
		for i, q := range batch {
			if err != nil {
				q.err = err
			} else {
				q.fresh = fresh[i]
			}
		}
	}
	for _, q := range batch {
		close(q.done)
	}
}
