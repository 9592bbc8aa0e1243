package fakegithub

import (
	"bytes"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// Hold is a request held by HoldNext: it waits, before authentication or
// any state change, until Release.
type Hold struct {
	method, pattern string
	arrived         chan struct{}
	release         chan struct{}
	once            sync.Once
}

// Arrived is closed once the held request has reached the server and is
// waiting.
func (h *Hold) Arrived() <-chan struct{} { return h.arrived }

// Release lets the held request go on (once it arrives, or at once if it
// is waiting). Calling it more than once is harmless.
func (h *Hold) Release() { h.once.Do(func() { close(h.release) }) }

// HoldNext makes the next request whose method and URL path match (as in
// FailNext) wait before it is handled, until the returned Hold is released:
// a request that reaches GitHub late, after requests sent later. The test's
// cleanup should Release it.
func (s *Server) HoldNext(method, pathPattern string) *Hold {
	h := &Hold{method: method, pattern: pathPattern, arrived: make(chan struct{}), release: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holds = append(s.holds, h)
	return h
}

// takeHold returns the first armed hold matching the request, disarmed, or nil.
func (s *Server) takeHold(method, p string) *Hold {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, h := range s.holds {
		if !matches(h.method, h.pattern, method, p) {
			continue
		}
		s.holds = append(s.holds[:i], s.holds[i+1:]...)
		return h
	}
	return nil
}

// SetLatency makes the server answer each request late: the request is
// handled (its state change made) at once, and its answer is sent after
// f(method, path) (called once the request was handled). A client that gives up waiting has still changed
// GitHub, as with the real service. nil removes the latency.
func (s *Server) SetLatency(f func(method, path string) time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = f
}

func (s *Server) latencyOf(method, p string) time.Duration {
	s.mu.Lock()
	f := s.latency
	s.mu.Unlock()
	if f == nil {
		return 0
	}
	return f(method, p)
}

// matches reports whether a rule's method ("" for any) and path.Match
// pattern match a request.
func matches(ruleMethod, pattern, method, p string) bool {
	if ruleMethod != "" && !strings.EqualFold(ruleMethod, method) {
		return false
	}
	ok, _ := path.Match(pattern, p)
	return ok
}

// bufferedResponse holds an answer so that it can be sent late.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// sendTo copies the buffered answer to w.
func (b *bufferedResponse) sendTo(w http.ResponseWriter) {
	for k, v := range b.header {
		w.Header()[k] = v
	}
	if b.status == 0 {
		b.status = http.StatusOK
	}
	w.WriteHeader(b.status)
	_, _ = w.Write(b.body.Bytes())
}
