package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ternhq/tern/internal/testdb"
	"github.com/ternhq/tern/plan"
	"github.com/ternhq/tern/store"
)

// Four `tern recover` processes started at once over 200 due applies, one
// per target, each a CREATE TABLE that fails if it runs twice: every apply
// completes on its first attempt, every table exists, and the four
// summaries add up to 200 with each apply named by exactly one process.
func TestFourRecoverProcessesOver200Applies(t *testing.T) {
	const n, procs = 200, 4
	ctx := context.Background()
	// 200 targets on one server with MariaDB's default 151 connections: an
	// apply must not leave a connection open per target it ran on.
	w := newWorld(t)
	live, liveName := testdb.Open(t, "e2e_fanout_live")
	w.env["FANOUT_DSN"] = liveDSN(t, liveName)

	// 200 environments of one database, all on one live schema; each apply
	// creates its own table.
	var targets []string
	for i := 1; i <= n; i++ {
		targets = append(targets, fmt.Sprintf(`  - {repository: acme/shop, database: shop, environment: env%03d, mysql: {dsn: "${FANOUT_DSN}"}}`, i))
	}
	cfg := w.config(strings.Join(targets, "\n"), "  lease: 1m\n  max_attempts: 3")

	ids := map[int64]int{} // apply id -> i
	shas := map[int]string{}
	for i := 1; i <= n; i++ {
		pr, sha := 100+i, fmt.Sprintf("%040x", 0xfa00+i)
		table := fmt.Sprintf("t%03d", i)
		shas[i] = sha
		ddl := fmt.Sprintf("CREATE TABLE `%s` (\n  `id` bigint NOT NULL,\n  PRIMARY KEY (`id`)\n)", table)
		w.gh.OpenPR(repoName, pr, sha, map[string]string{"db/shop/" + table + ".sql": ddl + ";\n"})
		d, err := plan.Parse([]plan.File{{Path: "db/shop/" + table + ".sql", Data: []byte(ddl + ";\n")}})
		if err != nil {
			t.Fatal(err)
		}
		sp := &store.Plan{
			Repository: repoName, PR: pr, HeadSHA: sha, InstallationID: installation,
			Database: "shop", Environment: fmt.Sprintf("env%03d", i),
			DesiredHash: d.Hash(), Desired: d.Marshal(), Lint: []byte("[]"),
			Statements: []store.Statement{{Table: table, Kind: plan.KindCreate, DDL: ddl}},
		}
		if err := w.st.SavePlan(ctx, sp); err != nil {
			t.Fatal(err)
		}
		a, err := w.st.CreateApply(ctx, sp, "alice", false, 3)
		if err != nil {
			t.Fatal(err)
		}
		ids[a.ID] = i
	}

	ps := make([]*proc, procs)
	for i := range ps {
		ps[i] = w.start("recover", "--config", cfg, "--limit", strconv.Itoa(n))
	}
	total := 0
	named := map[int64]int{}
	line := regexp.MustCompile(`(?m)^apply (\d+) acme/shop#\d+ shop/env\d+: (.*)$`)
	for i, p := range ps {
		if code := p.wait(t); code != 0 {
			t.Fatalf("process %d exited %d\n%s", i, code, tail(p.stderr.String(), 8000))
		}
		out := p.stdout.String()
		w.noSecrets("tern recover", out+p.stderr.String())
		sum := parseSummary(t, out)
		t.Logf("process %d: %+v", i, sum)
		if sum.Retrying != 0 || sum.Failed != 0 || sum.Rescued != 0 {
			t.Errorf("process %d: %+v, want only recovered applies", i, sum)
		}
		total += sum.Recovered
		for _, m := range line.FindAllStringSubmatch(out, -1) {
			id, _ := strconv.ParseInt(m[1], 10, 64)
			named[id]++
			if !strings.HasPrefix(m[2], "completed") {
				t.Errorf("process %d: apply %d: %s", i, id, m[2])
			}
		}
	}
	if total != n {
		t.Errorf("the processes recovered %d applies in all, want %d", total, n)
	}
	for id := range ids {
		if named[id] != 1 {
			t.Errorf("apply %d named by %d processes, want 1", id, named[id])
		}
	}

	for id, i := range ids {
		a, err := w.st.Apply(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if a.State != store.Completed || a.Attempt != 1 {
			t.Errorf("apply %d (env%03d): %s after %d attempts (%s), want completed after 1", id, i, a.State, a.Attempt, a.LastError)
		}
		tasks, err := w.st.Tasks(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if len(tasks) != 1 || tasks[0].State != store.Completed || tasks[0].Attempt != 1 || tasks[0].Skipped {
			t.Errorf("apply %d tasks: %+v, want one completed on attempt 1, not skipped", id, tasks)
		}
		name := fmt.Sprintf("tern/shop/env%03d", i)
		if run := w.gh.LatestCheckRun(repoName, shas[i], name); run == nil || run.GetConclusion() != "success" ||
			!strings.HasPrefix(run.GetOutput().GetTitle(), "Applied") {
			t.Errorf("check %s of PR #%d: %+v, want success Applied", name, 100+i, run)
		}
	}
	var tables int
	if err := live.QueryRow(`SELECT COUNT(*) FROM information_schema.tables
		WHERE table_schema = DATABASE() AND table_name REGEXP '^t[0-9]{3}$'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != n {
		t.Errorf("%d of the %d tables exist", tables, n)
	}
}
