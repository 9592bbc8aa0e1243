package bot

import (
	"fmt"
	"slices"
	"strings"
)

// Command is one parsed `/tern` command.
type Command struct {
	// Name is plan, apply, unlock, retry, cancel, status or help.
	Name        string
	Database    string // -d; "" for every database
	Environment string // -e; "" for every environment
	AllowUnsafe bool   // --allow-unsafe (apply only)
	// AllowBlocking is --allow-blocking (apply only): run statements that
	// block writes to a large table.
	AllowBlocking bool
	// Line is the command line as typed, for replies.
	Line string
}

// ParseError is a command tern recognised as meant for it but could not
// parse; the reply shows it with the usage.
type ParseError struct {
	Line string
	Msg  string
}

func (e *ParseError) Error() string { return e.Msg }

type commandSpec struct {
	flags   []string // canonical flags allowed: "d", "e", "allow-unsafe"
	needEnv bool
}

var commandSpecs = map[string]commandSpec{
	"plan":   {flags: []string{"d", "e"}},
	"apply":  {flags: []string{"d", "e", "allow-unsafe", "allow-blocking"}, needEnv: true},
	"unlock": {flags: []string{"d", "e"}},
	"retry":  {flags: []string{"d", "e"}, needEnv: true},
	"cancel": {flags: []string{"d", "e"}, needEnv: true},
	"status": {},
	"help":   {},
}

var flagAliases = map[string]string{
	"-d": "d", "--database": "d", "--db": "d",
	"-e": "e", "--env": "e", "--environment": "e",
	"--allow-unsafe":   "allow-unsafe",
	"--allow-blocking": "allow-blocking",
}

// ParseCommand reads a comment body. ok is false when the comment is not a
// tern command: its first non-blank line does not start with "/tern". A
// command that is meant for tern but malformed returns a *ParseError.
func ParseCommand(body string) (cmd *Command, ok bool, err error) {
	var line string
	for _, l := range strings.Split(body, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			line = l
			break
		}
	}
	fields := strings.Fields(line)
	if len(fields) == 0 || fields[0] != "/tern" {
		return nil, false, nil
	}
	bad := func(format string, a ...any) (*Command, bool, error) {
		return nil, true, &ParseError{Line: line, Msg: fmt.Sprintf(format, a...)}
	}
	if len(fields) == 1 {
		return &Command{Name: "help", Line: line}, true, nil
	}
	name := fields[1]
	spec, known := commandSpecs[name]
	if !known {
		return bad("unknown command %q", name)
	}
	cmd = &Command{Name: name, Line: line}
	seen := map[string]bool{}
	args := fields[2:]
	for i := 0; i < len(args); i++ {
		arg := args[i]
		flag, value, hasValue := strings.Cut(arg, "=")
		canon, isFlag := flagAliases[flag]
		if !isFlag {
			if strings.HasPrefix(arg, "-") {
				return bad("unknown flag %q for %q", flag, name)
			}
			return bad("unexpected argument %q for %q", arg, name)
		}
		if !slices.Contains(spec.flags, canon) {
			return bad("flag %q is not accepted by %q", flag, name)
		}
		if seen[canon] {
			return bad("flag %q given twice", flag)
		}
		seen[canon] = true
		if canon == "allow-unsafe" || canon == "allow-blocking" {
			if hasValue {
				return bad("flag %q takes no value", flag)
			}
			cmd.AllowUnsafe = cmd.AllowUnsafe || canon == "allow-unsafe"
			cmd.AllowBlocking = cmd.AllowBlocking || canon == "allow-blocking"
			continue
		}
		if !hasValue {
			if i+1 >= len(args) || strings.HasPrefix(args[i+1], "-") {
				return bad("flag %q needs a value", flag)
			}
			i++
			value = args[i]
		}
		if value == "" {
			return bad("flag %q needs a value", flag)
		}
		switch canon {
		case "d":
			cmd.Database = value
		case "e":
			cmd.Environment = value
		}
	}
	if spec.needEnv && cmd.Environment == "" {
		return bad("%q needs an environment: -e ENV", name)
	}
	return cmd, true, nil
}

// needsWrite reports whether the command changes something and so needs
// write, maintain or admin permission.
func (c *Command) needsWrite() bool {
	switch c.Name {
	case "apply", "unlock", "retry", "cancel":
		return true
	}
	return false
}
