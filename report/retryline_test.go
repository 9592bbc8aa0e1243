package report

import (
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/store"
)

// An apply whose first attempt ended waiting on work under way (not
// counted) shows as on its first attempt, never "attempt 0/5".
func TestRetryLineWaitingFirstAttempt(t *testing.T) {
	a := &store.Apply{State: store.FailedRetryable, Attempt: 0, MaxAttempts: 5, ErrorClass: store.ClassStillRunning,
		NextAttemptAt: time.Date(2026, 12, 2, 14, 5, 0, 0, time.UTC)}
	if got := RetryLine(a); !strings.HasPrefix(got, "attempt 1/5, next retry ~14:05 UTC") {
		t.Errorf("RetryLine = %q", got)
	}
}
