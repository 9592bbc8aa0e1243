// Package e2e holds process-level end-to-end tests of the tern binary: its
// TestMain builds ./cmd/tern once, and the tests run `tern serve`,
// `tern recover`, `tern plan`, `tern migrate` and `tern version` as real
// processes against the MariaDB test server (internal/testdb) and a fake
// GitHub (internal/fakegithub) served by the test process over loopback.
//
// Run them with:
//
//	go test -race -count=1 ./e2e/
//
// The package has no non-test code besides this comment.
package e2e
