package report

import (
	"strings"
	"testing"
	"time"

	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/store"
)

// bigOrders is a plan whose statements carry their costs, one of them a
// blocking copy of a large table.
var bigOrders = &plan.Plan{Statements: []plan.Statement{
	{Table: "orders", Kind: plan.KindAlter, DDL: "ALTER TABLE `orders` ADD COLUMN `note` varchar(100)",
		Cost: &plan.Cost{Algorithm: plan.AlgorithmInstant, Lock: plan.LockNone, RowsEstimate: 2_400_000, BytesEstimate: 612 << 20, Source: plan.SourceServer}},
	{Table: "orders", Kind: plan.KindAlter, DDL: "ALTER TABLE `orders` ADD INDEX `placed` (`placed_at`)",
		Cost: &plan.Cost{Algorithm: plan.AlgorithmInplace, Lock: plan.LockNone, RowsEstimate: 2_400_000, BytesEstimate: 612 << 20, Duration: "~11 s to 1 min", Source: plan.SourceServer}},
	{Table: "orders", Kind: plan.KindAlter, DDL: "ALTER TABLE `orders` MODIFY COLUMN `amount` bigint NOT NULL",
		Cost: &plan.Cost{Algorithm: plan.AlgorithmCopy, Lock: plan.LockShared, RowsEstimate: 2_400_000, BytesEstimate: 612 << 20, Duration: "~11 s to 1 min", Source: plan.SourceServer, Reason: "Cannot change column type", Blocking: true}},
	{Table: "audit", Kind: plan.KindCreate, DDL: "CREATE TABLE `audit` (\n  `id` bigint NOT NULL,\n  PRIMARY KEY (`id`)\n)",
		Cost: &plan.Cost{Algorithm: plan.AlgorithmInstant, Lock: plan.LockNone, Source: plan.SourceRules}},
}, Findings: []plan.Finding{{Severity: plan.SeverityBlocking, Table: "orders", Statement: 2,
	Message: "runs as ALGORITHM=COPY, LOCK=SHARED on ~2,400,000 rows (~612 MiB, estimates): writes to the table wait until it ends (~11 s to 1 min); the target allows a blocking change on at most 1,000,000 rows"}}}

func progressTasks() []store.Task {
	ts := []store.Task{}
	for i, s := range bigOrders.Statements {
		ts = append(ts, store.Task{ApplyID: 7, Seq: i + 1, Table: s.Table, Kind: s.Kind, DDL: s.DDL, State: store.Pending})
	}
	ts[0].State, ts[1].State, ts[2].State = store.Completed, store.Completed, store.Running
	ts[2].Progress = store.Progress{Stage: "copy to tmp table", Percent: 43.2, Remaining: 3 * time.Minute, At: clock}
	return ts
}

func TestGoldenCosts(t *testing.T) {
	running := applyIn(store.Running, 1, "")
	running.AllowBlocking = true
	cases := []struct{ name, got string }{
		{"plan_comment_costs", RenderPlanComment(PlanComment{HeadSHA: sha, Results: []PlanResult{
			{Database: "shop", Environment: "staging", Plan: bigOrders},
			{Database: "shop", Environment: "production", Plan: bigOrders},
		}})},
		{"check_plan_costs", renderCheck(PlanCheck(PlanResult{Database: "shop", Environment: "staging", Plan: bigOrders}, "", false))},
		{"check_blocking", renderCheck(UnsafeCheck("shop", "staging", bigOrders, false))},
		{"refuse_blocking", RefuseBlocking("/tern apply -e staging", "shop", "staging", bigOrders)},
		{"check_applying_progress", renderCheck(ApplyCheck(running, progressTasks()))},
		{"apply_comment_progress", ApplyComment(running, progressTasks())},
		{"status_progress", StatusTable([]*store.Apply{running}, nil, map[int64][]store.Task{running.ID: progressTasks()})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { golden(t, c.name, c.got) })
	}
}

func TestProgressLine(t *testing.T) {
	ts := progressTasks()
	if got, want := ProgressLine(ts), "copying `orders` 43%, ~3 min left"; got != want {
		t.Fatalf("ProgressLine = %q, want %q", got, want)
	}
	// Progress of a task that is no longer running is not shown.
	ts[2].State = store.Completed
	if got := ProgressLine(ts); got != "" {
		t.Fatalf("ProgressLine of finished tasks = %q", got)
	}
	title := ApplyCheck(applyIn(store.Running, 1, ""), progressTasks()).Title
	if !strings.HasPrefix(title, "Applying: copying `orders` 43%, ~3 min left") {
		t.Fatalf("title %q", title)
	}
}

func TestApplyCommandFor(t *testing.T) {
	if got := ApplyCommandFor("shop", "staging", false, bigOrders); got != "/tern apply -e staging --allow-blocking" {
		t.Fatalf("got %q", got)
	}
	if got := ApplyCommandFor("shop", "staging", true, dropCol); got != "/tern apply -e staging -d shop --allow-unsafe" {
		t.Fatalf("got %q", got)
	}
}

// TestHugeCostedPlanFits: a plan of 3,000 costed statements over several
// environments still fits in one GitHub comment.
func TestHugeCostedPlanFits(t *testing.T) {
	p := &plan.Plan{}
	for i := 0; i < 3000; i++ {
		p.Statements = append(p.Statements, plan.Statement{Table: "t", Kind: plan.KindAlter,
			DDL:  "ALTER TABLE `t` ADD COLUMN `c` int",
			Cost: &plan.Cost{Algorithm: plan.AlgorithmCopy, Lock: plan.LockShared, RowsEstimate: 123456789, BytesEstimate: 1 << 40, Duration: "~1 h to 9 h", Source: plan.SourceServer}})
	}
	var rs []PlanResult
	for _, env := range []string{"a", "b", "c", "d"} {
		rs = append(rs, PlanResult{Database: "shop", Environment: env, Plan: p})
	}
	got := RenderPlanComment(PlanComment{HeadSHA: sha, Results: rs})
	if len(got) > MaxComment {
		t.Fatalf("comment of %d characters, limit %d", len(got), MaxComment)
	}
	if !strings.Contains(got, "more | | | | | |") {
		t.Fatal("the cost tables were not shortened")
	}
	if c := renderCheck(PlanCheck(rs[0], "", false)); len(c) > 2*MaxCheckOutput+1000 {
		t.Fatalf("check run of %d characters", len(c))
	}
}
