package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/transport"
)

// result holds the memberlist harness's fields, in its order and with its
// names and definitions (bench/memberlist/README.md). Figures that
// do not apply to chitchat are null; what chitchat never does (TCP) is 0.
type result struct {
	System            string   `json:"system"`
	Version           string   `json:"version"`
	Profile           string   `json:"profile"`
	N                 int      `json:"n"`
	Loss              float64  `json:"loss"`
	ConvergenceS      *float64 `json:"convergence_s"`
	BytesPerNodeSUDP  *float64 `json:"bytes_per_node_s_udp"`
	BytesPerNodeSTCP  *float64 `json:"bytes_per_node_s_tcp"`
	PktsPerNodeS      *float64 `json:"pkts_per_node_s"`
	CPUSPerNodeS      *float64 `json:"cpu_s_per_node_s"`
	HeapBytesPerNode  *float64 `json:"heap_bytes_per_node"`
	DetectMedianS     *float64 `json:"detect_median_s"`
	DetectLastS       *float64 `json:"detect_last_s"`
	FalsePositives    *int     `json:"false_positives"`
	PktsPerNodeSUDP   *float64 `json:"pkts_per_node_s_udp"`
	PktsPerNodeSTCP   *float64 `json:"pkts_per_node_s_tcp"`
	TCPConnsPerNodeS  *float64 `json:"tcp_conns_per_node_s"`
	DroppedPerNodeS   *float64 `json:"udp_dropped_per_node_s"`
	FalsePosMarks     *int     `json:"false_positive_marks"`
	SuspectMarks      *int     `json:"suspect_marks"` // null: phi accrual has no suspect state
	DetectFirstS      *float64 `json:"detect_first_s"`
	DetectSeen        *int     `json:"detect_seen"`
	FalsePosDetect    *int     `json:"false_positives_detect"`
	StartupS          float64  `json:"startup_s"`
	JoinErrors        int      `json:"join_errors"` // Spawn errors; a chitchat join cannot fail
	GoroutinesPerNode *float64 `json:"goroutines_per_node"`
	PushPullBytes     *float64 `json:"pushpull_bytes"`                    // null: every round is a push/pull
	PushPullEstTCP    *float64 `json:"bytes_per_node_s_tcp_pushpull_est"` // 0: no TCP
	WarmupS           float64  `json:"warmup_s"`
	SteadyS           float64  `json:"steady_s"`
	TimeoutS          float64  `json:"timeout_s"`
	GOMAXPROCS        int      `json:"gomaxprocs"`
	GoVersion         string   `json:"go_version"`
	Errors            []string `json:"errors"`
	// Ours only.
	IntervalS float64 `json:"interval_s"`
	Seed      uint64  `json:"seed"`
}

// udpLine is the UDP mode's JSON line: the memberlist harness's fields
// (result, which bench/memberlist emits too), then figures that harness
// has no counterpart for (udpOurs).
type udpLine struct {
	*result
	*udpOurs
}

// udpOurs holds the UDP mode's figures that bench/memberlist does not
// report.
type udpOurs struct {
	// MTU is every node's Config.MaxDatagramSize (0: the default budget);
	// MaxDatagramBytes the largest datagram any node tried to send.
	MTU              int  `json:"mtu"`
	MaxDatagramBytes int  `json:"max_datagram_bytes"`
	Push             bool `json:"push"` // false: -no-push (Config.DisablePush)
	// After the steady window, KVWrites keys written one at a time on
	// random nodes (about -kv-gap apart): the time from each write until
	// every node has the key (each node's Server.Subscribe callback),
	// median and 99th percentile (nearest rank).
	KVWrites     int      `json:"kv_writes"`
	KVSpreadP50S *float64 `json:"kv_spread_p50_s"`
	KVSpreadP99S *float64 `json:"kv_spread_p99_s"`
	// Then node N-2 leaves gracefully (Server.Leave): the time until every
	// other node's live-nodes watch dropped it (each then reports it in
	// Snapshot.Left). Null with N < 3.
	LeaveSeenS *float64 `json:"leave_seen_s"`
}

func writeJSON(w io.Writer, v any) error {
	out, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(out))
	return err
}

