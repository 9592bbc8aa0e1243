// Package enginetest holds what the engines' tests share: a recorder that
// keeps what an engine records, in memory.
package enginetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/ternhq/tern/engine"
)

// ErrLease is what TaskStarted returns for Recorder.FailStart, as a ledger
// whose lease was lost would.
var ErrLease = errors.New("lease lost")

// Recorder is an engine.ProgressRecorder that keeps the calls an engine
// makes ("start 1", "done 1"), the state it saves and the progress it
// reports. The zero value is ready to use.
type Recorder struct {
	// FailStart, when not 0, makes TaskStarted of that task fail with
	// ErrLease.
	FailStart int

	mu       sync.Mutex
	calls    []string
	state    map[string]string
	progress []engine.Progress
	at       []time.Time
}

// TaskStarted notes "start seq", or fails for FailStart.
func (r *Recorder) TaskStarted(_ context.Context, seq int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq == r.FailStart {
		return ErrLease
	}
	r.calls = append(r.calls, fmt.Sprintf("start %d", seq))
	return nil
}

// TaskDone notes "done seq".
func (r *Recorder) TaskDone(_ context.Context, seq int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf("done %d", seq))
	return nil
}

// SaveState keeps k = v.
func (r *Recorder) SaveState(_ context.Context, k, v string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == nil {
		r.state = map[string]string{}
	}
	r.state[k] = v
	return nil
}

// TaskProgress keeps p and when it came.
func (r *Recorder) TaskProgress(_ context.Context, _ int, p engine.Progress) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.progress = append(r.progress, p)
	r.at = append(r.at, time.Now())
	return nil
}

// State returns a copy of the state saved so far.
func (r *Recorder) State() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]string{}
	maps.Copy(m, r.state)
	return m
}

// Progress returns the progress reported so far and when each came.
func (r *Recorder) Progress() ([]engine.Progress, []time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]engine.Progress(nil), r.progress...), append([]time.Time(nil), r.at...)
}

// String lists the calls noted so far: "start 1, done 1".
func (r *Recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.calls, ", ")
}
