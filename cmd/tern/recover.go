package main

import (
	"context"
	"fmt"
	"io"
)

// runRecover is a placeholder until the recover command lands.
func runRecover(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "tern recover: not built yet")
	return 1
}
