package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Stamped into the binary under test, and checked by TestMigrateAndVersion.
const (
	testVersion = "v0.0.0-e2e"
	testCommit  = "e2ecommit"
)

// ternBin is the path of the tern binary TestMain built.
var ternBin string

// TestMain builds ./cmd/tern once (the build cache makes repeat runs
// cheap), runs the tests, and removes the binary.
func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "tern-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: temp dir: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ternBin = filepath.Join(dir, "tern")
	goBin, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: the go command is needed to build tern: %v\n", err)
		return 1
	}
	cmd := exec.Command(goBin, "build", "-o", ternBin,
		"-ldflags", "-X main.version="+testVersion+" -X main.commit="+testCommit,
		"github.com/ternhq/tern/cmd/tern")
	cmd.Dir = ".." // the module root; go test runs in the package directory
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/tern: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}
