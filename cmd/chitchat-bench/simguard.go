package main

import (
	"fmt"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// simPlace is where a -sim run is: its N, phase and round, and before
// every node knows every node, how many nodes a node knows on average
// (0: not counted).
type simPlace struct {
	n     int
	phase string
	round float64
	known float64
}

// describe says where the run is and what its heap means per node state
// held (N × known before every node knows every node, N² after).
func (p *simPlace) describe(heap uint64) string {
	if p == nil {
		return "at the start"
	}
	states, what := float64(p.n)*float64(p.n), "observed node"
	if p.known > 0 {
		states, what = float64(p.n)*p.known, fmt.Sprintf("node state held (a node knows %.0f nodes on average)", p.known)
	}
	return fmt.Sprintf("at n=%d, %s, round %.1f: %.0f B of heap per %s", p.n, p.phase, p.round, float64(heap)/states, what)
}

// heapGuard stops a -sim run whose live heap (as of the last GC)
// outgrows limit bytes, before the machine (shared, without swap) runs
// out of memory: it checks every period and calls exit(1) after a message
// that says how far the run got (where). A simulation of N nodes holds N²
// node states, so the heap of the first rounds says early whether an N
// fits.
func heapGuard(limit uint64, period time.Duration, where func(heap uint64) string, stderr func(string, ...any), exit func(int)) (stop func()) {
	done := make(chan struct{})
	go func() {
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			metrics.Read(sample)
			if heap := sample[0].Value.Uint64(); heap > limit {
				stderr("live heap %.2f GB above the limit of %.2f GB (-max-heap-gb) %s: stopped", float64(heap)/1e9, float64(limit)/1e9, where(heap))
				exit(1)
				return
			}
		}
	}()
	return func() { close(done) }
}

// memAvailable returns MemAvailable from /proc/meminfo, in bytes (0 if
// it cannot be read).
func memAvailable() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseUint(f[0], 10, 64)
				if err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}

// heapLimit returns the -max-heap-gb limit in bytes: gb if set, else 60 %
// of the memory available at start (0: no limit known). The GC's soft
// memory limit goes half as high again (gcLimit: 90 % of the available
// memory by default), so that garbage is collected before the machine runs
// out, and the live heap reaches the guard while the GC still has room:
// with the soft limit just above the live heap, the GC runs back to back
// and the run crawls instead of stopping.
func heapLimit(gb float64) uint64 {
	if gb > 0 {
		return uint64(gb * 1e9)
	}
	return memAvailable() / 10 * 6
}

// gcLimit returns the GC's soft memory limit for a guard of limit bytes.
func gcLimit(limit uint64) int64 { return int64(limit / 2 * 3) }

// describeLimit says what the default limit is, for the flag's help.
func describeLimit() string {
	if a := memAvailable(); a > 0 {
		return fmt.Sprintf("60%% of the memory available at start, now %.1f GB", float64(a)/10*6/1e9)
	}
	return "none (/proc/meminfo unreadable)"
}
