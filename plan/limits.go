package plan

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/ternhq/tern/config"
)

// Defaults of Limits.
const (
	DefaultMaxFileBytes  = 1 << 20  // 1 MiB
	DefaultMaxTotalBytes = 16 << 20 // 16 MiB
	DefaultMaxTables     = 5000
	DefaultPlanTimeout   = 2 * time.Minute
)

// Limits bound what one plan may read and how long it may take. Schema
// files come from whoever can push to a pull request, so a plan over a
// limit fails before anything is sent to a server. A zero field takes its
// default.
type Limits struct {
	// MaxFileBytes caps one schema file. Default 1 MiB.
	MaxFileBytes int64
	// MaxTotalBytes caps all schema files of one database. Default 16 MiB.
	MaxTotalBytes int64
	// MaxTables caps the CREATE TABLE statements of one database. Default
	// 5000.
	MaxTables int
	// PlanTimeout is the deadline of one plan against one target, shadow
	// schema included. Default 2m.
	PlanTimeout time.Duration
}

// LimitsFromConfig returns the limits of the server config's limits:
// block.
func LimitsFromConfig(c config.Limits) Limits {
	return Limits{MaxFileBytes: c.MaxFileBytes, MaxTotalBytes: c.MaxTotalBytes, MaxTables: c.MaxTables, PlanTimeout: c.PlanTimeout.D()}
}

func (l Limits) withDefaults() Limits {
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = DefaultMaxFileBytes
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = DefaultMaxTotalBytes
	}
	if l.MaxTables <= 0 {
		l.MaxTables = DefaultMaxTables
	}
	if l.PlanTimeout <= 0 {
		l.PlanTimeout = DefaultPlanTimeout
	}
	return l
}

// LimitError is a plan refused because its input is over a limit.
type LimitError struct {
	// Subject is what is over: a file's path, or the schema directory.
	Subject string
	// Key is the config key of the limit, e.g. "limits.max_tables".
	Key string
	// Unit is what Got and Max count: "bytes", "tables".
	Unit     string
	Got, Max int64
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: %d %s, over the limit of %d (%s) by %d; nothing was sent to a server",
		e.Subject, e.Got, e.Unit, e.Max, e.Key, e.Got-e.Max)
}

// Parse is the package's Parse under l: the files are measured against
// the limits before anything is parsed.
func (l Limits) Parse(files []File) (*Desired, error) {
	l = l.withDefaults()
	sizes := make([]FileSize, len(files))
	for i, f := range files {
		sizes[i] = FileSize{Path: f.Path, Size: int64(len(f.Data))}
	}
	if err := l.CheckSizes(sizes); err != nil {
		return nil, err
	}
	subject := filesSubject(sizes)
	// A file that does not split counts nothing here: parse reports it
	// with its line.
	return parse(files, func(tables int64) error {
		if tables > int64(l.MaxTables) {
			return &LimitError{Subject: subject, Key: "limits.max_tables", Unit: "tables", Got: tables, Max: int64(l.MaxTables)}
		}
		return nil
	})
}

// FileSize is a schema file's path and size, known before its content
// (a Git tree lists both).
type FileSize struct {
	Path string
	Size int64
}

// CheckSizes measures files against MaxFileBytes and MaxTotalBytes, so
// that a reader can refuse files before it downloads them.
func (l Limits) CheckSizes(files []FileSize) error {
	l = l.withDefaults()
	var total int64
	for _, f := range files {
		if err := l.checkFile(f.Path, f.Size); err != nil {
			return err
		}
		total += f.Size
	}
	if total > l.MaxTotalBytes {
		return &LimitError{Subject: filesSubject(files), Key: "limits.max_total_bytes", Unit: "bytes", Got: total, Max: l.MaxTotalBytes}
	}
	return nil
}

// filesSubject names a set of files in a LimitError: their common
// directory, as "schema files in db/shop".
func filesSubject(files []FileSize) string {
	var dir string
	for i, f := range files {
		d := path.Dir(f.Path)
		if i == 0 {
			dir = d
			continue
		}
		for dir != "." && dir != "/" && d != dir && !strings.HasPrefix(d, dir+"/") {
			dir = path.Dir(dir)
		}
	}
	if dir == "" || dir == "." || dir == "/" {
		return "schema files"
	}
	return "schema files in " + dir
}

// checkFile refuses a file of size bytes over MaxFileBytes; l has its
// defaults.
func (l Limits) checkFile(path string, size int64) error {
	if size > l.MaxFileBytes {
		return &LimitError{Subject: path, Key: "limits.max_file_bytes", Unit: "bytes", Got: size, Max: l.MaxFileBytes}
	}
	return nil
}

// LoadDir is the package's LoadDir under DefaultLimits.
func LoadDir(root, dir string) (*Desired, error) { return Limits{}.LoadDir(root, dir) }

// Parse parses and vets the desired schema files under the default
// Limits; see Limits.Parse.
func Parse(files []File) (*Desired, error) { return Limits{}.Parse(files) }

// planDeadline bounds ctx by the plan timeout. done turns an error caused
// by that deadline into a LimitError-like message naming the key.
func (l Limits) planDeadline(ctx context.Context) (context.Context, func(error) error) {
	l = l.withDefaults()
	cause := fmt.Errorf("the plan took longer than its deadline of %s (limits.plan_timeout)", l.PlanTimeout)
	ctx, cancel := context.WithTimeoutCause(ctx, l.PlanTimeout, cause)
	return ctx, func(err error) error {
		defer cancel()
		if err != nil && errors.Is(context.Cause(ctx), cause) {
			return fmt.Errorf("%w: %v", cause, err)
		}
		return err
	}
}
