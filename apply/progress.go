package apply

import (
	"context"
	"fmt"

	"github.com/ternhq/tern/engine"
	"github.com/ternhq/tern/store"
)

// Progress: a running task reported how far it has got.
const Progress EventKind = "progress"

var _ engine.ProgressRecorder = (*recorder)(nil)

// TaskProgress records a running task's progress in the ledger (bumping
// the apply's version) and tells the listener, which shows it on the pull
// request through the same reporting path as every other step.
func (rec *recorder) TaskProgress(ctx context.Context, seq int, p engine.Progress) error {
	if err := rec.r.Store.SetTaskProgress(ctx, rec.a, seq, store.Progress{Stage: p.Stage, Percent: p.Percent, Remaining: p.Remaining}); err != nil {
		return fmt.Errorf("record progress of task %d: %w", seq, err)
	}
	t := rec.tasks[seq]
	rec.r.emit(ctx, Event{Kind: Progress, Apply: rec.a, Task: &t})
	return nil
}
