// Package release holds the tests of what tern ships besides its Go code:
// the GitHub workflows (.github/workflows: CI and the release), the
// Action's metadata (action.yml), the example workflows users copy
// (examples/workflows), the Dockerfile's images and the .dockerignore.
// None of them can run on a developer's machine, so the tests lint the
// workflows with actionlint (used as a library) and check what the
// documentation of GitHub and Docker require of the others; a broken
// workflow fails ./scripts/test.
package release
