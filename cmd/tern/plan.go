package main

import (
	"context"
	"fmt"
	"io"
)

// runPlan is a placeholder until the plan command lands.
func runPlan(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "tern plan: not built yet")
	return 1
}
