package fakegithub

import "github.com/google/go-github/v60/github"

// SetMergeableAfter makes the pull request's next nulls reads answer
// "mergeable": null ("mergeable_state": "unknown"), as GitHub does while it
// computes mergeability in the background after a push, and the reads
// after them mergeable.
func (s *Server) SetMergeableAfter(repo string, number, nulls int, mergeable bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mustPull(s.repoLocked(repo), number)
	p.mergeable = github.Bool(mergeable)
	p.mergeableNulls = nulls
}

// stillComputing blanks obj's mergeability while reads of p are to answer
// null. s.mu must be held.
func stillComputing(p *pull, obj *github.PullRequest) {
	if p.mergeableNulls > 0 {
		p.mergeableNulls--
		obj.Mergeable = nil
		obj.MergeableState = github.String("unknown")
	}
}
