// Package route runs each task of an apply on one of two engines of the
// same target: the tasks the plan promised as ONLINE on the online engine
// (pt-online-schema-change), every other one on the direct engine, in
// plan order.
package route

import (
	"context"
	"database/sql"
	"errors"
	"strings"

	"github.com/ternhq/tern/engine"
)

// online is the algorithm of a task planned as an online copy
// (plan.AlgorithmOnline).
const online = "ONLINE"

// Engine routes tasks between a direct and an online engine. It
// implements engine.Engine and engine.InFlighter.
type Engine struct {
	direct, online engine.Engine
}

var (
	_ engine.Engine     = (*Engine)(nil)
	_ engine.InFlighter = (*Engine)(nil)
)

// New returns an engine that runs ONLINE tasks on online and the others on
// direct. It owns both.
func New(direct, online engine.Engine) *Engine {
	return &Engine{direct: direct, online: online}
}

// Apply runs job's tasks in order, each run of consecutive tasks on the
// engine they belong to, and stops at the first error.
func (e *Engine) Apply(ctx context.Context, job engine.Job, rec engine.Recorder) error {
	for rest := job.Tasks; len(rest) > 0; {
		isOnline := rest[0].Algorithm == online
		n := 1
		for n < len(rest) && (rest[n].Algorithm == online) == isOnline {
			n++
		}
		sub := job
		sub.Tasks = rest[:n]
		eng := e.direct
		if isOnline {
			eng = e.online
		}
		if err := eng.Apply(ctx, sub, rec); err != nil {
			return err
		}
		rest = rest[n:]
	}
	return nil
}

// Live returns the direct engine's pool on the live schema.
func (e *Engine) Live(ctx context.Context) (*sql.DB, error) { return e.direct.Live(ctx) }

// Close closes both engines.
func (e *Engine) Close() error { return errors.Join(e.direct.Close(), e.online.Close()) }

// InFlight reports the apply's work still running on the target as either
// engine sees it.
func (e *Engine) InFlight(ctx context.Context, job engine.Job) (string, error) {
	var found []string
	for _, eng := range []engine.Engine{e.direct, e.online} {
		f, ok := eng.(engine.InFlighter)
		if !ok {
			continue
		}
		why, err := f.InFlight(ctx, job)
		if err != nil {
			return "", err
		}
		if why != "" {
			found = append(found, why)
		}
	}
	return strings.Join(found, "; "), nil
}
