// Command chitchat-bench measures chitchat-go the way the memberlist
// baseline harness (bench/memberlist) measures hashicorp/memberlist,
// so that both can run back to back on one machine and be compared field by
// field. It has three modes:
//
//   - the default mode runs N Servers in this process on 127.0.0.1 UDP and
//     prints one JSON object: convergence time, steady-state cost (bytes,
//     datagrams, CPU, heap per node) and failure-detection latency, with the
//     memberlist harness's field names and definitions; then ours: the
//     spread of 100 writes (kv_spread_p50_s, kv_spread_p99_s), a graceful
//     leave (leave_seen_s), the largest datagram (max_datagram_bytes);
//   - -sim runs N Engines on internal/sim's in-memory network in virtual time
//     and prints one JSON object per N: gossip rounds to converge and to
//     spread a key (and kv_spread_s), bytes per node per round (with
//     background writes: -writes-per-node-s, push on or -no-push), memory
//     per node and per observed node after -sim-warm-rounds, rounds for
//     every survivor to see a killed node dead, false deaths over the whole
//     run, and the largest datagram under -mtu;
//   - -procs N starts N chitchat-demo processes on 127.0.0.1 and prints their
//     footprint: start-up, convergence, CPU and RSS per process, detection;
//     the demo is built as -demo-build says (the sidecar build by default:
//     CGO_ENABLED=0 -tags chitchat_omit_tls), or given by -demo-bin.
//
// Sizes, measured when -sim-warm-rounds was added (engine of commit
// 269bd22): at N = 1,000 and -mtu 1400, 1.9 s of CPU per round and 1.3 KB
// of heap per observed node (N² of them), so the default 2,000 warm rounds
// take an hour, and N = 10,000 would need about 130 GB: it fits a 24 GB
// machine only below about 200 bytes per observed node.
//
// See BENCHMARKS.md at the repository root for how to run the harnesses and
// what the figures mean.
package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the parsed flags.
type options struct {
	ns         []int
	profile    string
	interval   time.Duration
	port       int
	warmup     time.Duration
	steady     time.Duration
	timeout    time.Duration
	loss       float64
	seed       uint64
	cpuprofile string
	memprofile string
	sim        bool
	simRounds  int
	lockstep   bool

	mtu            int
	noPush         bool
	latency        time.Duration
	writesPerNodeS float64
	warmRounds     int
	maxHeapGB      float64
	// simAt says where a -sim run is, for heapGuard.
	simAt    *atomic.Pointer[simPlace]
	kvWrites int
	kvGap    time.Duration

	procs       int
	demoBin     string
	demoBuild   string
	procsSteady time.Duration
	demoArgs    []string
}

