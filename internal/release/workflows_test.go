package release

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"gopkg.in/yaml.v3"
)

// root is the module's root directory, where .github and action.yml live.
func root(t *testing.T) string {
	t.Helper()
	r, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// lint runs actionlint on one workflow's content as if it were at path
// inside the project rooted at dir, so `uses: ./` resolves dir/action.yml
// and its inputs and outputs are checked.
func lint(t *testing.T, dir, path string, content []byte) []*actionlint.Error {
	t.Helper()
	proj, err := actionlint.NewProject(dir)
	if err != nil {
		t.Fatalf("actionlint project %s: %v", dir, err)
	}
	l, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{WorkingDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.Lint(path, content, proj)
	if err != nil {
		t.Fatalf("actionlint %s: %v", path, err)
	}
	return errs
}

func report(t *testing.T, errs []*actionlint.Error) {
	t.Helper()
	for _, e := range errs {
		t.Errorf("%s:%d:%d: %s [%s]", e.Filepath, e.Line, e.Column, e.Message, e.Kind)
	}
}

// localAction rewrites the example's `uses: ternhq/tern@v1` to `uses: ./`,
// so actionlint checks the step's inputs and the outputs read from it
// against this repository's action.yml.
var publishedAction = regexp.MustCompile(`(?m)(uses:\s*)ternhq/tern@v\d+\s*$`)

// Every workflow this repository runs and every example users copy passes
// actionlint; the examples are checked against action.yml's inputs and
// outputs.
func TestWorkflowsLint(t *testing.T) {
	dir := root(t)
	var files []string
	for _, g := range []string{".github/workflows/*.yml", ".github/workflows/*.yaml", "examples/workflows/*.yml", "examples/workflows/*.yaml"} {
		m, err := filepath.Glob(filepath.Join(dir, g))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	var sawCI, sawRelease, sawExample bool
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, f)
		if strings.HasPrefix(rel, "examples") {
			sawExample = true
			if !publishedAction.Match(b) {
				t.Errorf("%s does not use ternhq/tern@vN", rel)
			}
			b = publishedAction.ReplaceAll(b, []byte("${1}./"))
		}
		sawCI = sawCI || rel == filepath.Join(".github", "workflows", "ci.yml")
		sawRelease = sawRelease || rel == filepath.Join(".github", "workflows", "release.yml")
		report(t, lint(t, dir, f, b))
	}
	if !sawCI || !sawRelease || !sawExample {
		t.Errorf("linted %v: want .github/workflows/ci.yml, release.yml and examples/workflows/*.yml", files)
	}
}

// A broken workflow is caught: each of these mistakes makes actionlint
// report at least one error naming it.
func TestBrokenWorkflowCaught(t *testing.T) {
	dir := root(t)
	head := "name: broken\non:\n  workflow_dispatch: {}\njobs:\n  j:\n    runs-on: ubuntu-latest\n"
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown job key", head + "    stepz:\n      - run: echo\n", `unexpected key "stepz"`},
		{"expression syntax", head + "    steps:\n      - run: echo ${{ github.sha ) }}\n", "parse"},
		{"undefined context property", head + "    steps:\n      - run: echo ${{ github.shaa }}\n", `"shaa" is not defined`},
		{"bad cron", "name: broken\non:\n  schedule:\n    - cron: '*/5 * *'\njobs:\n  j:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n", "CRON format"},
		{"unknown needs", head + "    needs: [build]\n    steps:\n      - run: echo\n", `"build"`},
		{"input the Action does not have", head + "    steps:\n      - uses: ./\n        with:\n          comand: recover\n", `"comand" is not defined`},
		{"output the Action does not have", head + "    steps:\n      - id: tern\n        uses: ./\n      - run: echo ${{ steps.tern.outputs.recoverd }}\n", `"recoverd" is not defined`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := lint(t, dir, filepath.Join(dir, ".github", "workflows", "broken.yml"), []byte(tc.yaml))
			var msgs []string
			for _, e := range errs {
				msgs = append(msgs, e.Message)
			}
			if !strings.Contains(strings.Join(msgs, "\n"), tc.want) {
				t.Errorf("errors %q, want one containing %q", msgs, tc.want)
			}
		})
	}
}

// action is action.yml as these tests read it.
type action struct {
	Inputs  map[string]map[string]any `yaml:"inputs"`
	Outputs map[string]map[string]any `yaml:"outputs"`
	Runs    struct {
		Using string   `yaml:"using"`
		Image string   `yaml:"image"`
		Args  []string `yaml:"args"`
	} `yaml:"runs"`
}

// actionImage is the published image action.yml must run: the Action's
// image on ghcr.io at a major version tag the release moves.
var actionImage = regexp.MustCompile(`^docker://ghcr\.io/ternhq/tern-action:v(\d+)$`)

