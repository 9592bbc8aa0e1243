package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/ternhq/tern/internal/testdb"
)

// action.yml and examples/workflows/tern-recovery.yml have the shape
// CONTRACT §7 gives: inputs command (default recover) and config, the four
// count outputs; a cron schedule, workflow_dispatch, and a concurrency
// group that does not cancel a run in progress.
func TestContractActionFiles(t *testing.T) {
	var action struct {
		Inputs map[string]struct {
			Default string `yaml:"default"`
		} `yaml:"inputs"`
		Outputs map[string]any `yaml:"outputs"`
		Runs    struct {
			Using string   `yaml:"using"`
			Args  []string `yaml:"args"`
			Steps []any    `yaml:"steps"`
		} `yaml:"runs"`
	}
	readYAML(t, "../action.yml", &action)
	if in, ok := action.Inputs["command"]; !ok || in.Default != "recover" {
		t.Errorf("action.yml input command: %+v (present %v), want default recover", in, ok)
	}
	if _, ok := action.Inputs["config"]; !ok {
		t.Error("action.yml has no config input")
	}
	for _, o := range []string{"recovered", "retrying", "failed", "rescued"} {
		if _, ok := action.Outputs[o]; !ok {
			t.Errorf("action.yml has no output %q", o)
		}
	}
	if action.Runs.Using == "docker" {
		args := strings.Join(action.Runs.Args, " ")
		if !strings.Contains(args, "inputs.command") || !strings.Contains(args, "inputs.config") {
			t.Errorf("action.yml's docker args %q do not pass the command and config inputs", args)
		}
	} else if action.Runs.Using != "composite" || len(action.Runs.Steps) == 0 {
		t.Errorf("action.yml runs.using %q", action.Runs.Using)
	}

	var wf struct {
		On struct {
			Schedule []struct {
				Cron string `yaml:"cron"`
			} `yaml:"schedule"`
			Dispatch *yaml.Node `yaml:"workflow_dispatch"`
		} `yaml:"on"`
		Concurrency struct {
			Group            string `yaml:"group"`
			CancelInProgress *bool  `yaml:"cancel-in-progress"`
		} `yaml:"concurrency"`
		Jobs map[string]struct {
			Steps []struct {
				Uses string            `yaml:"uses"`
				With map[string]string `yaml:"with"`
				Env  map[string]string `yaml:"env"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	readYAML(t, "../examples/workflows/tern-recovery.yml", &wf)
	if len(wf.On.Schedule) == 0 || strings.TrimSpace(wf.On.Schedule[0].Cron) == "" {
		t.Error("the example workflow has no cron schedule")
	}
	if wf.On.Dispatch == nil {
		t.Error("the example workflow does not allow workflow_dispatch")
	}
	if wf.Concurrency.Group == "" || wf.Concurrency.CancelInProgress == nil || *wf.Concurrency.CancelInProgress {
		t.Errorf("the example workflow's concurrency: %+v, want a group with cancel-in-progress: false", wf.Concurrency)
	}
	uses := false
	for _, j := range wf.Jobs {
		for _, s := range j.Steps {
			if regexp.MustCompile(`/tern@v1$`).MatchString(s.Uses) {
				uses = true
				for _, k := range []string{"TERN_STORE_DSN", "TERN_GITHUB_APP_ID", "TERN_GITHUB_PRIVATE_KEY"} {
					if s.Env[k] == "" {
						t.Errorf("the tern step's env lacks %s", k)
					}
				}
			}
		}
	}
	if !uses {
		t.Error("the example workflow does not use OWNER/tern@v1")
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The Action's recover step, as §7 shows it: the server config of §2 (its
// ${VARS} from env, webhook_secret included) with the step's env, in
// GitHub Actions mode. It runs the pass, writes the four outputs and masks
// the secrets it reads (the store DSN's password, each line of the App's
// private key) before printing anything else.
func TestContractActionRecoverWithServerConfig(t *testing.T) {
	w := newWorld(t)
	_, liveName := testdb.Open(t, "e2e_action_live")
	w.env["SHOP_STAGING_DSN"] = liveDSN(t, liveName)
	delete(w.env, "TERN_WEBHOOK_SECRET") // §7's step env has no webhook secret
	cfg := writeFile(t, "tern-server.yaml", `listen: ":8080"
store:
  dsn: ${TERN_STORE_DSN}
github:
  api_url: `+w.gh.URL+`
  app_id: ${TERN_GITHUB_APP_ID}
  private_key: ${TERN_GITHUB_PRIVATE_KEY}
  webhook_secret: ${TERN_WEBHOOK_SECRET}
targets:
  - repository: acme/shop
    database: shop
    environment: staging
    mysql:
      dsn: ${SHOP_STAGING_DSN}
recovery:
  interval: 0s
  max_attempts: 5
  backoff_base: 1m
  backoff_max: 30m
  lease: 5m
`)
	dir := t.TempDir()
	outputs, stepSummary := filepath.Join(dir, "output"), filepath.Join(dir, "summary")
	for _, f := range []string{outputs, stepSummary} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := w.startEnv([]string{"GITHUB_ACTIONS=true", "GITHUB_OUTPUT=" + outputs, "GITHUB_STEP_SUMMARY=" + stepSummary},
		"recover", "--config", cfg)
	code := p.wait(t)
	stdout, stderr := p.stdout.String(), p.stderr.String()
	if code != 0 {
		t.Fatalf("tern recover with the §2 config and §7's env exited %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	w.noSecrets("tern recover", stdout+stderr)
	if sum := parseSummary(t, stdout); sum != (summary{}) {
		t.Errorf("summary %+v, want all zero", sum)
	}
	b, err := os.ReadFile(outputs)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"recovered", "retrying", "failed", "rescued"} {
		if !regexp.MustCompile(`(?m)^` + k + `(=0$|<<)`).Match(b) {
			t.Errorf("GITHUB_OUTPUT lacks %s=0:\n%s", k, b)
		}
	}
	masks := map[string]bool{}
	for _, l := range strings.Split(stdout, "\n") {
		if v, ok := strings.CutPrefix(l, "::add-mask::"); ok {
			masks[v] = true
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(string(w.gh.PrivateKeyPEM)), "\n") {
		if strings.HasPrefix(l, "-----") {
			continue
		}
		found := false
		for m := range masks {
			found = found || strings.Contains(m, l) || strings.Contains(strings.ReplaceAll(m, "%0A", "\n"), l)
		}
		if !found {
			t.Errorf("private key line %.12s... is not masked", l)
			break
		}
	}

	// `tern serve` does read the webhook secret: the same config without
	// it is refused, naming the key and the variable.
	_, stderr, code = w.run("serve", "--config", cfg, "--listen", "127.0.0.1:0")
	if code == 0 || !strings.Contains(stderr, "github.webhook_secret") || !strings.Contains(stderr, "TERN_WEBHOOK_SECRET") {
		t.Errorf("tern serve without TERN_WEBHOOK_SECRET: exit %d\n%s\nwant non-zero naming github.webhook_secret and TERN_WEBHOOK_SECRET", code, stderr)
	}
}
