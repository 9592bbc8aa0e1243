package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// LineError is a problem at a line of a config file. Load and ParseRepo
// report it as FILE:LINE: message, as compilers do.
type LineError struct {
	Line int
	Msg  string
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// atFile formats err as file: err, or file:line: message for a LineError.
func atFile(file string, err error) error {
	var le *LineError
	if errors.As(err, &le) {
		return fmt.Errorf("%s:%d: %s", file, le.Line, le.Msg)
	}
	return fmt.Errorf("%s: %w", file, err)
}

var durationType = reflect.TypeOf(Duration(0))

// checkKeys walks the YAML tree n against the type t that it decodes into,
// and reports the first key that t has no field for, with the line, the
// key path and the nearest known key ("did you mean"). With values set it
// also checks durations, naming their path and the fix. path is the key
// path of n ("" at the root).
func checkKeys(n *yaml.Node, t reflect.Type, path string, values bool) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			if err := checkKeys(c, t, path, values); err != nil {
				return err
			}
		}
		return nil
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if t == durationType {
		if values && n.Kind == yaml.ScalarNode {
			if _, err := parseDuration(n.Value); err != nil {
				return &LineError{Line: n.Line, Msg: fmt.Sprintf("%s: %v", path, err)}
			}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil // the decoder says what is wrong with the shape
		}
		fields := map[string]reflect.Type{}
		var names []string
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f.Type
			names = append(names, name)
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			ft, ok := fields[k.Value]
			if !ok {
				msg := fmt.Sprintf("unknown key %q", k.Value)
				if near := nearest(k.Value, names); near != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", near)
				} else {
					msg += " (known: " + strings.Join(names, ", ") + ")"
				}
				return &LineError{Line: k.Line, Msg: msg}
			}
			if err := checkKeys(n.Content[i+1], ft, p, values); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, c := range n.Content {
			if err := checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), values); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkKeys(n.Content[i+1], t.Elem(), path+"."+n.Content[i].Value, values); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseDuration parses a duration as config files write it: "10s",
// "1m30s", "0" or "".
func parseDuration(s string) (time.Duration, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		hint := "e.g. 30s, 5m, 1h"
		if isDigits(s) {
			hint = "a number needs a unit: " + s + "s"
		}
		return 0, fmt.Errorf("invalid duration %q (%s)", s, hint)
	}
	return v, nil
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// nearest returns the name closest to key when it is close enough to be a
// typo (an edit distance of at most a third of its length), or "".
func nearest(key string, names []string) string {
	best, bestD := "", max(1, len(key)/3)+1
	for _, n := range names {
		if d := editDistance(strings.ToLower(key), n); d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the edit distance between a and b, counting an
// insertion, a deletion, a substitution or a swap of two neighbours as one
// edit (optimal string alignment).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// keptTargets returns, by index, the targets of the config tree root that
// keep accepts, judged by their repository, database and environment as
// written; nil when keep is nil.
func keptTargets(root *yaml.Node, keep func(repository, database, environment string) bool) map[int]bool {
	if keep == nil {
		return nil
	}
	kept := map[int]bool{}
	ts := mappingValue(root, "targets")
	if ts == nil || ts.Kind != yaml.SequenceNode {
		return kept
	}
	for i, t := range ts.Content {
		field := func(k string) string {
			if v := mappingValue(t, k); v != nil && v.Kind == yaml.ScalarNode {
				return v.Value
			}
			return ""
		}
		if keep(field("repository"), field("database"), field("environment")) {
			kept[i] = true
		}
	}
	return kept
}

// mappingValue is the value of key in mapping n, or nil.
func mappingValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// skipTargets answers "" for every variable inside a target that kept
// does not hold, so that dropped targets need none of their variables.
func skipTargets(lookup keyLookup, kept map[int]bool) keyLookup {
	return func(path, name string) (string, bool) {
		var i int
		if _, err := fmt.Sscanf(path, "targets[%d]", &i); err == nil && !kept[i] {
			return "", true
		}
		return lookup(path, name)
	}
}
