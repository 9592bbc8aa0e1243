package report

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/store"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got ---\n%s\n--- want ---\n%s", name, path, got, want)
	}
}

func renderCheck(c Check) string {
	return fmt.Sprintf("name: %s\nstatus: %s\nconclusion: %s\nretry button: %v\ntitle: %s\n--- summary ---\n%s\n--- text ---\n%s",
		c.Name, c.Status, c.Conclusion, c.Retry, c.Title, c.Summary, c.Text)
}

var (
	addEmail = &plan.Plan{Statements: []plan.Statement{
		{Table: "users", Kind: plan.KindAlter, DDL: "ALTER TABLE `users` ADD COLUMN `email` varchar(255) NOT NULL DEFAULT ''"},
		{Table: "orders", Kind: plan.KindCreate, DDL: "CREATE TABLE `orders` (\n  `id` bigint NOT NULL,\n  PRIMARY KEY (`id`)\n)"},
	}, Findings: []plan.Finding{{Severity: plan.SeverityWarning, Table: "users", Column: "email", Message: "adds NOT NULL column", Statement: 0}}}
	dropCol = &plan.Plan{Statements: []plan.Statement{
		{Table: "users", Kind: plan.KindAlter, DDL: "ALTER TABLE `users` DROP COLUMN `legacy`"},
	}, Findings: []plan.Finding{{Check: plan.CheckDropColumn, Severity: plan.SeverityError, Table: "users", Column: "legacy", Message: "drops column legacy: its data is lost", Statement: 0}}}
	sha   = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
	clock = time.Date(2024, 5, 1, 14, 5, 0, 0, time.UTC)
)

func applyIn(state store.State, attempt int, lastErr string) *store.Apply {
	return &store.Apply{ID: 7, Repository: "acme/shop", PR: 3, HeadSHA: sha, Database: "shop", Environment: "staging",
		State: state, Attempt: attempt, MaxAttempts: 5, NextAttemptAt: clock, LastError: lastErr, ErrorClass: "lock_wait_timeout",
		RequestedBy: "octocat"}
}

func tasksIn(states ...store.State) []store.Task {
	var out []store.Task
	for i, s := range states {
		out = append(out, store.Task{ApplyID: 7, Seq: i + 1, Table: addEmail.Statements[i].Table, Kind: addEmail.Statements[i].Kind, DDL: addEmail.Statements[i].DDL, State: s})
	}
	return out
}

