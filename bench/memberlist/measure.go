package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"sync"
	"syscall"
	"time"
)

// pollInterval is how often a wait checks its condition, as cmd/chitchat-bench.
const pollInterval = 5 * time.Millisecond

// shutdownLimit bounds the final shutdown of every node.
const shutdownLimit = 10 * time.Second

// measure runs the phases and returns the result; it never fails: a phase
// that cannot complete leaves its figures (and every later one) null and
// says why in Errors.
func measure(o options, logf func(string, ...any)) *result {
	seed := o.seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	res := &result{System: "memberlist", Version: moduleVersion("github.com/hashicorp/memberlist"),
		Profile: o.profile, N: o.n, Loss: o.loss,
		WarmupS: o.warmup.Seconds(), SteadyS: o.steady.Seconds(), TimeoutS: o.timeout.Seconds(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), Errors: []string{}, Seed: seed}
	fail := func(format string, a ...any) { res.Errors = append(res.Errors, fmt.Sprintf(format, a...)) }

	suspicions := &suspicionCounter{}
	if err := installSuspicionCounter(suspicions); err != nil {
		fail("metrics sink: %v", err)
		return res
	}
	rec := newRecorder(o.n)
	var nodes []*node
	defer func() {
		if !shutdownAll(nodes, shutdownLimit) {
			fail("shutdown of all nodes timed out after %v", shutdownLimit)
		}
	}()

	// Start: node 0 alone, then each other node joins node 0 right after
	// its creation, in sequence.
	t0 := time.Now()
	for i := range o.n {
		port := 0
		if o.port != 0 {
			port = o.port + i
		}
		nd, err := startNode(i, port, o.profile, o.loss, seed, rec)
		if err != nil {
			fail("start: %v", err)
			return res
		}
		nodes = append(nodes, nd)
		if i > 0 {
			if _, err := nd.ml.Join([]string{nodes[0].addr}); err != nil {
				res.JoinErrors++
			}
		}
		if time.Since(t0) > o.timeout {
			fail("start-up timed out after %d of %d nodes", i+1, o.n)
			return res
		}
	}
	res.StartupS = *num(time.Since(t0).Seconds(), 4)

	// Convergence: every node counts N members (alive or suspect, as
	// memberlist's NumMembers does).
	fewest, lastLog := 0, time.Now()
	converged := waitFor(t0.Add(o.timeout), func() bool {
		fewest = o.n
		for _, nd := range nodes {
			fewest = min(fewest, nd.ml.NumMembers())
		}
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			logf("t=%.0fs: fewest members seen by a node %d/%d, %d suspicions and %d dead marks so far",
				time.Since(t0).Seconds(), fewest, o.n, suspicions.n.Load(), rec.total.Load())
		}
		return fewest == o.n
	})
	if !converged {
		fail("convergence timed out: fewest members seen by a node %d/%d; %d suspicions and %d dead marks since the start",
			fewest, o.n, suspicions.n.Load(), rec.total.Load())
		return res
	}
	res.ConvergenceS = num(time.Since(t0).Seconds(), 4)
	logf("n=%d %s loss=%g: converged in %.3fs", o.n, o.profile, o.loss, *res.ConvergenceS)

	// Steady state: the harness only sleeps during the window.
	time.Sleep(o.warmup)
	s0, cpu0, k0, w0 := sum(nodes), cpuTime(), suspicions.n.Load(), time.Now()
	time.Sleep(o.steady)
	s1, cpu1, k1, w1 := sum(nodes), cpuTime(), suspicions.n.Load(), time.Now()
	steadyFigures(res, s1.sub(s0), cpu1-cpu0, float64(o.n)*w1.Sub(w0).Seconds())
	res.SuspectMarks = intp(int(k1 - k0))
	fp, fpMarks := rec.falseDeaths(w0, w1, "")
	res.FalsePositives, res.FalsePosMarks = intp(fp), intp(fpMarks)

	// One push/pull exchange, sampled: memberlist's first periodic push/pull
	// comes a random stagger plus one scaled PushPullInterval after the
	// start, so the window usually holds none. A Join between two members
	// is the same exchange.
	a, b := nodes[1], nodes[2%o.n]
	p0 := a.c.tcpBytes.Load() + b.c.tcpBytes.Load()
	if _, err := a.ml.Join([]string{b.addr}); err == nil {
		pp := float64(a.c.tcpBytes.Load() + b.c.tcpBytes.Load() - p0)
		cfg, _ := profileConfig(o.profile)
		res.PushPullBytes = num(pp, 0)
		res.PushPullEstTCP = num(pp/pushPullPeriod(cfg.PushPullInterval, o.n).Seconds(), 1)
	} else {
		fail("push/pull sample: %v", err)
	}

	res.GoroutinesPerNode = num(float64(runtime.NumGoroutine())/float64(o.n), 2)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapBytesPerNode = num(float64(ms.HeapInuse)/float64(o.n), 0)
	if o.memprofile != "" {
		if err := writeHeapProfile(o.memprofile); err != nil {
			fail("memprofile: %v", err)
		}
	}
	logf("steady: %.0f B/node/s udp, %.0f B/node/s tcp, %.2f pkts/node/s, %.4f cpu-s/node/s, %d false positives",
		*res.BytesPerNodeSUDP, *res.BytesPerNodeSTCP, *res.PktsPerNodeS, *res.CPUSPerNodeS, fp)

	// Failure detection: the last node stops answering (Shutdown without
	// Leave closes its sockets) until every survivor has marked it dead.
	victim := nodes[o.n-1]
	nodes = nodes[:o.n-1]
	killed := time.Now()
	victim.ml.Shutdown()
	survivors := o.n - 1
	all := waitFor(killed.Add(o.timeout), func() bool {
		return !slices.ContainsFunc(rec.victimDeadAt(survivors), time.Time.IsZero)
	})
	end := time.Now()
	detectionFigures(res, rec.victimDeadAt(survivors), killed)
	if !all {
		fail("detection timed out: %d of %d nodes saw the victim dead", *res.DetectSeen, survivors)
	}
	fpd, _ := rec.falseDeaths(killed, end, rec.victim)
	res.FalsePosDetect = intp(fpd)
	if res.DetectLastS != nil {
		logf("detect: first %.3fs, median %.3fs, last %.3fs", *res.DetectFirstS, *res.DetectMedianS, *res.DetectLastS)
	}
	return res
}

