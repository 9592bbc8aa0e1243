package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestParsePoints(t *testing.T) {
	got, err := parsePoints("500/50, 5000/500")
	if err != nil || !slices.Equal(got, []point{{500, 50}, {5000, 500}}) {
		t.Fatalf("parsePoints = %v, %v", got, err)
	}
	for _, bad := range []string{"500", "a/b", "5/6", "0/0", "500/-1"} {
		if _, err := parsePoints(bad); err == nil {
			t.Errorf("parsePoints(%q) took it", bad)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []time.Duration
		want time.Duration
	}{{[]time.Duration{3, 1, 2}, 2}, {[]time.Duration{4, 1, 3, 2}, 2}, {[]time.Duration{7}, 7}} {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestSplitCreates splits the generator's own output.
func TestSplitCreates(t *testing.T) {
	f := filepath.Join(t.TempDir(), "live.sql")
	src := "CREATE TABLE `a` (\n  `id` int NOT NULL,\n  `c` varchar(9) COMMENT 'x;y',\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB COMMENT='p;q';\n\n" +
		"CREATE TABLE `b` (\n  `id` int NOT NULL\n) ENGINE=InnoDB;\n"
	if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := splitCreates(f)
	if err != nil || len(got) != 2 || got[1] != "CREATE TABLE `b` (\n  `id` int NOT NULL\n) ENGINE=InnoDB;" {
		t.Fatalf("splitCreates = %q, %v", got, err)
	}
	if err := os.WriteFile(f, []byte(src+"CREATE TABLE `c` (\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := splitCreates(f); err == nil {
		t.Fatal("a cut-off statement was taken")
	}
}
