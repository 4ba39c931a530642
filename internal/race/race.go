//go:build race

// Package race reports whether the race detector is compiled in, so that
// the heaviest tests can shrink their inputs under it: the detector makes
// memory-bound and allocation-heavy loops 10–20× slower while adding
// nothing to single-goroutine code.
package race

// Enabled is true when built with -race.
const Enabled = true