// action.yml parses as Action metadata (actionlint's parser, which refuses
// unknown keys of an input), and runs the published image, not a
// Dockerfile that every run would compile.
func TestActionMetadata(t *testing.T) {
	dir := root(t)
	checkActionMetadata(t, dir)
	b, err := os.ReadFile(filepath.Join(dir, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var a action
	if err := yaml.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	if a.Runs.Using != "docker" || !actionImage.MatchString(a.Runs.Image) {
		t.Errorf("runs: using %q image %q, want docker and %s", a.Runs.Using, a.Runs.Image, actionImage)
	}
	if len(a.Runs.Args) == 0 || a.Runs.Args[0] != "${{ inputs.command }}" {
		t.Errorf("runs.args %q: the first argument must be the command (the image's entrypoint is tern)", a.Runs.Args)
	}
}

// checkActionMetadata parses dir/action.yml the way actionlint does when a
// workflow uses `./`.
func checkActionMetadata(t *testing.T, dir string) {
	t.Helper()
	proj, err := actionlint.NewProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	md, _, err := actionlint.NewLocalActionsCache(proj, nil).FindMetadata("./")
	if err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	if md == nil {
		t.Fatalf("no action.yml in %s", dir)
	}
	if md.Name == "" || md.Description == "" {
		t.Errorf("action.yml: name %q description %q: both are required by GitHub", md.Name, md.Description)
	}
}

// A broken action.yml is caught by the same check.
func TestBrokenActionMetadataCaught(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{".git", ".github/workflows"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	broken := "name: x\ndescription: y\ninputs:\n  command:\n    descripton: typo\nruns:\n  using: docker\n  image: docker://ghcr.io/ternhq/tern-action:v1\n"
	if err := os.WriteFile(filepath.Join(dir, "action.yml"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	proj, err := actionlint.NewProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := actionlint.NewLocalActionsCache(proj, nil).FindMetadata("./"); err == nil || !strings.Contains(err.Error(), "descripton") {
		t.Errorf("broken action.yml: err %v, want one naming descripton", err)
	}
}

// The release workflow publishes what action.yml runs: the Dockerfile's
// "action" target as ghcr.io/ternhq/tern-action with the vMAJOR tag, and the
// non-root "server" target as ghcr.io/ternhq/tern, for amd64 and arm64;
// and it attaches binaries with a SHA-256 checksums file.
func TestReleasePublishesActionImage(t *testing.T) {
	dir := root(t)
	b, err := os.ReadFile(filepath.Join(dir, ".github", "workflows", "release.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		On struct {
			Push struct {
				Tags []string `yaml:"tags"`
			} `yaml:"push"`
		} `yaml:"on"`
		Jobs map[string]struct {
			Strategy struct {
				Matrix struct {
					Include []map[string]string `yaml:"include"`
				} `yaml:"matrix"`
			} `yaml:"strategy"`
			Steps []struct {
				Uses string         `yaml:"uses"`
				Run  string         `yaml:"run"`
				With map[string]any `yaml:"with"`
			} `yaml:"steps"`
		} `yaml:"jobs"`
	}
	if err := yaml.Unmarshal(b, &wf); err != nil {
		t.Fatal(err)
	}
	if len(wf.On.Push.Tags) == 0 {
		t.Error("release.yml does not run on tags")
	}
	stages := dockerStages(t, filepath.Join(dir, "Dockerfile"))
	targets := map[string]string{} // image -> target
	var platforms, majorTag, checksums bool
	for _, j := range wf.Jobs {
		for _, inc := range j.Strategy.Matrix.Include {
			targets[strings.ReplaceAll(inc["image"], "${{ github.repository_owner }}", "ternhq")] = inc["target"]
		}
		for _, s := range j.Steps {
			if strings.HasPrefix(s.Uses, "docker/build-push-action@") {
				p, _ := s.With["platforms"].(string)
				platforms = strings.Contains(p, "linux/amd64") && strings.Contains(p, "linux/arm64")
			}
			if strings.HasPrefix(s.Uses, "docker/metadata-action@") {
				tags, _ := s.With["tags"].(string)
				majorTag = strings.Contains(tags, "pattern=v{{major}}\n") || strings.HasSuffix(strings.TrimSpace(tags), "pattern=v{{major}}")
			}
			checksums = checksums || strings.Contains(s.Run, "sha256sum")
		}
	}
	for img, target := range map[string]string{"ghcr.io/ternhq/tern-action": "action", "ghcr.io/ternhq/tern": "server"} {
		if targets[img] != target {
			t.Errorf("release.yml builds %s from target %q, want %q (images: %v)", img, targets[img], target, targets)
		}
		if _, ok := stages[target]; !ok {
			t.Errorf("release.yml builds target %q, which the Dockerfile does not have", target)
		}
	}
	if !platforms || !majorTag || !checksums {
		t.Errorf("release.yml: multi-arch %v, v{{major}} tag %v, checksums %v: want all", platforms, majorTag, checksums)
	}
}
