package main

import (
	"log/slog"
	"runtime"
	"runtime/debug"
)

// A node runs beside the real work of its host: it should take one core's
// slice at most, wake as few threads as it can and hold little memory. A
// node process therefore sets, unless the environment sets them:
//
//   - GOMAXPROCS=1 (not with --overlay, whose WireGuard encryption uses
//     every core it is given): by default the runtime runs one P per CPU,
//     and a datagram that wakes the netpoller may wake an idle P to steal
//     work that is not there.
//   - GOGC=50: below a heap of 4 MB × GOGC/100 the collector does not run,
//     and a node's live heap is 1 to 3 MB, so at the default of 100 it held
//     up to 4 MB of garbage and retained heap. At 50 the 30-process
//     benchmark of issue 15 holds about 1 MB less per process, for no CPU
//     its profiles can see (a collection of a 2 MB heap takes microseconds).
//
// GOMEMLIMIT in the environment applies as usual (none is set here: a limit
// under a large cluster's live heap would make the collector run back to
// back). BENCHMARKS.md (issue 15) has the figures.
type sidecarSettings struct {
	procs     int // GOMAXPROCS to set, 0 for none
	gcPercent int // GOGC to set, 0 for none
}

func sidecarRuntime(overlay bool, lookupEnv func(string) (string, bool)) sidecarSettings {
	var s sidecarSettings
	if _, ok := lookupEnv("GOMAXPROCS"); !ok && !overlay {
		s.procs = 1
	}
	if _, ok := lookupEnv("GOGC"); !ok {
		s.gcPercent = 50
	}
	return s
}

// applySidecarRuntime sets the runtime up for a node process (see
// sidecarRuntime).
func applySidecarRuntime(overlay bool, lookupEnv func(string) (string, bool), log *slog.Logger) {
	s := sidecarRuntime(overlay, lookupEnv)
	if s.procs > 0 {
		runtime.GOMAXPROCS(s.procs)
	}
	if s.gcPercent > 0 {
		debug.SetGCPercent(s.gcPercent)
	}
	log.Debug("sidecar runtime (the GOMAXPROCS and GOGC environment variables override it)",
		"gomaxprocs", runtime.GOMAXPROCS(0), "gogc", gcPercent())
}
