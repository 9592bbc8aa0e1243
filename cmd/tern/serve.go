package main

import (
	"context"
	"fmt"
	"io"
)

// runServe is a placeholder until the serve command lands.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "tern serve: not built yet")
	return 1
}
