// Package redact keeps secrets out of output: a Writer that replaces every
// known secret in what passes through it. tern's log handlers write through
// one, so a DSN password or token that reached a log line by accident is
// still never printed.
package redact

import (
	"io"
	"slices"
	"strings"
)

// Mask is what a secret becomes.
const Mask = "***"

// Secrets returns the strings to hide for secrets: each secret whole and,
// for multi-line secrets such as PEM keys, each line of 8 or more
// characters on its own. Longer strings come first so that a secret that
// contains another is replaced whole.
func Secrets(secrets []string) []string {
	var out []string
	for _, s := range secrets {
		if s == "" {
			continue
		}
		out = append(out, s)
		if strings.Contains(s, "\n") {
			for _, line := range strings.Split(s, "\n") {
				if line = strings.TrimSpace(line); len(line) >= 8 && !strings.HasPrefix(line, "-----") {
					out = append(out, line)
				}
			}
		}
	}
	slices.SortFunc(out, func(a, b string) int { return len(b) - len(a) })
	return slices.Compact(out)
}

// String returns s with every secret replaced by Mask.
func String(s string, secrets []string) string {
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, Mask)
		}
	}
	return s
}

// Writer redacts each Write on its own (slog handlers write whole records),
// then passes it on.
type Writer struct {
	w       io.Writer
	secrets []string
}

// NewWriter returns a Writer that hides secrets (see Secrets) from w.
func NewWriter(w io.Writer, secrets []string) *Writer {
	return &Writer{w: w, secrets: Secrets(secrets)}
}

// Write writes p with secrets masked. It reports len(p) on success.
func (r *Writer) Write(p []byte) (int, error) {
	s := String(string(p), r.secrets)
	if _, err := io.WriteString(r.w, s); err != nil {
		return 0, err
	}
	return len(p), nil
}
