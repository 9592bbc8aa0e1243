package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-github/v60/github"

	"github.com/ternhq/tern/internal/testdb"
)

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of a log.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// passwordUser creates a user with a password and every privilege on the
// test server (the demo creates databases and users), and returns its DSN
// and password. The user is dropped when the test ends.
func passwordUser(t *testing.T) (dsn, password string) {
	t.Helper()
	admin := testdb.Server(t)
	b := make([]byte, 6)
	rand.Read(b)
	user := "tern_demo_t_" + hex.EncodeToString(b[:3])
	password = "Demo-Pa55-" + hex.EncodeToString(b[3:])
	for _, q := range []string{
		fmt.Sprintf("CREATE USER '%s'@'%%' IDENTIFIED BY '%s'", user, password),
		fmt.Sprintf("GRANT ALL PRIVILEGES ON *.* TO '%s'@'%%' WITH GRANT OPTION", user),
	} {
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", strings.Replace(q, password, "***", 1), err)
		}
	}
	t.Cleanup(func() { admin.Exec(fmt.Sprintf("DROP USER IF EXISTS '%s'@'%%'", user)) })
	cfg := testdb.Config(t)
	cfg.User, cfg.Passwd = user, password
	return cfg.FormatDSN(), password
}

// sections splits the demo's output at its step headings ("== N. ...");
// sections[0] is what comes before step 1, and the last holds the summary.
func sections(t *testing.T, out string) []string {
	t.Helper()
	parts := regexp.MustCompile(`(?m)^== \d\. `).Split(out, -1)
	if len(parts) != 7 {
		t.Fatalf("output has %d step headings, want 6:\n%s", len(parts)-1, out)
	}
	return parts
}