// steadyFigures fills the window's rates from the counters' increase d and
// the CPU time spent, over per = N × window seconds.
func steadyFigures(res *result, d totals, cpu time.Duration, per float64) {
	res.BytesPerNodeSUDP = num(float64(d.udpBytes)/per, 1)
	res.BytesPerNodeSTCP = num(float64(d.tcpBytes)/per, 1)
	res.PktsPerNodeSUDP = num(float64(d.udpPackets)/per, 3)
	res.PktsPerNodeSTCP = num(float64(d.tcpWrites)/per, 3)
	res.PktsPerNodeS = num(float64(d.udpPackets+d.tcpWrites)/per, 3)
	res.TCPConnsPerNodeS = num(float64(d.tcpDials)/per, 4)
	res.DroppedPerNodeS = num(float64(d.udpDropped)/per, 3)
	res.CPUSPerNodeS = num(cpu.Seconds()/per, 6)
}

// detectionFigures fills the detection delays from when each survivor
// marked the victim dead (zero: never), counted from the kill. A survivor
// that never did counts as +Inf in the median; one that had marked it dead
// before the kill counts as 0.
func detectionFigures(res *result, deadAt []time.Time, killed time.Time) {
	delays := make([]float64, 0, len(deadAt))
	for _, at := range deadAt {
		if at.IsZero() {
			delays = append(delays, math.Inf(1))
		} else {
			delays = append(delays, max(0, at.Sub(killed).Seconds()))
		}
	}
	slices.Sort(delays)
	seen, _ := slices.BinarySearch(delays, math.Inf(1))
	res.DetectSeen = intp(seen)
	if seen > 0 {
		res.DetectFirstS = num(delays[0], 4)
	}
	if m := median(delays); !math.IsInf(m, 1) {
		res.DetectMedianS = num(m, 4)
	}
	if seen == len(delays) {
		res.DetectLastS = num(delays[len(delays)-1], 4)
	}
}

// waitFor checks cond every pollInterval until it holds (true) or deadline
// passes (false).
func waitFor(deadline time.Time, cond func() bool) bool {
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollInterval)
	}
	return true
}

func sum(nodes []*node) totals {
	var t totals
	for _, nd := range nodes {
		nd.c.addTo(&t)
	}
	return t
}

// shutdownAll shuts every node down (without Leave) in parallel and reports
// whether they all returned within limit.
func shutdownAll(nodes []*node, limit time.Duration) bool {
	done := make(chan struct{})
	go func() {
		var wg sync.WaitGroup
		for _, nd := range nodes {
			wg.Go(func() { nd.ml.Shutdown() })
		}
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(limit):
		return false
	}
}

// cpuTime returns the process's CPU time, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// moduleVersion returns the version of the dependency path from the build
// information.
func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "unknown"
}

func writeHeapProfile(name string) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
