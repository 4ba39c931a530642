// Package doccheck holds the repository's documentation tests: every Go
// code block of a doc comment or of README.md is the body of an Example that
// the tests compile and run (see doccheck_test.go). It has no API.
package doccheck
