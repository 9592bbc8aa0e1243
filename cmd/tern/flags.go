package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/ternhq/tern/config"
)

// newFlags returns a flag set of its own (never flag.CommandLine, where
// vitess registers glog's flags) with --config already defined.
func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("tern "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := fs.String("config", os.Getenv("TERN_CONFIG"), "server config `FILE` (default $TERN_CONFIG)")
	return fs, cfg
}

// loadConfig loads the server config named by --config.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return nil, fmt.Errorf("no config: pass --config FILE or set TERN_CONFIG")
	}
	return config.Load(path)
}
