package fakegithub

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path"
	"strconv"
	"strings"
	"time"
)

// limit is an armed rate limit or lost answer, matched like a fault.
type limit struct {
	method, pattern string
	left            int
	// status and header are what a rate limit answers; lose is set for
	// an answer lost after the request was performed.
	status int
	header http.Header
	msg    string
	lose   bool
}

// secondaryLimitMsg and the docs URL are what GitHub answers for a
// secondary rate limit.
const (
	secondaryLimitMsg = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID."
	secondaryLimitDoc = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
	primaryLimitDoc   = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-the-primary-rate-limit"
)

// SecondaryLimitNext makes the next n matching requests (see FailNext)
// answer as GitHub does for a secondary rate limit: 403 with its message,
// and Retry-After in seconds when retryAfter > 0 (GitHub sometimes sends
// none; clients must then wait at least a minute). Nothing is performed.
func (s *Server) SecondaryLimitNext(method, pathPattern string, n int, retryAfter time.Duration) {
	h := http.Header{}
	if retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(retryAfter/time.Second)))
	}
	s.arm(&limit{method: method, pattern: pathPattern, left: n, status: http.StatusForbidden, header: h, msg: secondaryLimitMsg})
}

// PrimaryLimitNext makes the next n matching requests answer as GitHub does
// when the installation's hourly budget is spent: 403 with
// x-ratelimit-remaining: 0 and x-ratelimit-reset at reset (Unix seconds).
func (s *Server) PrimaryLimitNext(method, pathPattern string, n int, reset time.Time) {
	h := http.Header{}
	h.Set("X-RateLimit-Limit", "5000")
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Used", "5000")
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	h.Set("X-RateLimit-Resource", "core")
	s.arm(&limit{method: method, pattern: pathPattern, left: n, status: http.StatusForbidden, header: h, msg: "API rate limit exceeded for installation."})
}

// LoseAnswerNext makes the next n matching requests be performed and their
// answer lost: the client gets a 502 from a proxy, as when a connection
// drops after GitHub acted. Retrying such a POST blindly duplicates it.
func (s *Server) LoseAnswerNext(method, pathPattern string, n int) {
	s.arm(&limit{method: method, pattern: pathPattern, left: n, lose: true})
}

func (s *Server) arm(l *limit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits = append(s.limits, l)
}

func (s *Server) takeLimit(method, p string) *limit {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, l := range s.limits {
		if l.method != "" && !strings.EqualFold(l.method, method) {
			continue
		}
		if ok, _ := path.Match(l.pattern, p); !ok {
			continue
		}
		l.left--
		if l.left <= 0 {
			s.limits = append(s.limits[:i], s.limits[i+1:]...)
		}
		return l
	}
	return nil
}

// serveLimited answers r from an armed limit and reports whether it did.
func (s *Server) serveLimited(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
	l := s.takeLimit(r.Method, r.URL.Path)
	if l == nil {
		return false
	}
	if l.lose {
		next.ServeHTTP(httptest.NewRecorder(), r)
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		fmt.Fprint(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
		return true
	}
	for k, vs := range l.header {
		w.Header()[k] = vs
	}
	doc := secondaryLimitDoc
	if l.header.Get("X-RateLimit-Remaining") == "0" {
		doc = primaryLimitDoc
	}
	writeError(w, l.status, l.msg, doc)
	return true
}
