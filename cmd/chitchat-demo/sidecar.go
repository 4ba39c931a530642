package main

import (
	"log/slog"
	"runtime"
)

// A node runs beside the real work of its host: it should take one core's
// slice at most, and wake as few threads as it can. By default the Go
// runtime runs one P per CPU, and every datagram that wakes the netpoller
// may wake an idle P to steal work that is not there; with GOMAXPROCS=1 the
// 30-process benchmark of issue 15 spends about 20 % less CPU (BENCHMARKS.md).
//
// The garbage collector is left alone: a node's heap is a few MB, below the
// runtime's 4 MB minimum heap goal, so GOGC changes nothing, and the
// profiles show no GC time worth a memory limit. GOGC and GOMEMLIMIT in the
// environment apply as usual.

// sidecarProcs returns the GOMAXPROCS a node process sets, 0 for none: 1,
// unless the environment sets GOMAXPROCS or the node runs the overlay (whose
// WireGuard encryption uses every core it is given).
func sidecarProcs(overlay bool, lookupEnv func(string) (string, bool)) int {
	if _, ok := lookupEnv("GOMAXPROCS"); ok || overlay {
		return 0
	}
	return 1
}

// applySidecarRuntime sets the runtime up for a node process (see
// sidecarProcs).
func applySidecarRuntime(overlay bool, lookupEnv func(string) (string, bool), log *slog.Logger) {
	if n := sidecarProcs(overlay, lookupEnv); n > 0 {
		prev := runtime.GOMAXPROCS(n)
		log.Debug("sidecar runtime: GOMAXPROCS set (set the GOMAXPROCS environment variable to override)", "gomaxprocs", n, "was", prev)
	}
}
