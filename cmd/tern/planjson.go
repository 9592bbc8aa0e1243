package main

import (
	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/report"
)

// planFormatVersion is the format_version of `tern plan --json`. It grows
// when a field changes meaning or goes away; new fields do not change it.
const planFormatVersion = 1

// planJSON is what `tern plan --json` prints. Statements and findings
// embed plan.Statement and plan.Finding, so a field added there appears
// here without a change to this file.
type planJSON struct {
	FormatVersion int               `json:"format_version"`
	Target        planJSONTarget    `json:"target"`
	DesiredHash   string            `json:"desired_hash"`
	Summary       report.PlanCounts `json:"summary"`
	Statements    []planJSONStmt    `json:"statements"`
	Findings      []planJSONFinding `json:"findings"`
}

// planJSONTarget names what was planned.
type planJSONTarget struct {
	Repository    string `json:"repository,omitempty"`
	Database      string `json:"database"`
	Environment   string `json:"environment,omitempty"`
	LiveSchema    string `json:"live_schema"`
	ServerVersion string `json:"server_version"`
	SchemaDir     string `json:"schema_dir"`
}

// planJSONStmt is one statement with its 1-based number.
type planJSONStmt struct {
	Number int `json:"number"`
	plan.Statement
}

// planJSONFinding is one finding, with the 1-based number of its statement
// and the word the CLI and the PR show for its severity ("unsafe" or
// "warning").
type planJSONFinding struct {
	plan.Finding
	Severity  string `json:"severity"`
	Statement int    `json:"statement"`
}

// planJSONOf renders p, planned for t, as `tern plan --json` prints it.
func planJSONOf(t planTarget, p *plan.Plan) planJSON {
	out := planJSON{
		FormatVersion: planFormatVersion,
		Target: planJSONTarget{Repository: t.repo, Database: t.database, Environment: t.env,
			LiveSchema: t.live, ServerVersion: t.serverVersion, SchemaDir: t.schemaDir},
		DesiredHash: p.DesiredHash(),
		Summary:     report.CountPlan(p),
		Statements:  make([]planJSONStmt, len(p.Statements)),
		Findings:    make([]planJSONFinding, len(p.Findings)),
	}
	for i, s := range p.Statements {
		out.Statements[i] = planJSONStmt{Number: i + 1, Statement: s}
	}
	for i, f := range p.Findings {
		out.Findings[i] = planJSONFinding{Finding: f, Severity: report.FindingWord(f.Severity), Statement: f.Statement + 1}
	}
	return out
}
