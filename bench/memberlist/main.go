// Command memberlist-bench is the baseline of chitchat-go's benchmarks: it
// runs N hashicorp/memberlist nodes in one process on 127.0.0.1 and prints
// one JSON line with the figures cmd/chitchat-bench prints for chitchat-go,
// under the same names and definitions, so that the two harnesses run back
// to back on one machine and cmd/benchplot compares them field by field.
//
// The run has the phases of cmd/chitchat-bench:
//
//	start        node 0 alone, then every other node joins node 0, in sequence
//	convergence  until every node counts N members (polled every 5 ms)
//	steady       -warmup, then a -steady window: bytes, datagrams, CPU, suspicions
//	heap         HeapInuse after a GC, per node
//	detection    the last node stops answering (Shutdown, no Leave) until
//	             every survivor has marked it dead
//
// It is its own Go module so that chitchat-go's go.mod never depends on
// memberlist. See README.md for the flags, the fields and the caveats.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the parsed flags.
type options struct {
	n          int
	profile    string
	port       int
	warmup     time.Duration
	steady     time.Duration
	timeout    time.Duration
	loss       float64
	seed       uint64
	cpuprofile string
	memprofile string
}

// run parses args, runs the benchmark, writes the JSON line to stdout and
// progress to stderr, and returns the exit code: 2 for bad flags, 1 if the
// benchmark could not report, 0 otherwise (a run whose waits timed out still
// reports, with null figures and the reason in "errors").
func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if err != flag.ErrHelp {
			fmt.Fprintf(stderr, "memberlist-bench: %v\n", err)
		}
		return 2
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			fmt.Fprintf(stderr, "memberlist-bench: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "memberlist-bench: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "memberlist-bench: "+format+"\n", a...) }
	if err := writeJSON(stdout, measure(o, logf)); err != nil {
		logf("%v", err)
		return 1
	}
	return 0
}

// parseFlags returns the options, or an error that says which flag to fix.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("memberlist-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.IntVar(&o.n, "n", 50, "number of nodes (>= 2)")
	fs.StringVar(&o.profile, "profile", "lan", "memberlist configuration: lan (DefaultLANConfig) or fast (every LAN timer ×0.3: a probe every 300 ms)")
	fs.IntVar(&o.port, "port", 0, "node i binds 127.0.0.1:port+i (UDP and TCP); 0 picks free ports")
	fs.DurationVar(&o.warmup, "warmup", 0, "pause between convergence and the steady window")
	fs.DurationVar(&o.steady, "steady", 10*time.Second, "steady-state measurement window after convergence (+warmup)")
	fs.DurationVar(&o.timeout, "timeout", 120*time.Second, "limit for each wait (start-up and convergence, detection)")
	fs.Float64Var(&o.loss, "loss", 0, "probability of dropping each outgoing UDP datagram")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the loss draws; 0 picks one (printed in the JSON)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.StringVar(&o.memprofile, "memprofile", "", "write a heap profile, taken when heap_bytes_per_node is measured, to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("unexpected arguments %q: every setting is a flag (-h lists them)", fs.Args())
	case o.n < 2:
		return o, fmt.Errorf("-n %d: need at least 2 nodes", o.n)
	case o.loss < 0 || o.loss >= 1:
		return o, fmt.Errorf("-loss %g: need 0 <= -loss < 1", o.loss)
	case o.steady <= 0 || o.timeout <= 0 || o.warmup < 0:
		return o, fmt.Errorf("-steady and -timeout must be positive, -warmup not negative")
	case o.port < 0 || o.port+o.n > 65535:
		return o, fmt.Errorf("-port %d with -n %d: ports must stay below 65536", o.port, o.n)
	}
	if _, err := profileConfig(o.profile); err != nil {
		return o, err
	}
	return o, nil
}
