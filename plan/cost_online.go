package plan

import (
	"context"
	"fmt"
	"strings"
)

// OnlineCopier is a target's online engine (pt-online-schema-change): it
// says whether it can run st, an ALTER TABLE the server would run in a way
// that makes writes wait, as an online row copy instead. It returns "" when
// it can, or else why not, in a sentence for the plan.
type OnlineCopier func(ctx context.Context, st Statement) (reason string, err error)

// onlineRefused starts the part of a Cost's Reason that says why the
// online engine cannot take the statement.
const onlineRefused = "online copy impossible: "

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
			c.Reason += "; "
		}
		c.Reason += onlineRefused + reason
		return nil
	}
	c.Algorithm, c.Lock, c.Source = AlgorithmOnline, LockNone, SourceEngine
	return nil
}

// explainOnlineRefusals adds to each blocking finding why the target's
// online engine could not take the statement, so the plan comment says
// it beside the finding.
func explainOnlineRefusals(pl *Plan) {
	for i, f := range pl.Findings {
		if f.Severity != SeverityBlocking || f.Statement < 0 || f.Statement >= len(pl.Statements) {
			continue
		}
		c := pl.Statements[f.Statement].Cost
		if c == nil {
			continue
		}
		if _, why, ok := strings.Cut(c.Reason, onlineRefused); ok {
			pl.Findings[i].Message += "; the online engine cannot run it: " + why
		}
	}
}
