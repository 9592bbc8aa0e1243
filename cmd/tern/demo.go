package main

import (
	"context"
	"fmt"
	"io"
)

// runDemo is a placeholder until the demo command lands.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "tern demo: not built yet")
	return 1
}
