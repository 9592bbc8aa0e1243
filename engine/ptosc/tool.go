package ptosc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ternhq/tern/engine"
)

// keepLines is how many of the tool's last output lines are kept for an
// error message.
const keepLines = 40

// args returns the tool's command line for one task: the change (only the
// part of tern's ALTER TABLE after the table's name), its own shadow
// table, no swap and no cleanup (tern swaps and cleans up itself, so that
// both are under its ledger), no replicas, no phoning home, and the DSN
// that names the option file holding user and password. No secret is on
// it.
func (e *Engine) args(n names, table, spec, optionFile string) []string {
	a := []string{
		"--alter", spec,
		"--execute",
		"--recursion-method=none",
		"--no-version-check",
		"--new-table-name=" + n.shadow,
		"--no-swap-tables",
		"--no-drop-new-table",
		"--no-drop-triggers",
		"--progress=time,1",
		"--charset=utf8mb4",
		"--set-vars=lock_wait_timeout=" + strconv.FormatInt(e.lockWaitSeconds(), 10),
	}
	if e.opts.ChunkSize > 0 {
		a = append(a, "--chunk-size="+strconv.Itoa(e.opts.ChunkSize), "--chunk-time=0")
	}
	dsn := "F=" + optionFile + ",D=" + e.database + ",t=" + table
	if e.socket != "" {
		dsn += ",S=" + e.socket
	} else {
		dsn += ",h=" + e.host + ",P=" + e.port
	}
	return append(a, dsn)
}

// copyRows runs the tool for task t until it has made the shadow table,
// put its triggers on the table and copied every row. When ctx ends first,
// the tool is killed, its chunk still running on the server is stopped
// with KILL QUERY, and a transient error of class interrupted is returned
// (the caller drops the triggers and the copy).
func (e *Engine) copyRows(ctx context.Context, n names, t engine.Task, spec string, rec engine.Recorder) error {
	if err := ctx.Err(); err != nil {
		return engine.ClassifyMySQL(err)
	}
	dir, err := os.MkdirTemp("", "tern-ptosc-")
	if err != nil {
		return &engine.RetryableError{Class: engine.ClassUnknown, Err: fmt.Errorf("make a private directory for the tool's option file: %w", err)}
	}
	defer os.RemoveAll(dir)
	cnf := filepath.Join(dir, "client.cnf")
	if err := os.WriteFile(cnf, []byte(optionFile(e.user, e.password)), 0o600); err != nil {
		return &engine.RetryableError{Class: engine.ClassUnknown, Err: fmt.Errorf("write the tool's option file: %w", err)}
	}
	if strings.ContainsAny(e.database, ",=") || strings.ContainsAny(dir, ",=") {
		return &engine.PermanentError{Class: engine.ClassUnsupported, Err: fmt.Errorf(
			"pt-online-schema-change cannot name schema %s (a comma or = in its name)", e.database)}
	}
	cmd := exec.Command(e.tool, e.args(n, t.Table, spec, cnf)...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "HOME=" + dir}
	cmd.Dir = dir
	cmd.SysProcAttr = sysProcAttr()
	out := &tail{secret: e.password}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("run %s: %w", e.tool, err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("run %s: %w", e.tool, err)
	}
	if err := cmd.Start(); err != nil {
		return &engine.PermanentError{Class: engine.ClassUnknown, Err: fmt.Errorf("start %s: %w", e.tool, err)}
	}
	prog := e.progress(ctx, rec, t.Seq)
	var readers sync.WaitGroup
	readers.Add(2)
	go func() { defer readers.Done(); out.read(stdout, nil) }()
	go func() { defer readers.Done(); out.read(stderr, prog) }()
	exited := make(chan error, 1)
	go func() { readers.Wait(); exited <- cmd.Wait() }()
	log := e.opts.Logger.With("task", t.Seq, "table", t.Table, "pid", cmd.Process.Pid)
	log.Info("pt-osc: copying", "shadow", n.shadow)
	select {
	case err = <-exited:
	case <-ctx.Done():
		cause := context.Cause(ctx)
		// The whole process group: the tool and anything it started.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		defer cancel()
		msg := fmt.Sprintf("pt-online-schema-change copy of table %s stopped (the tool was killed, its copy chunk stopped with KILL QUERY, its triggers and copy dropped; the table is unchanged)", t.Table)
		if kerr := e.killCopiers(cctx, n.shadow); kerr != nil {
			msg = fmt.Sprintf("pt-online-schema-change copy of table %s stopped (the tool was killed; stopping its copy chunk: %v)", t.Table, kerr)
		}
		log.Info("pt-osc: stopped", "cause", cause)
		return &engine.RetryableError{Class: engine.ClassInterrupted, Err: fmt.Errorf("%s: %w", msg, cause)}
	}
	text := out.String()
	log.Debug("pt-osc: output", "out", text)
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return classify(text, ee.ExitCode())
	}
	return &engine.PermanentError{Class: engine.ClassUnknown, Err: fmt.Errorf("run %s: %w", e.tool, err)}
}

// tail keeps the last lines the tool printed, with the password (which
// the tool is never given on its command line) masked should it appear.
type tail struct {
	secret string
	mu     sync.Mutex
	lines  []string
}

// read reads r line by line until it ends, keeping each line and handing
// it to onLine when that is set.
func (t *tail) read(r io.Reader, onLine func(string)) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if t.secret != "" {
			line = strings.ReplaceAll(line, t.secret, "***")
		}
		t.mu.Lock()
		t.lines = append(t.lines, line)
		if len(t.lines) > keepLines {
			t.lines = t.lines[len(t.lines)-keepLines:]
		}
		t.mu.Unlock()
		if onLine != nil {
			onLine(line)
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}

// progress returns what to do with each line of the tool's progress
// output: record it through rec when rec records progress, at most every
// progress interval, the first one interval after the copy began; nil
// when rec does not record progress.
func (e *Engine) progress(ctx context.Context, rec engine.Recorder, seq int) func(string) {
	pr, ok := rec.(engine.ProgressRecorder)
	if !ok {
		return nil
	}
	last := time.Now()
	return func(line string) {
		p, ok := parseProgress(line)
		if !ok || time.Since(last) < e.progressInterval {
			return
		}
		if err := pr.TaskProgress(ctx, seq, p); err != nil {
			return // the lease is lost: the attempt is being stopped
		}
		last = time.Now()
	}
}