// checkLine finds the check-run line of name in a section and returns its
// state and title.
func checkLine(t *testing.T, section, name string) (state, title string) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^    \S+ ` + regexp.QuoteMeta(name) + ` +(\S+) +(.*)$`)
	m := re.FindAllStringSubmatch(section, -1)
	if len(m) == 0 {
		t.Fatalf("no check line for %s in:\n%s", name, section)
	}
	last := m[len(m)-1]
	return last[1], last[2]
}

// inOrder asserts that each of wants occurs in s, each after the one
// before.
func inOrder(t *testing.T, what, s string, wants ...string) {
	t.Helper()
	rest := s
	for _, w := range wants {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("%s: %q missing (or out of order) in:\n%s", what, w, s)
			return
		}
		rest = rest[i+len(w):]
	}
}

func TestDemo(t *testing.T) {
	dsn, password := passwordUser(t)
	var out bytes.Buffer
	logs := &lockedBuffer{}
	if err := Run(context.Background(), &out, Options{DSN: dsn, Log: logs}); err != nil {
		t.Fatalf("Run: %v\noutput:\n%s", err, out.String())
	}
	text := out.String()
	s := sections(t, text)

	t.Run("autoplan", func(t *testing.T) {
		inOrder(t, "step 2", s[2], "@contributor opens acme/shop#1",
			"@tern[bot] commented:", "### tern plan for", "`shop` → `staging`",
			"ADD KEY `orders_created`", "ADD COLUMN `display_name`", "/tern apply -e staging",
			"`shop` → `production`", "/tern apply -e production")
		for _, c := range []struct{ name, state, title string }{
			{"tern/shop/staging", "action_required", "Awaiting apply"},
			{"tern/shop/production", "action_required", "Waiting for staging"},
			{"tern", "action_required", "Awaiting apply"},
		} {
			if st, ti := checkLine(t, s[2], c.name); st != c.state || !strings.HasPrefix(ti, c.title) {
				t.Errorf("after autoplan %s is %s %q, want %s %q...", c.name, st, ti, c.state, c.title)
			}
		}
	})

	t.Run("transient failure on staging", func(t *testing.T) {
		inOrder(t, "step 3", s[3], "@alice commented:  /tern apply -e staging   👀 🚀",
			"@tern[bot] commented:", "`shop` → `staging`: Failed (retrying...) attempt 1/5, next retry ~",
			"Lock wait timeout exceeded", "| 1 | `orders` | alter | Failed (retrying...) |")
		st, ti := checkLine(t, s[3], "tern/shop/staging")
		if st != "in_progress" || !regexp.MustCompile(`^Failed \(retrying\.\.\.\) attempt 1/5, next retry ~\d\d:\d\d UTC: .*Lock wait timeout exceeded`).MatchString(ti) {
			t.Errorf("staging check after the lock timeout: %s %q", st, ti)
		}
		if st, _ := checkLine(t, s[3], "tern"); st == "success" {
			t.Error("aggregate check passes while staging is retrying")
		}
	})

	t.Run("recovery pass", func(t *testing.T) {
		inOrder(t, "step 4", s[4], "$ tern recover\n",
			"acme/shop#1 shop/staging: completed after 2 attempts\n",
			"recovered=1 retrying=0 failed=0 rescued=0\n",
			"@tern[bot] edited a comment:", "`shop` → `staging`: Applied after 2 attempts",
			"| 1 | `orders` | alter | Applied |", "| 2 | `users` | alter | Applied |",
			"@tern[bot] commented:", "✅ `shop` → `staging` applied after 2 attempts.", "cc @alice")
		if st, ti := checkLine(t, s[4], "tern/shop/staging"); st != "success" || !strings.HasPrefix(ti, "Applied") {
			t.Errorf("staging check after the pass: %s %q", st, ti)
		}
		if st, ti := checkLine(t, s[4], "tern/shop/production"); st != "action_required" || !strings.HasPrefix(ti, "Awaiting apply") {
			t.Errorf("production check after staging applied: %s %q", st, ti)
		}
	})

	t.Run("production through PlanetScale", func(t *testing.T) {
		inOrder(t, "step 5", s[5], "@alice commented:  /tern apply -e production   👀 🚀",
			"`shop` → `production`: Applied", "deploy request #1 was deployed to main")
		for _, name := range []string{"tern/shop/staging", "tern/shop/production", "tern"} {
			if st, _ := checkLine(t, s[5], name); st != "success" {
				t.Errorf("%s after production: %s, want success", name, st)
			}
		}
	})

	t.Run("the whole pull request", func(t *testing.T) {
		inOrder(t, "step 6", s[6], "### tern plan for", "/tern apply -e staging   👀 🚀",
			"tern apply #", "`shop` → `staging`: Applied after 2 attempts", "applied after 2 attempts.",
			"/tern apply -e production   👀 🚀", "`shop` → `production`: Applied")
		if n := strings.Count(s[6], "commented:"); n != 6 {
			t.Errorf("final view shows %d comments, want 6 (plan, 2 commands, 2 apply comments, 1 outcome)", n)
		}
		if strings.Contains(s[6], "edited a comment") {
			t.Error("final view shows edits instead of the comments as they stand")
		}
		if strings.Contains(s[6], "<!--") {
			t.Error("hidden markers printed")
		}
		summary := regexp.MustCompile(`(?m)^Done in \d+\.\ds: staging changed \(applied after 2 attempts, one lock timeout\), production changed \(deploy request\), check ` + "`tern`" + `: success\.$`)
		if !summary.MatchString(s[6]) {
			t.Errorf("no summary line in:\n%s", s[6])
		}
	})

	t.Run("no secrets, no log noise", func(t *testing.T) {
		for where, txt := range map[string]string{"output": text, "log": logs.String()} {
			for _, secret := range []string{password, "PRIVATE KEY", "pscale_tkn_", "pscale_pw_", "whsec_"} {
				if strings.Contains(txt, secret) {
					t.Errorf("%s holds a secret (%q)", where, secret)
				}
			}
		}
		for _, noise := range []string{"level=", "msg=", `{"`} {
			if strings.Contains(text, noise) {
				t.Errorf("output holds log noise %q", noise)
			}
		}
		if !strings.Contains(logs.String(), "level=") {
			t.Error("Options.Log received no log lines")
		}
	})

	t.Run("databases dropped", func(t *testing.T) {
		m := regexp.MustCompile(`tern_demo_([0-9a-f]{6})_ledger`).FindStringSubmatch(text)
		if m == nil {
			t.Fatal("output does not name the ledger database")
		}
		admin := testdb.Server(t)
		like := "tern\\_demo\\_" + m[1] + "%"
		var n int
		if err := admin.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?", like).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d demo databases left behind", n)
		}
		if err := admin.QueryRow("SELECT COUNT(*) FROM mysql.db WHERE Db LIKE ?", like).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%d grants on demo databases left behind (branch password users)", n)
		}
	})
}

