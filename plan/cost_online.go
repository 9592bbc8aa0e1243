package plan

import (
	"context"
	"fmt"
)

// OnlineCopier is a target's online engine (pt-online-schema-change): it
// says whether it can run st, an ALTER TABLE the server would run in a way
// that makes writes wait, as an online row copy instead. It returns "" when
// it can, or else why not, in a sentence for the plan.
type OnlineCopier func(ctx context.Context, st Statement) (reason string, err error)

// onlineCopy hands a statement that would block writes on a table over
// opts.MaxBlockingRows to opts.OnlineCopy, when the target has one: a
// statement it takes becomes ONLINE with no lock (its duration band
// stays: the rows are still copied), one it refuses keeps its cost with
// the engine's reason added.
func onlineCopy(ctx context.Context, opts CostOptions, st Statement, c *Cost) error {
	if opts.OnlineCopy == nil || st.Kind != KindAlter || !c.Locks() ||
		(opts.MaxBlockingRows > 0 && c.RowsEstimate <= opts.MaxBlockingRows) {
		return nil
	}
	reason, err := opts.OnlineCopy(ctx, st)
	if err != nil {
		return fmt.Errorf("cost: %w", err)
	}
	if reason != "" {
		if c.Reason != "" {
			reason = c.Reason + "; online copy impossible: " + reason
		} else {
			reason = "online copy impossible: " + reason
		}
		c.Reason = reason
		return nil
	}
	c.Algorithm, c.Lock, c.Source = AlgorithmOnline, LockNone, SourceEngine
	return nil
}
