package plan

import (
	"fmt"
	"strings"
)

// rawStatement is one statement cut from a schema file.
type rawStatement struct {
	// Text is the statement as written, from its first significant
	// character up to (not including) the terminating semicolon. It is what
	// the shadow server runs, so the server interprets it exactly as it
	// would interpret the file.
	Text string
	// Expanded is Text with the markers of executable comments (/*!NNNNN
	// ... */ and /*M!NNNNNN ... */) blanked out and their content kept, so
	// that vetting sees everything that any server might execute.
	Expanded string
	// Line is the 1-based line of the statement's first significant
	// character in its file.
	Line int
	// HasExecComment reports whether the statement holds an executable
	// comment, whose meaning depends on the server's version.
	HasExecComment bool
}

// splitStatements cuts a schema file into statements at semicolons that
// are outside quotes, backticks and comments (--, #, /* */). Executable
// comments count as statement text. Statements made only of whitespace
// and comments are dropped.
func splitStatements(src string) ([]rawStatement, error) {
	var (
		out      []rawStatement
		start    = -1 // offset of the current statement's first significant byte
		startLn  int
		line     = 1
		exp      strings.Builder // expanded text of the current statement
		inExec   bool            // inside an executable comment
		execLine int
		hasExec  bool
	)
	mark := func(i int) {
		if start < 0 {
			start, startLn = i, line
			exp.Reset()
			hasExec = false
		}
	}
	flush := func(end int) {
		if start >= 0 {
			out = append(out, rawStatement{
				Text:           strings.TrimRight(src[start:end], " \t\r\n"),
				Expanded:       strings.TrimRight(exp.String(), " \t\r\n"),
				Line:           startLn,
				HasExecComment: hasExec,
			})
		}
		start = -1
	}
	// emit copies src[i:j] to the expanded text when a statement is open.
	emit := func(i, j int) {
		if start >= 0 {
			exp.WriteString(src[i:j])
		}
	}
	blank := func(i, j int) {
		if start >= 0 {
			for _, c := range []byte(src[i:j]) {
				if c == '\n' {
					exp.WriteByte('\n')
				} else {
					exp.WriteByte(' ')
				}
			}
		}
	}
	n := len(src)
	for i := 0; i < n; {
		c := src[i]
		switch {
		case c == '\n':
			line++
			emit(i, i+1)
			i++
		case c == ' ' || c == '\t' || c == '\r' || c == '\f':
			emit(i, i+1)
			i++
		case c == '#' || (c == '-' && i+1 < n && src[i+1] == '-' && (i+2 == n || isSpace(src[i+2]))):
			// Line comment: up to the end of the line.
			j := strings.IndexByte(src[i:], '\n')
			if j < 0 {
				j = n
			} else {
				j += i
			}
			blank(i, j)
			i = j
		case c == '/' && i+1 < n && src[i+1] == '*':
			if m := execMarker(src[i:]); m > 0 {
				mark(i)
				hasExec = true
				if inExec {
					return nil, fmt.Errorf("%d: nested executable comment", line)
				}
				inExec, execLine = true, line
				blank(i, i+m)
				i += m
				continue
			}
			j := strings.Index(src[i+2:], "*/")
			if j < 0 {
				return nil, fmt.Errorf("%d: unterminated /* comment", line)
			}
			j += i + 4
			line += strings.Count(src[i:j], "\n")
			blank(i, j)
			i = j
		case c == '*' && inExec && i+1 < n && src[i+1] == '/':
			inExec = false
			blank(i, i+2)
			i += 2
		case c == '\'' || c == '"' || c == '`':
			mark(i)
			j := i + 1
			for {
				if j >= n {
					return nil, fmt.Errorf("%d: unterminated %c quote", line, c)
				}
				if src[j] == '\\' && c != '`' {
					j += 2
					continue
				}
				if src[j] == c {
					if j+1 < n && src[j+1] == c { // doubled quote
						j += 2
						continue
					}
					break
				}
				j++
			}
			j++
			line += strings.Count(src[i:j], "\n")
			emit(i, j)
			i = j
		case c == ';' && !inExec:
			flush(i)
			i++
		default:
			mark(i)
			emit(i, i+1)
			i++
		}
	}
	if inExec {
		return nil, fmt.Errorf("%d: unterminated executable comment", execLine)
	}
	flush(n)
	return out, nil
}

// execMarker returns the length of an executable comment's opening marker
// at the start of s ("/*!", "/*!50705", "/*M!100100"), or 0.
func execMarker(s string) int {
	var i int
	switch {
	case strings.HasPrefix(s, "/*!"):
		i = 3
	case strings.HasPrefix(s, "/*M!"):
		i = 4
	default:
		return 0
	}
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'
}
