package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func goldenFile(t *testing.T, name, got string) {
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
		t.Fatalf("%v (run go test ./cmd/tern -run TestPlanCosts -update)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s:\n--- got ---\n%s\n--- want ---\n%s", name, path, got, want)
	}
}

// TestPlanCosts: `tern plan` says, for every statement, how the target's
// own server runs it (algorithm, lock), with the table's estimated rows
// and size and a duration band for what reads the whole table; --json
// carries the same in each statement's cost.
func TestPlanCosts(t *testing.T) {
	ctx := context.Background()
	const live = "CREATE TABLE users (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, email varchar(255) NOT NULL, n int NOT NULL DEFAULT 0) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"
	const desired = "CREATE TABLE users (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, email varchar(255) NOT NULL, n bigint NOT NULL DEFAULT 0, note varchar(10), KEY email (email)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;\n" +
		"CREATE TABLE orders (id int PRIMARY KEY);\n"
	args := planFixture(t, desired, live, "INSERT INTO users (email) VALUES ('a'), ('b'), ('c')", "ANALYZE TABLE users")

	var out, errOut bytes.Buffer
	if code := runPlan(ctx, args, &out, &errOut); code != 2 {
		t.Fatalf("exit %d, want 2; stderr: %s", code, errOut.String())
	}
	text := regexp.MustCompile(`live schema \S+,`).ReplaceAllString(out.String(), "live schema LIVE,")
	goldenFile(t, "plan_costs.txt", text)

	out.Reset()
	if code := runPlan(ctx, append(args, "--json"), &out, &errOut); code != 2 {
		t.Fatalf("exit %d, want 2; stderr: %s", code, errOut.String())
	}
	// The live schema's name is random and the server's version is this
	// machine's.
	js := regexp.MustCompile(`"(live_schema|server_version)": "[^"]*"`).ReplaceAllString(out.String(), `"$1": "X"`)
	goldenFile(t, "plan_costs.json", js)
	var p planJSON
	if err := json.Unmarshal(out.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Statements {
		if s.Cost == nil || s.Cost.Algorithm == "" || s.Cost.Lock == "" || s.Cost.Source == "" {
			t.Errorf("statement %q has no cost: %+v", s.DDL, s.Cost)
		}
	}
}
