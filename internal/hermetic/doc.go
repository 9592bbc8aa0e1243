// Package hermetic holds one test: that no Go file in the module names a
// path outside the module, so a clone anywhere (with nothing beside it)
// passes the suite. Test inputs live under testdata/ folders.
package hermetic