// recorder collects, for every observer node, when peers leave its live set:
// the "dead marks" of the memberlist harness. Each observer's live-nodes
// watch is consumed by a goroutine of its own; the watch is published at the
// end of the round in which the failure detector changed the live set.
type recorder struct {
	index map[string]int // node name → node index; read-only once built

	mu       sync.Mutex
	victim   int         // -1: none
	victimAt []time.Time // per observer: when the victim left its live set; zero while live
	marks    []mark      // every dead mark, of any node by any node (append-only)
}

type mark struct {
	subject int
	at      time.Time
}

func newRecorder(n int) *recorder {
	r := &recorder{index: make(map[string]int, n), victim: -1, victimAt: make([]time.Time, n)}
	for i := range n {
		r.index[nodeName(i)] = i
	}
	return r
}

func nodeName(i int) string { return fmt.Sprintf("node_%d", i) }

// watch consumes observer obs's live-nodes watch until the server stops.
func (r *recorder) watch(ctx context.Context, obs int, s *chitchat.Server) {
	prev := make([]bool, len(r.victimAt))
	cur := make([]bool, len(r.victimAt))
	for nodes := range s.WatchLiveNodes(ctx) {
		now := time.Now()
		clear(cur)
		for _, ns := range nodes {
			if j, ok := r.index[ns.ID().Name]; ok {
				cur[j] = true
			}
		}
		r.mu.Lock()
		for j := range cur {
			switch {
			case prev[j] && !cur[j]:
				r.marks = append(r.marks, mark{j, now})
				if j == r.victim {
					r.victimAt[obs] = now
				}
			case !prev[j] && cur[j] && j == r.victim:
				r.victimAt[obs] = time.Time{} // live again (a refuted false death)
			}
		}
		r.mu.Unlock()
		prev, cur = cur, prev
	}
}

// falseDeaths counts the dead marks of nodes other than except in [from, to):
// distinct subjects and (observer, subject) marks.
func (r *recorder) falseDeaths(from, to time.Time, except int) (subjects, marks int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	seen := map[int]bool{}
	for _, m := range r.marks {
		if m.subject != except && !m.at.Before(from) && m.at.Before(to) {
			marks++
			seen[m.subject] = true
		}
	}
	return len(seen), marks
}

// setVictim starts timing node j's departure from every live set.
func (r *recorder) setVictim(j int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.victim = j
	clear(r.victimAt)
}

// deadAtOf returns, for each of the observers, when it dropped the victim
// from its live set (zero: not yet).
func (r *recorder) deadAtOf(observers []int) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]time.Time, len(observers))
	for k, i := range observers {
		out[k] = r.victimAt[i]
	}
	return out
}