func TestGolden(t *testing.T) {
	cases := []struct {
		name string
		got  string
	}{
		{"plan_comment", RenderPlanComment(PlanComment{HeadSHA: sha, Results: []PlanResult{
			{Database: "shop", Environment: "staging", Plan: addEmail},
			{Database: "shop", Environment: "production", Plan: addEmail},
			{Database: "crm", Environment: "staging", Plan: &plan.Plan{}},
			{Database: "crm", Environment: "production", Plan: dropCol},
			{Database: "logs", Environment: "staging", Err: "db/logs/events.sql:3: only CREATE TABLE statements are allowed"},
		}, MultiDB: true})},
		{"plan_comment_policy_changes", RenderPlanComment(PlanComment{HeadSHA: sha, Results: []PlanResult{
			{Database: "shop", Environment: "staging", Plan: addEmail},
		}, PolicyChanges: []string{"`apply_requirements`", "the environments of `shop`"}})},
		{"plan_comment_plan_only", RenderPlanComment(PlanComment{HeadSHA: sha, Results: []PlanResult{
			{Database: "shop", Environment: "staging", Plan: addEmail},
		}, PlanOnly: "the base branch `main` has no `tern.yaml` yet"})},
		{"plan_comment_config_error", RenderPlanComment(PlanComment{HeadSHA: sha, ConfigErr: "tern.yaml: databases: at least one database is required"})},
		{"apply_comment_running", ApplyComment(applyIn(store.Running, 1, ""), tasksIn(store.Completed, store.Running))},
		{"apply_comment_retrying", ApplyComment(applyIn(store.FailedRetryable, 2, "Error 1205: Lock wait timeout exceeded"), tasksIn(store.Completed, store.FailedRetryable))},
		{"apply_comment_applied", ApplyComment(applyIn(store.Completed, 1, ""), tasksIn(store.Completed, store.Completed))},
		{"outcome_applied", OutcomeComment(applyIn(store.Completed, 3, ""))},
		{"outcome_failed", OutcomeComment(applyIn(store.Failed, 5, "Error 1205: Lock wait timeout exceeded"))},
		{"status", StatusTable([]*store.Apply{applyIn(store.Completed, 1, ""), applyIn(store.FailedRetryable, 2, "Error 1205: Lock wait timeout exceeded")},
			[]store.Lock{{Repository: "acme/shop", Database: "shop", Environment: "staging", PR: 3}}, nil)},
		{"help", Help()},
		{"bad_command", BadCommand("/tern aply -e staging", `unknown command "aply"`)},
		{"refuse_permission", RefusePermission("/tern apply -e staging", "mallory", "read")},
		{"refuse_lock", RefuseLock("/tern apply -e staging", "shop", "staging", 12)},
		{"refuse_promotion", RefusePromotion("/tern apply -e production", "shop", "production", "staging")},
		{"refuse_unsafe", RefuseUnsafe("/tern apply -e staging", "shop", "staging", dropCol)},
		{"refuse_requirement", RefuseRequirement("/tern apply -e staging", "approved", "no approving review")},
		{"unmerged", UnmergedComment(9, []LiveNotMerged{{Database: "shop", Environment: "staging", DDL: []string{addEmail.Statements[0].DDL}, AppliedAt: clock}})},
		{"check_plan_awaiting", renderCheck(PlanCheck(PlanResult{Database: "shop", Environment: "staging", Plan: addEmail}, "", false))},
		{"check_plan_waiting", renderCheck(PlanCheck(PlanResult{Database: "shop", Environment: "production", Plan: addEmail}, "staging", false))},
		{"check_plan_failed", renderCheck(PlanCheck(PlanResult{Database: "shop", Environment: "staging", Err: "db/shop/a.sql:1: syntax error"}, "", false))},
		{"check_plan_no_changes", renderCheck(PlanCheck(PlanResult{Database: "shop", Environment: "staging", Plan: &plan.Plan{}}, "", false))},
		{"check_unsafe", renderCheck(UnsafeCheck("shop", "staging", dropCol, false))},
		{"check_applying", renderCheck(ApplyCheck(applyIn(store.Running, 1, ""), tasksIn(store.Completed, store.Running)))},
		{"check_retrying", renderCheck(ApplyCheck(applyIn(store.FailedRetryable, 2, "Error 1205: Lock wait timeout exceeded"), tasksIn(store.Completed, store.FailedRetryable)))},
		{"check_applied", renderCheck(ApplyCheck(applyIn(store.Completed, 1, ""), tasksIn(store.Completed, store.Completed)))},
		{"check_failed", renderCheck(ApplyCheck(applyIn(store.Failed, 5, "Error 1062: Duplicate entry"), tasksIn(store.Completed, store.Failed)))},
		{"check_cancelled", renderCheck(ApplyCheck(applyIn(store.Cancelled, 1, "PR closed"), tasksIn(store.Completed, store.Cancelled)))},
		{"check_aggregate", renderCheck(AggregateCheck([]CheckState{
			{Name: "tern/shop/staging", Status: StatusCompleted, Conclusion: ConclusionSuccess, Title: "Applied: 2 statements"},
			{Name: "tern/shop/production", Status: StatusCompleted, Conclusion: ConclusionActionRequired, Title: "Awaiting apply: 2 statements"},
		}))},
		{"check_aggregate_retrying", renderCheck(AggregateCheck([]CheckState{
			{Name: "tern/shop/staging", Status: StatusInProgress, Title: "Failed (retrying...) attempt 2/5, next retry ~14:05 UTC: Error 1205"},
			{Name: "tern/crm/staging", Status: StatusInProgress, Title: "Applying: 1 of 2 statements done"},
		}))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { golden(t, c.name, c.got) })
	}
}

