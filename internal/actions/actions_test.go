package actions

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-githubactions"

	"github.com/ternhq/tern/recovery"
	"github.com/ternhq/tern/store"
)

// newAction returns an Action writing commands to out and file commands to
// temp GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, whose paths it returns.
func newAction(t *testing.T, out *bytes.Buffer) (a *githubactions.Action, outputs, summary string) {
	t.Helper()
	dir := t.TempDir()
	outputs = filepath.Join(dir, "output")
	summary = filepath.Join(dir, "summary")
	env := map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": outputs, "GITHUB_STEP_SUMMARY": summary}
	a = githubactions.New(githubactions.WithGetenv(func(k string) string { return env[k] }), githubactions.WithWriter(out))
	return a, outputs, summary
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMask(t *testing.T) {
	var out bytes.Buffer
	a, _, _ := newAction(t, &out)
	pem := "-----BEGIN RSA PRIVATE KEY-----\nMIIEow1234abcd\nQWERTY98765\n-----END RSA PRIVATE KEY-----\n"
	Mask(a, []string{"hunter2", "", pem})
	got := out.String()
	for _, want := range []string{
		"::add-mask::hunter2\n",
		"::add-mask::-----BEGIN RSA PRIVATE KEY-----%0AMIIEow1234abcd%0AQWERTY98765%0A-----END RSA PRIVATE KEY-----%0A\n",
		"::add-mask::MIIEow1234abcd\n",
		"::add-mask::QWERTY98765\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("masks lack %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "::add-mask::") != 6 {
		t.Errorf("want 6 masks (2 whole, 4 lines), got:\n%s", got)
	}
}

func TestEnabled(t *testing.T) {
	for v, want := range map[string]bool{"true": true, "": false, "false": false} {
		if got := Enabled(func(string) string { return v }); got != want {
			t.Errorf("GITHUB_ACTIONS=%q: %v, want %v", v, got, want)
		}
	}
}

func result() *recovery.Result {
	next := time.Date(2025, 3, 1, 14, 5, 0, 0, time.UTC)
	return &recovery.Result{
		Recovered: 1, Retrying: 1, Failed: 1, Rescued: 1,
		Lines: []recovery.Line{
			{Apply: &store.Apply{ID: 12, Repository: "acme/shop", PR: 7, Database: "shop", Environment: "staging",
				State: store.Completed, Attempt: 2, MaxAttempts: 5, LastError: "old error"},
				Actions: []recovery.Action{recovery.ActionRescued, recovery.ActionRan}},
			{Apply: &store.Apply{ID: 13, Repository: "acme/shop", PR: 8, Database: "shop", Environment: "staging",
				State: store.FailedRetryable, Attempt: 2, MaxAttempts: 5, NextAttemptAt: next,
				ErrorClass: "lock_wait_timeout", LastError: "Lock wait timeout | exceeded\nline two"},
				Actions: []recovery.Action{recovery.ActionRan}},
			{Apply: &store.Apply{ID: 14, Repository: "acme/shop", PR: 9, Database: "shop", Environment: "production",
				State: store.Failed, Attempt: 5, MaxAttempts: 5, ErrorClass: "retries_exhausted", LastError: "<b>too many</b>"},
				Actions: []recovery.Action{recovery.ActionExhausted}},
		},
	}
}

func TestWritePass(t *testing.T) {
	var out bytes.Buffer
	a, outputs, summary := newAction(t, &out)
	WritePass(a, result())

	gotOut := read(t, outputs)
	for _, k := range []string{"recovered", "retrying", "failed", "rescued"} {
		if !strings.Contains(gotOut, k+"<<_GitHubActionsFileCommandDelimeter_\n1\n_GitHubActionsFileCommandDelimeter_\n") {
			t.Errorf("GITHUB_OUTPUT lacks %s=1:\n%s", k, gotOut)
		}
	}

	gotSum := read(t, summary)
	for _, want := range []string{
		"| Apply | PR | Environment | Attempt | Outcome | Error |",
		"| 12 | acme/shop#7 | shop/staging | 2/5 | ✅ applied (rescued) |  |",
		"| 13 | acme/shop#8 | shop/staging | 2/5 | 🔁 retrying ~14:05 UTC | lock_wait_timeout: Lock wait timeout \\| exceeded line two |",
		"| 14 | acme/shop#9 | shop/production | 5/5 | ❌ failed | retries_exhausted: &lt;b&gt;too many&lt;/b&gt; |",
		"**1** recovered · **1** retrying · **1** failed · **1** rescued",
	} {
		if !strings.Contains(gotSum, want) {
			t.Errorf("summary lacks %q:\n%s", want, gotSum)
		}
	}

	// One error annotation, for the apply that failed for good.
	cmds := out.String()
	if n := strings.Count(cmds, "::error "); n != 1 {
		t.Errorf("%d error annotations, want 1:\n%s", n, cmds)
	}
	if want := "::error title=tern%3A acme/shop#9 shop/production failed::apply 14 acme/shop#9 shop/production: failed for good after 5 attempts (retries_exhausted): <b>too many</b>"; !strings.Contains(cmds, want) {
		t.Errorf("annotations lack %q:\n%s", want, cmds)
	}
}

func TestSummaryEmptyAndLongCell(t *testing.T) {
	if got := Summary(&recovery.Result{}); !strings.Contains(got, "No applies needed attention.") {
		t.Errorf("empty summary: %q", got)
	}
	long := strings.Repeat("x", 1000)
	if got := cell(long); len([]rune(got)) != maxCell+1 || !strings.HasSuffix(got, "…") {
		t.Errorf("cell of 1000 runes has %d runes", len([]rune(got)))
	}
}