func TestDemoKeep(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), &out, Options{DSN: testdb.ServerDSN(), Keep: true}); err != nil {
		t.Fatalf("Run: %v\noutput:\n%s", err, out.String())
	}
	m := regexp.MustCompile(`Kept: databases (tern_demo_\w+_ledger), (tern_demo_\w+_shop_staging) and (tern_demo_\w+_ps_main) on `).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("output does not say what was kept:\n%s", out.String())
	}
	admin := testdb.Server(t)
	t.Cleanup(func() {
		for _, db := range m[1:] {
			admin.Exec("DROP DATABASE IF EXISTS `" + db + "`")
		}
	})
	for _, db := range m[2:] {
		var n int
		err := admin.QueryRow("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'users' AND COLUMN_NAME = 'display_name'", db).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("kept database %s lacks the applied column", db)
		}
	}
	var applies int
	if err := admin.QueryRow("SELECT COUNT(*) FROM `" + m[1] + "`.tern_applies WHERE state = 'completed'").Scan(&applies); err != nil {
		t.Fatal(err)
	}
	if applies != 2 {
		t.Errorf("kept ledger holds %d completed applies, want 2", applies)
	}
}

func TestRunInvalidDSNKeepsPasswordOut(t *testing.T) {
	err := Run(context.Background(), &bytes.Buffer{}, Options{DSN: "demo:s3cret-pw@nonsense"})
	if err == nil {
		t.Fatal("Run accepted an invalid DSN")
	}
	if strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("error holds the DSN password: %v", err)
	}
}

func TestRenderMarkdown(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"marker line", "<!-- tern:plan -->\n### plan\n\nbody", "### plan\n\nbody"},
		{"details", "<details>\n<summary>DDL</summary>\n\n```sql\nX;\n```\n</details>", "DDL\n\n```sql\nX;\n```"},
		{"blank runs", "a\n\n\n\nb", "a\n\nb"},
		{"plain", "/tern apply -e staging", "/tern apply -e staging"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := renderMarkdown(tc.in); got != tc.want {
				t.Errorf("renderMarkdown(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestLatestRuns(t *testing.T) {
	run := func(id int64, name, title string) *github.CheckRun {
		return &github.CheckRun{ID: github.Int64(id), Name: github.String(name), Output: &github.CheckRunOutput{Title: github.String(title)}}
	}
	got := latestRuns([]*github.CheckRun{
		run(1, "tern", "agg 1"),
		run(2, "tern/shop/staging", "Awaiting apply"),
		run(3, "tern/shop/production", "Waiting for staging"),
		run(4, "tern/shop/staging", "Applied"),
		run(5, "tern", "agg 2"),
	})
	var names []string
	for _, r := range got {
		names = append(names, fmt.Sprintf("%s=%s", r.GetName(), r.GetOutput().GetTitle()))
	}
	want := "tern/shop/staging=Applied tern/shop/production=Waiting for staging tern=agg 2"
	if strings.Join(names, " ") != want {
		t.Errorf("latestRuns = %v, want %s", names, want)
	}
}