// The aggregate check says an environment waits for a retry, not that it
// applies (CONTRACT §5 title of a retrying run).
func TestAggregateRetrying(t *testing.T) {
	c := AggregateCheck([]CheckState{
		{Name: "tern/shop/staging", Status: StatusCompleted, Conclusion: ConclusionSuccess, Title: "Applied: 1 statement"},
		{Name: "tern/shop/production", Status: StatusInProgress, Title: ApplyCheck(applyIn(store.FailedRetryable, 2, "boom"), nil).Title},
	})
	if c.Status != StatusInProgress || c.Title != "Failed (retrying...) shop/production" {
		t.Errorf("aggregate %s %q, want in_progress \"Failed (retrying...) shop/production\"", c.Status, c.Title)
	}
}

// The summary line counts statements by kind and the unsafe findings.
func TestSummaryLine(t *testing.T) {
	for _, c := range []struct {
		p    *plan.Plan
		want string
	}{
		{addEmail, "2 statements (1 create, 1 alter, 0 drop), 0 unsafe, 1 warning"},
		{dropCol, "1 statement (0 create, 1 alter, 0 drop), 1 unsafe"},
	} {
		if got := SummaryLine(c.p); got != c.want {
			t.Errorf("SummaryLine = %q, want %q", got, c.want)
		}
	}
	body := RenderPlanComment(PlanComment{HeadSHA: sha, Results: []PlanResult{{Database: "crm", Environment: "production", Plan: dropCol}}})
	if !strings.Contains(body, "**Plan:** 1 statement (0 create, 1 alter, 0 drop), 1 unsafe\n") {
		t.Errorf("plan comment lacks the summary line:\n%s", body)
	}
}

// Identifiers inside refusals keep their backquotes: a copied 'users' is
// a string literal in MySQL.
func TestRefusalsQuoteIdentifiersWithBackquotes(t *testing.T) {
	got := RefuseUnsafe("/tern apply -e staging", "shop", "staging", dropCol)
	if strings.Contains(got, "'users'") || strings.Contains(got, "'legacy'") {
		t.Errorf("refusal quotes identifiers with single quotes:\n%s", got)
	}
	if !strings.Contains(got, "`` ALTER TABLE `users` DROP COLUMN `legacy` ``") {
		t.Errorf("refusal lacks the DDL as MySQL reads it:\n%s", got)
	}
}

// TestTitles pins the title prefixes CONTRACT §5 fixes, state by state.
func TestTitles(t *testing.T) {
	cases := []struct {
		check              Check
		status, conclusion string
		prefix             string
	}{
		{PlanCheck(PlanResult{Database: "d", Environment: "e", Plan: &plan.Plan{}}, "", false), StatusCompleted, ConclusionSuccess, "No changes"},
		{PlanCheck(PlanResult{Database: "d", Environment: "e", Plan: addEmail}, "", false), StatusCompleted, ConclusionActionRequired, "Awaiting apply"},
		{PlanCheck(PlanResult{Database: "d", Environment: "e", Err: "x"}, "", false), StatusCompleted, ConclusionFailure, "Plan failed"},
		{UnsafeCheck("d", "e", dropCol, false), StatusCompleted, ConclusionActionRequired, "Unsafe changes"},
		{PlanCheck(PlanResult{Database: "d", Environment: "e", Plan: addEmail}, "staging", false), StatusCompleted, ConclusionActionRequired, "Waiting for staging"},
		{ApplyCheck(applyIn(store.Running, 1, ""), nil), StatusInProgress, "", "Applying"},
		{ApplyCheck(applyIn(store.Pending, 0, ""), nil), StatusInProgress, "", "Applying"},
		{ApplyCheck(applyIn(store.FailedRetryable, 2, "boom"), nil), StatusInProgress, "", "Failed (retrying...) attempt 2/5, next retry ~14:05 UTC"},
		{ApplyCheck(applyIn(store.Completed, 1, ""), nil), StatusCompleted, ConclusionSuccess, "Applied"},
		{ApplyCheck(applyIn(store.Failed, 1, "boom"), nil), StatusCompleted, ConclusionFailure, "Failed"},
		{ApplyCheck(applyIn(store.Cancelled, 1, ""), nil), StatusCompleted, ConclusionCancelled, "Cancelled"},
	}
	for _, c := range cases {
		t.Run(c.prefix, func(t *testing.T) {
			if c.check.Status != c.status || c.check.Conclusion != c.conclusion || !strings.HasPrefix(c.check.Title, c.prefix) {
				t.Errorf("got %s/%s %q, want %s/%s %q...", c.check.Status, c.check.Conclusion, c.check.Title, c.status, c.conclusion, c.prefix)
			}
		})
	}
	if got := ApplyCheck(applyIn(store.FailedRetryable, 2, "boom"), nil).Title; strings.HasPrefix(got, "Failed (retrying...)") && ApplyCheck(applyIn(store.Failed, 2, "boom"), nil).Title == got {
		t.Error("failed and retrying titles must differ")
	}
}

