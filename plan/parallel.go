package plan

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// parallel calls f(i) for each i in [0, n), on as many goroutines as the
// process has processors, and returns when every call has returned. The
// calls must not depend on one another: each writes its own result.
func parallel(n int, f func(i int)) {
	w := min(runtime.GOMAXPROCS(0), n)
	if w <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range w {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}
