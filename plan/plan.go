// Package plan turns desired CREATE TABLE files and a live schema into
// ordered DDL: it parses and vets the files, loads them into a throwaway
// shadow schema, diffs the server-normalized forms with vitess schemadiff,
// and lints the result for changes that can lose data.
package plan

import (
	"vitess.io/vitess/go/vt/sqlparser"

	"github.com/ternhq/tern/config"
)

// File is one schema file as read from a checkout or from GitHub.
type File struct {
	Path string // repository-relative, used in error messages
	Data []byte
}

// Table is one desired CREATE TABLE statement.
type Table struct {
	Name string `json:"name"`
	File string `json:"file"`
	Line int    `json:"line"`
	SQL  string `json:"sql"`
}

// Desired is the desired schema of one database.
type Desired struct {
	// Tables sorted by name.
	Tables []Table
	// Lint is the lint policy the plan is judged by (tern.yaml's lint:
	// key); the zero value runs every check at its default level.
	Lint config.Lint
	// hash computes Hash once; nil in a Desired not made by Parse.
	hash func() string
	// written holds, by name, the parse of the tables whose text parsed
	// as written (parseDesired clones them instead of parsing again);
	// never modified.
	written map[string]*sqlparser.CreateTable
}

// Hash identifies the desired schema: equal hashes want the same tables.
// It does not depend on file names or comments. It is computed when first
// asked for; "" for a Desired not made by Parse.
func (d *Desired) Hash() string {
	if d == nil || d.hash == nil {
		return ""
	}
	return d.hash()
}

// DesiredHash is the Hash of the desired schema p was planned for; "" for
// a plan not made by a Planner.
func (p *Plan) DesiredHash() string { return p.desired.Hash() }

// Kinds of statements.
const (
	KindCreate = "create"
	KindAlter  = "alter"
	KindDrop   = "drop"
)

// Severities of lint findings.
const (
	// SeverityError findings are unsafe: applying needs --allow-unsafe.
	SeverityError = "error"
	// SeverityWarning findings are shown but do not block.
	SeverityWarning = "warning"
)

// Finding is one lint finding.
type Finding struct {
	// Check is the id of the lint check that found it (LintChecks).
	Check    string `json:"check"`
	Severity string `json:"severity"`
	Table    string `json:"table"`
	Column   string `json:"column,omitempty"`
	Index    string `json:"index,omitempty"`
	// Message says what and why, e.g. "drops column email: its data is lost".
	Message string `json:"message"`
	// Statement is the 0-based index of the statement it is about.
	Statement int `json:"statement"`
}

// Statement is one DDL statement of a plan.
type Statement struct {
	Table   string `json:"table"`
	Kind    string `json:"kind"`
	DDL     string `json:"ddl"`
	Instant bool   `json:"instant"`
	// Cost says how the target runs the statement (Planner.Cost); nil
	// until it is judged.
	Cost *Cost `json:"cost,omitempty"`
}

// Plan is the result of planning one database against one live schema.
type Plan struct {
	Statements []Statement `json:"statements"`
	Findings   []Finding   `json:"findings"`
	// desired is the desired schema planned; nil in a plan not made by
	// a Planner.
	desired *Desired
	// live is what the plan read of the live schema: Cost judges the
	// statements against the same definitions. nil in a plan read back
	// from JSON (Cost then reads them).
	live *liveSchema
}

// HasChanges reports whether the plan has any DDL.
func (p *Plan) HasChanges() bool { return len(p.Statements) > 0 }

// Unsafe returns the findings that need --allow-unsafe.
func (p *Plan) Unsafe() []Finding {
	var out []Finding
	for _, f := range p.Findings {
		if f.Severity == SeverityError {
			out = append(out, f)
		}
	}
	return out
}