func TestAggregateSuccessOnlyWhenAllSucceed(t *testing.T) {
	ok := CheckState{Name: "tern/a/s", Status: StatusCompleted, Conclusion: ConclusionSuccess}
	cases := []struct {
		name string
		runs []CheckState
		want string
	}{
		{"all success", []CheckState{ok, ok}, ConclusionSuccess},
		{"one awaiting", []CheckState{ok, {Name: "tern/a/p", Status: StatusCompleted, Conclusion: ConclusionActionRequired}}, ConclusionActionRequired},
		{"one failed", []CheckState{ok, {Name: "tern/a/p", Status: StatusCompleted, Conclusion: ConclusionFailure}}, ConclusionFailure},
		{"one cancelled", []CheckState{ok, {Name: "tern/a/p", Status: StatusCompleted, Conclusion: ConclusionCancelled}}, ConclusionActionRequired},
		{"one running", []CheckState{ok, {Name: "tern/a/p", Status: StatusInProgress}}, ""},
	}
	for _, c := range cases {
		if got := AggregateCheck(c.runs).Conclusion; got != c.want {
			t.Errorf("%s: conclusion %q, want %q", c.name, got, c.want)
		}
	}
}

func TestSizeLimits(t *testing.T) {
	big := &plan.Plan{}
	for i := 0; i < 400; i++ {
		cols := strings.Repeat(fmt.Sprintf("  `c%d` varchar(255) NOT NULL DEFAULT '',\n", i), 20)
		big.Statements = append(big.Statements, plan.Statement{Table: fmt.Sprintf("t%d", i), Kind: plan.KindCreate,
			DDL: fmt.Sprintf("CREATE TABLE `t%d` (\n%s  PRIMARY KEY (`id`)\n)", i, cols)})
	}
	var results []PlanResult
	for _, env := range []string{"staging", "production"} {
		results = append(results, PlanResult{Database: "shop", Environment: env, Plan: big})
	}
	c := RenderPlanComment(PlanComment{HeadSHA: sha, Results: results})
	if len(c) > MaxComment {
		t.Errorf("plan comment is %d characters, over %d", len(c), MaxComment)
	}
	if !strings.Contains(c, "<details>") || !strings.Contains(c, "more characters not shown") {
		t.Error("long DDL must fold into <details> and say what was cut")
	}
	if !strings.Contains(c, "/tern apply -e staging") {
		t.Error("the next command must survive truncation")
	}
	var tasks []store.Task
	for i, s := range big.Statements {
		tasks = append(tasks, store.Task{Seq: i + 1, Table: s.Table, Kind: s.Kind, DDL: s.DDL, State: store.Pending})
	}
	if n := len(ApplyComment(applyIn(store.Running, 1, ""), tasks)); n > MaxComment {
		t.Errorf("apply comment is %d characters", n)
	}
	ch := ApplyCheck(applyIn(store.Running, 1, ""), tasks)
	if len(ch.Text) > MaxCheckOutput || len(ch.Summary) > MaxCheckOutput {
		t.Errorf("check output %d/%d characters", len(ch.Summary), len(ch.Text))
	}
}