// waitFor polls cond every 5 ms until it holds or deadline passes.
func waitFor(deadline time.Time, cond func() bool) bool {
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func num(x float64, digits int) *float64 {
	p := math.Pow(10, float64(digits))
	v := math.Round(x*p) / p
	return &v
}

func intp(x int) *int { return &x }

// version returns the main module's version from the build info.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
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

func median(sorted []float64) float64 {
	m := len(sorted) / 2
	if len(sorted)%2 == 1 {
		return sorted[m]
	}
	return (sorted[m-1] + sorted[m]) / 2
}

// runUDP runs N servers on 127.0.0.1 and measures them in the phases of the
// memberlist harness: start, convergence, steady window, heap, detection.
func runUDP(o options, N int, logf func(string, ...any)) udpLine {
	seed := o.seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	ours := &udpOurs{MTU: o.mtu, Push: !o.noPush, KVWrites: o.kvWrites}
	res := &result{System: "chitchat-go", Version: version(), Profile: o.profile, N: N, Loss: o.loss,
		WarmupS: o.warmup.Seconds(), SteadyS: o.steady.Seconds(), TimeoutS: o.timeout.Seconds(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), Errors: []string{},
		IntervalS: o.interval.Seconds(), Seed: seed}
	line := udpLine{res, ours}

	// Counting(Lossy(Counting(UDP))): the inner counter sees what reaches the
	// socket (the memberlist harness's figures: dropped datagrams are not
	// counted), the outer one every attempt; the difference is the drops.
	biggest := &maxSize{Transport: transport.UDP{}}
	defer func() { ours.MaxDatagramBytes = biggest.Max() }()
	sent := transport.Counting(biggest)
	lossy, err := transport.Lossy(sent, o.loss, seed)
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
		return line
	}
	attempted := transport.Counting(lossy)

	rec := newRecorder(N)
	ctx, cancel := context.WithCancel(context.Background())
	var watchers sync.WaitGroup
	servers := make([]*chitchat.Server, 0, N)
	defer func() {
		// Stop every node that is still up (Shutdown, no Leave), bounded.
		done := make(chan struct{})
		go func() {
			var wg sync.WaitGroup
			for _, s := range servers {
				wg.Go(func() { _ = s.Shutdown() })
			}
			wg.Wait()
			cancel()
			watchers.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			res.Errors = append(res.Errors, "shutdown of all nodes timed out")
		}
	}()

	// (a) Start: node 0 has no seeds; every other node has node 0 as its seed.
	loopback := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	var seedAddr string
	t0 := time.Now()
	for i := range N {
		port := 0
		if o.port != 0 {
			port = o.port + i
		}
		cfg := chitchat.Config{
			ID:                           chitchat.NodeID{Name: nodeName(i), Addr: netip.AddrPortFrom(loopback, uint16(port))},
			ClusterID:                    "default-cluster",
			GossipInterval:               o.interval,
			MarkedForDeletionGracePeriod: 10000 * time.Second,
			RandSeed:                     seed + uint64(i) + 1,
			MaxDatagramSize:              o.mtu,
			DisablePush:                  o.noPush,
		}
		cfg.FailureDetector.InitialInterval = o.interval // as upstream's perf tests
		if i > 0 {
			cfg.Seeds = []string{seedAddr}
		}
		s, err := chitchat.Spawn(context.Background(), cfg, attempted)
		if err != nil {
			res.JoinErrors++
			res.Errors = append(res.Errors, fmt.Sprintf("start node %d: %v", i, err))
			return line
		}
		servers = append(servers, s)
		if i == 0 {
			seedAddr = s.Self().Addr.String()
		}
		watchers.Go(func() { rec.watch(ctx, i, s) })
		if time.Since(t0) > o.timeout {
			res.Errors = append(res.Errors, fmt.Sprintf("start-up timed out after %d of %d nodes", i+1, N))
			return line
		}
	}
	res.StartupS = *num(time.Since(t0).Seconds(), 4)

	// (b) Convergence: every node lists every node live.
	minLive, lastLog := 0, time.Now()
	converged := waitFor(t0.Add(o.timeout), func() bool {
		minLive = N
		for _, s := range servers {
			minLive = min(minLive, len(s.LiveNodeIDs()))
		}
		if time.Since(lastLog) > 5*time.Second {
			lastLog = time.Now()
			logf("t=%.0fs: fewest live nodes seen by a node %d/%d", time.Since(t0).Seconds(), minLive, N)
		}
		return minLive == N
	})
	if !converged {
		res.Errors = append(res.Errors, fmt.Sprintf("convergence timed out: fewest live nodes seen by a node %d/%d", minLive, N))
		return line
	}
	res.ConvergenceS = num(time.Since(t0).Seconds(), 4)
	logf("n=%d loss=%g: converged in %.3fs", N, o.loss, *res.ConvergenceS)

	// (c) Steady state: the harness only sleeps during the window.
	time.Sleep(o.warmup)
	s0, a0, c0, w0 := sent.Stats(), attempted.Stats(), cpuTime(), time.Now()
	time.Sleep(o.steady)
	s1, a1, c1, w1 := sent.Stats(), attempted.Stats(), cpuTime(), time.Now()
	per := float64(N) * w1.Sub(w0).Seconds()
	zero := 0.0
	res.BytesPerNodeSUDP = num(float64(s1.SentBytes-s0.SentBytes)/per, 1)
	res.BytesPerNodeSTCP = &zero
	res.PktsPerNodeSUDP = num(float64(s1.SentMessages-s0.SentMessages)/per, 3)
	res.PktsPerNodeSTCP = &zero
	res.PktsPerNodeS = res.PktsPerNodeSUDP
	res.TCPConnsPerNodeS = &zero
	res.PushPullEstTCP = &zero
	dropped := (a1.SentMessages - a0.SentMessages) - (s1.SentMessages - s0.SentMessages)
	res.DroppedPerNodeS = num(float64(dropped)/per, 3)
	res.CPUSPerNodeS = num((c1-c0).Seconds()/per, 6)
	fp, fpMarks := rec.falseDeaths(w0, w1, -1)
	res.FalsePositives, res.FalsePosMarks = intp(fp), intp(fpMarks)
	// The harness's own goroutines (one live-nodes watcher per node) are
	// left out.
	res.GoroutinesPerNode = num(float64(runtime.NumGoroutine()-N)/float64(N), 2)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapBytesPerNode = num(float64(ms.HeapInuse)/float64(N), 0)
	if o.memprofile != "" {
		if err := writeHeapProfile(o.memprofile); err != nil {
			res.Errors = append(res.Errors, err.Error())
		}
	}
	logf("steady: %.0f B/node/s udp, %.2f pkts/node/s, %.4f cpu-s/node/s, %d false positives",
		*res.BytesPerNodeSUDP, *res.PktsPerNodeS, *res.CPUSPerNodeS, fp)

	// (c2) Key spread: writes on random nodes, one at a time.
	r := rand.New(rand.NewPCG(seed, 11))
	if o.kvWrites > 0 {
		var errs []string
		ours.KVSpreadP50S, ours.KVSpreadP99S, errs = kvSpread(servers, o.kvWrites, o.kvGap, o.timeout, r)
		res.Errors = append(res.Errors, errs...)
		if ours.KVSpreadP99S != nil {
			logf("key spread over %d writes: p50 %.4fs, p99 %.4fs", o.kvWrites, *ours.KVSpreadP50S, *ours.KVSpreadP99S)
		}
	}

	// (c3) Graceful leave of node N-2; it stops once every node saw it.
	observers := make([]int, 0, N-1) // the nodes that judge the killed node below
	for i := range N - 1 {
		observers = append(observers, i)
	}
	if N >= 3 {
		byIndex := slices.Clone(servers)
		var errs []string
		ours.LeaveSeenS, errs = leaveSeen(byIndex, N-2, rec, o.timeout)
		res.Errors = append(res.Errors, errs...)
		if ours.LeaveSeenS != nil {
			logf("leave seen by every node in %.4fs", *ours.LeaveSeenS)
		}
		leaver := servers[N-2]
		_ = leaver.Shutdown()
		servers = slices.Delete(servers, N-2, N-1)
		observers = slices.Delete(observers, N-2, N-1)
	}

	// (d) Failure detection: the last node stops answering (Shutdown, no Leave).
	victim := servers[len(servers)-1]
	servers = servers[:len(servers)-1]
	rec.setVictim(N - 1)
	tk := time.Now()
	_ = victim.Shutdown()
	all := waitFor(tk.Add(o.timeout), func() bool {
		for _, at := range rec.deadAtOf(observers) {
			if at.IsZero() {
				return false
			}
		}
		return true
	})
	end := time.Now()
	lat := make([]float64, 0, len(observers))
	for _, at := range rec.deadAtOf(observers) {
		if at.IsZero() {
			lat = append(lat, math.Inf(1)) // never saw it die
		} else {
			lat = append(lat, math.Max(0, at.Sub(tk).Seconds())) // already dead at the kill counts as 0
		}
	}
	slices.Sort(lat)
	seen, _ := slices.BinarySearch(lat, math.Inf(1))
	res.DetectSeen = intp(seen)
	if seen > 0 {
		res.DetectFirstS = num(lat[0], 4)
	}
	if med := median(lat); !math.IsInf(med, 1) {
		res.DetectMedianS = num(med, 4)
	}
	if all {
		res.DetectLastS = num(lat[len(lat)-1], 4)
	} else {
		res.Errors = append(res.Errors, fmt.Sprintf("detection timed out: %d of %d nodes saw the victim dead", seen, len(observers)))
	}
	fpd, _ := rec.falseDeaths(tk, end, N-1)
	res.FalsePosDetect = intp(fpd)
	if res.DetectLastS != nil {
		logf("detect: first %.3fs, median %.3fs, last %.3fs", *res.DetectFirstS, *res.DetectMedianS, *res.DetectLastS)
	}
	return line
}