// run parses args, runs the benchmark and writes JSON lines to stdout and
// progress to stderr. It returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("chitchat-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	nList := fs.String("n", "50", "number of nodes (>= 2); with -sim a comma-separated list, e.g. 100,1000,2000")
	fs.StringVar(&o.profile, "profile", "default", "configuration profile; chitchat-go has one: default (gossip every -interval, failure detector initial interval = -interval)")
	fs.DurationVar(&o.interval, "interval", 300*time.Millisecond, "gossip interval")
	fs.IntVar(&o.port, "port", 0, "node i binds 127.0.0.1:port+i; 0 picks free ports")
	fs.DurationVar(&o.warmup, "warmup", 0, "pause between convergence and the steady window")
	fs.DurationVar(&o.steady, "steady", 10*time.Second, "steady-state measurement window after convergence (+warmup)")
	fs.DurationVar(&o.timeout, "timeout", 120*time.Second, "limit for each wait (convergence, detection); with -sim, virtual time")
	fs.Float64Var(&o.loss, "loss", 0, "probability of dropping each outgoing UDP datagram")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the loss draws, the nodes' RNGs and (with -sim) the simulation; 0 picks one")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.StringVar(&o.memprofile, "memprofile", "", "write a heap profile, taken when heap_bytes_per_node is measured, to this file (with -sim, to file.N)")
	fs.BoolVar(&o.sim, "sim", false, "simulate in virtual time on the in-memory network instead of running UDP servers")
	fs.IntVar(&o.simRounds, "sim-steady-rounds", 10, "with -sim: rounds of the steady-state window")
	fs.BoolVar(&o.lockstep, "lockstep", false, "with -sim: every node ticks at the same instant and each datagram takes 1 ms (or -latency if longer), so that gossip moves information at most one hop per round (synchronous rounds, as in the push-pull bound; pushes still travel hop after hop within a round)")
	fs.IntVar(&o.mtu, "mtu", 0, "every node's Config.MaxDatagramSize in bytes (0: the default, 65,507); with -sim the simulated network also drops larger datagrams")
	fs.BoolVar(&o.noPush, "no-push", false, "turn off the push of news (Config.DisablePush): news waits for gossip rounds")
	fs.DurationVar(&o.latency, "latency", 0, "with -sim: one-way delay of every datagram, e.g. 1ms")
	fs.Float64Var(&o.writesPerNodeS, "writes-per-node-s", 0, "with -sim: background writes per node per second during the steady window (e.g. 0.1: one write per node per 10 s), each pushed as Server.Set does")
	fs.IntVar(&o.warmRounds, "sim-warm-rounds", 2000, "with -sim: measure memory once this many rounds have passed since the start (failure detector windows full; issue 13's figure is after 2,000 rounds); the detection test follows")
	fs.Float64Var(&o.maxHeapGB, "max-heap-gb", 0, "with -sim: stop the run (exit 1) if the live heap grows above this many GB; 0: "+describeLimit())
	fs.IntVar(&o.kvWrites, "kv-writes", 100, "UDP mode: writes of the key-spread phase, each on a random node (0 skips the phase)")
	fs.DurationVar(&o.kvGap, "kv-gap", 30*time.Millisecond, "UDP mode: mean time between two writes of the key-spread phase (each gap is uniform in [0.5, 1.5] of it)")
	fs.IntVar(&o.procs, "procs", 0, "run this many chitchat-demo processes on 127.0.0.1 instead (one seed, --interval_ms from -interval) and print their footprint; arguments after -- go to every process")
	fs.StringVar(&o.demoBin, "demo-bin", "", "with -procs: the chitchat-demo binary (default: built once from this module, as -demo-build says)")
	fs.StringVar(&o.demoBuild, "demo-build", "sidecar", "with -procs and no -demo-bin: how to build chitchat-demo: sidecar (CGO_ENABLED=0 -tags chitchat_omit_tls, the build to deploy) or default (plain go build)")
	fs.DurationVar(&o.procsSteady, "procs-steady", 5*time.Second, "with -procs: steady-state window for CPU time, after convergence")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.demoArgs = fs.Args()
	for _, f := range strings.Split(*nList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			fmt.Fprintf(stderr, "chitchat-bench: -n: %q is not a node count >= 2\n", f)
			return 2
		}
		o.ns = append(o.ns, n)
	}
	switch {
	case o.profile != "default":
		fmt.Fprintf(stderr, "chitchat-bench: unknown profile %q (chitchat-go has one: default)\n", o.profile)
		return 2
	case o.loss < 0 || o.loss >= 1:
		fmt.Fprintln(stderr, "chitchat-bench: need 0 <= -loss < 1")
		return 2
	case o.interval <= 0 || o.steady <= 0 || o.timeout <= 0 || o.warmup < 0:
		fmt.Fprintln(stderr, "chitchat-bench: -interval, -steady and -timeout must be positive, -warmup not negative")
		return 2
	case !o.sim && len(o.ns) != 1:
		fmt.Fprintln(stderr, "chitchat-bench: a list of -n values needs -sim")
		return 2
	case o.port < 0 || o.port+o.ns[0] > 65535:
		fmt.Fprintln(stderr, "chitchat-bench: -port + -n must stay below 65536")
		return 2
	case o.simRounds < 1:
		fmt.Fprintln(stderr, "chitchat-bench: -sim-steady-rounds must be at least 1")
		return 2
	case o.mtu != 0 && (o.mtu < chitchat.MinDatagramSize || o.mtu > chitchat.MaxDatagramSize):
		fmt.Fprintf(stderr, "chitchat-bench: -mtu %d: must be 0 (the default budget) or between %d and %d bytes\n", o.mtu, chitchat.MinDatagramSize, chitchat.MaxDatagramSize)
		return 2
	case o.latency < 0 || (o.latency > 0 && !o.sim):
		fmt.Fprintln(stderr, "chitchat-bench: -latency needs -sim and must not be negative")
		return 2
	case o.writesPerNodeS < 0 || math.IsNaN(o.writesPerNodeS) || math.IsInf(o.writesPerNodeS, 0) || (o.writesPerNodeS > 0 && !o.sim):
		fmt.Fprintln(stderr, "chitchat-bench: -writes-per-node-s needs -sim and must be a finite number >= 0")
		return 2
	case o.maxHeapGB < 0 || math.IsNaN(o.maxHeapGB) || math.IsInf(o.maxHeapGB, 0):
		fmt.Fprintln(stderr, "chitchat-bench: -max-heap-gb must be a finite number >= 0")
		return 2
	case o.warmRounds < 0:
		fmt.Fprintln(stderr, "chitchat-bench: -sim-warm-rounds must not be negative")
		return 2
	case o.kvWrites < 0 || o.kvGap <= 0:
		fmt.Fprintln(stderr, "chitchat-bench: -kv-writes must not be negative and -kv-gap must be positive")
		return 2
	case o.procs < 0 || o.procs == 1 || (o.procs > 0 && o.sim):
		fmt.Fprintln(stderr, "chitchat-bench: -procs needs at least 2 processes and excludes -sim")
		return 2
	case !knownDemoBuild(o.demoBuild):
		fmt.Fprintf(stderr, "chitchat-bench: -demo-build %q: must be sidecar or default\n", o.demoBuild)
		return 2
	case o.procsSteady <= 0:
		fmt.Fprintln(stderr, "chitchat-bench: -procs-steady must be positive")
		return 2
	case len(o.demoArgs) > 0 && o.procs == 0:
		fmt.Fprintf(stderr, "chitchat-bench: unexpected arguments %q: only -procs passes arguments (after --) to the demo processes\n", o.demoArgs)
		return 2
	}

	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			fmt.Fprintf(stderr, "chitchat-bench: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "chitchat-bench: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	if o.memprofile != "" {
		runtime.MemProfileRate = 4096 // fine enough to attribute per-node state
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "chitchat-bench: "+format+"\n", a...) }
	if o.sim {
		o.simAt = new(atomic.Pointer[simPlace])
		if limit := heapLimit(o.maxHeapGB); limit > 0 {
			debug.SetMemoryLimit(gcLimit(limit))
			defer heapGuard(limit, time.Second, func(heap uint64) string { return o.simAt.Load().describe(heap) }, logf, os.Exit)()
		}
		for _, n := range o.ns {
			if err := writeJSON(stdout, runSim(o, n, logf)); err != nil {
				logf("%v", err)
				return 1
			}
		}
		return 0
	}
	if o.procs > 0 {
		if err := writeJSON(stdout, runProcs(o, logf)); err != nil {
			logf("%v", err)
			return 1
		}
		return 0
	}
	if err := writeJSON(stdout, runUDP(o, o.ns[0], logf)); err != nil {
		logf("%v", err)
		return 1
	}
	return 0
}
