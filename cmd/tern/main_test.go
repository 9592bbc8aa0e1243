package main

import (
	"bytes"
	"context"
	"log"
	"math"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// The driver's own log lines ("[mysql] ... packets.go:58: unexpected
// EOF") never reach the terminal; tern's message does.
func TestDriverLogIsQuiet(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close() // a server that hangs up at once
		}
	}()
	var driverLog bytes.Buffer
	mysql.SetLogger(log.New(&driverLog, "[mysql] ", 0)) // as the driver's default, but captured
	defer mysql.SetLogger(log.New(os.Stderr, "[mysql] ", log.Ldate|log.Ltime))
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.sql"), []byte("CREATE TABLE a (id int PRIMARY KEY);\n"), 0o644)
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"plan", "--dsn", "root@tcp(" + ln.Addr().String() + ")/shop?timeout=2s", "--dir", dir}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "tern plan: ") {
		t.Errorf("exit %d, stderr %q: want 1 and tern's message", code, stderr.String())
	}
	if driverLog.Len() > 0 {
		t.Errorf("the driver logged: %s", driverLog.String())
	}
}

// TestTuneGC: tern plan collects at planGCPercent unless GOGC is set;
// the other commands keep the default.
func TestTuneGC(t *testing.T) {
	const noLimit = math.MaxInt64
	for _, tc := range []struct {
		args           []string
		gogc, memlimit string
		want           int
		wantLimit      int64
	}{
		{[]string{"plan", "-d", "x"}, "", "", planGCPercent, planMemoryLimit},
		{[]string{"plan"}, "50", "", 100, planMemoryLimit},
		{[]string{"plan"}, "", "2GiB", planGCPercent, noLimit},
		{[]string{"serve"}, "", "", 100, noLimit},
		{nil, "", "", 100, noLimit},
	} {
		prev := debug.SetGCPercent(100)
		prevLimit := debug.SetMemoryLimit(noLimit)
		tuneGC(tc.args, func(k string) string {
			switch k {
			case "GOGC":
				return tc.gogc
			case "GOMEMLIMIT":
				return tc.memlimit
			}
			return ""
		})
		got, gotLimit := debug.SetGCPercent(prev), debug.SetMemoryLimit(prevLimit)
		if got != tc.want || gotLimit != tc.wantLimit {
			t.Errorf("%v with GOGC=%q GOMEMLIMIT=%q: GC percent %d, memory limit %d; want %d, %d", tc.args, tc.gogc, tc.memlimit, got, gotLimit, tc.want, tc.wantLimit)
		}
	}
}
