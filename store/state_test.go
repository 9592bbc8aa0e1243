package store

import (
	"fmt"
	"testing"
)

var allStates = []State{Pending, Running, FailedRetryable, Completed, Failed, Cancelled}

// TestTransitions checks every (from, to) pair of both machines against
// CONTRACT §8 as written out here, independently of state.go's tables.
func TestTransitions(t *testing.T) {
	applyAllowed := map[string]bool{
		"pending>running": true, "pending>cancelled": true, "pending>failed": true,
		"running>completed": true, "running>failed": true, "running>failed_retryable": true, "running>cancelled": true,
		"failed_retryable>running": true, "failed_retryable>pending": true, "failed_retryable>cancelled": true,
		"failed_retryable>failed": true,
	}
	taskAllowed := map[string]bool{
		"pending>running": true, "pending>completed": true, "pending>cancelled": true, "pending>failed": true,
		"running>completed": true, "running>failed": true, "running>failed_retryable": true, "running>cancelled": true,
		"failed_retryable>running": true, "failed_retryable>completed": true, "failed_retryable>cancelled": true,
		"failed_retryable>failed": true,
	}
	for _, from := range allStates {
		for _, to := range allStates {
			key := fmt.Sprintf("%s>%s", from, to)
			t.Run(key, func(t *testing.T) {
				if got := CanTransitionApply(from, to); got != applyAllowed[key] {
					t.Errorf("apply %s -> %s: allowed=%v, want %v", from, to, got, applyAllowed[key])
				}
				if got := CanTransitionTask(from, to); got != taskAllowed[key] {
					t.Errorf("task %s -> %s: allowed=%v, want %v", from, to, got, taskAllowed[key])
				}
			})
		}
	}
	for _, s := range allStates {
		if s.Terminal() == s.Active() {
			t.Errorf("%s: Terminal=%v Active=%v, want exactly one", s, s.Terminal(), s.Active())
		}
	}
}

func TestDeriveApplyState(t *testing.T) {
	P, R, FR, C, F, X := Pending, Running, FailedRetryable, Completed, Failed, Cancelled
	tests := []struct {
		tasks []State
		want  State
	}{
		{nil, C},
		{[]State{C, C}, C},
		{[]State{P, P}, P},
		{[]State{C, P}, R},
		{[]State{C, R, P}, R},
		{[]State{C, FR, P}, FR},
		{[]State{FR, F}, F}, // failed wins over failed_retryable
		{[]State{C, F, X}, F},
		{[]State{C, X}, X},
		{[]State{X, X}, X},
		{[]State{R}, R},
		{[]State{FR, R}, FR},
		{[]State{P, X}, P},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.tasks), func(t *testing.T) {
			if got := DeriveApplyState(tt.tasks); got != tt.want {
				t.Errorf("DeriveApplyState(%v) = %s, want %s", tt.tasks, got, tt.want)
			}
		})
	}
}
