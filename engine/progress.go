package engine

import (
	"context"
	"time"
)

// Progress is how far a running task's DDL has got, as its server reports
// it.
type Progress struct {
	// Stage is what the server is doing ("copy to tmp table").
	Stage string
	// Percent is the work done, 0-100.
	Percent float64
	// Remaining is the estimated time left; 0 when unknown.
	Remaining time.Duration
}

// ProgressRecorder is a Recorder that also records how far a long task
// has got. An engine reports progress only when its Recorder implements
// it, at most as often as the engine is configured to; an error means the
// attempt lost its lease.
type ProgressRecorder interface {
	TaskProgress(ctx context.Context, seq int, p Progress) error
}
