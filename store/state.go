package store

// The state machine of CONTRACT §8, in one place. Every write that changes
// a state checks CanTransition first and is fenced in SQL on the state it
// expects.

var applyTransitions = map[State][]State{
	// Claimed by a worker, cancelled by a user or a closed PR.
	Pending: {Running, Cancelled, Failed},
	// A worker ends its attempt, or a rescue hands a lapsed apply back.
	Running: {Completed, Failed, FailedRetryable, Cancelled},
	// Claimed again, pulled forward by /tern retry, cancelled, or out of
	// attempts.
	FailedRetryable: {Running, Pending, Cancelled, Failed},
}

var taskTransitions = map[State][]State{
	// Run, skipped because already live (Completed), or cut short.
	Pending: {Running, Completed, Cancelled, Failed},
	Running: {Completed, Failed, FailedRetryable, Cancelled},
	// Retried, found live on resume, or cut short.
	FailedRetryable: {Running, Completed, Cancelled, Failed},
}

// CanTransitionApply reports whether an apply may move from one state to
// another.
func CanTransitionApply(from, to State) bool { return allowed(applyTransitions, from, to) }

// CanTransitionTask reports whether a task may move from one state to
// another.
func CanTransitionTask(from, to State) bool { return allowed(taskTransitions, from, to) }

func allowed(m map[State][]State, from, to State) bool {
	for _, s := range m[from] {
		if s == to {
			return true
		}
	}
	return false
}

// DeriveApplyState returns the state an apply has given its tasks' states:
// any failed task makes it failed (even when another is failed_retryable);
// then failed_retryable; then running; all completed is completed; a mix
// of completed and cancelled (or all cancelled) is cancelled; otherwise
// pending. An apply with no tasks is completed.
func DeriveApplyState(tasks []State) State {
	var n [6]int
	idx := map[State]int{Pending: 0, Running: 1, FailedRetryable: 2, Completed: 3, Failed: 4, Cancelled: 5}
	for _, s := range tasks {
		n[idx[s]]++
	}
	switch {
	case n[4] > 0:
		return Failed
	case n[2] > 0:
		return FailedRetryable
	case n[1] > 0:
		return Running
	case n[0] > 0 && (n[3] > 0):
		// Some done, the rest still to run: the apply is under way.
		return Running
	case n[0] > 0:
		return Pending
	case n[5] > 0:
		return Cancelled
	default:
		return Completed
	}
}
