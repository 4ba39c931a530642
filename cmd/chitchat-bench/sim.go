package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/sim"
)

// simResult is one line of -sim output. Rounds are virtual time divided by
// the gossip interval. Convergence is counted from the start of the
// simulation (nodes start at random phases within the first interval, like
// processes started one after the other) and checked every tenth of a
// round; the key's spread, deaths and detection are timed exactly, at the
// step where they happen.
type simResult struct {
	System    string  `json:"system"`
	Version   string  `json:"version"`
	Mode      string  `json:"mode"` // "sim"
	N         int     `json:"n"`
	Loss      float64 `json:"loss"`
	IntervalS float64 `json:"interval_s"`
	Seed      uint64  `json:"seed"`
	// Lockstep: synchronous rounds (every node ticks at the same instant,
	// at least 1 ms per datagram). Otherwise nodes tick at random phases and
	// datagrams arrive at once, so news can travel several hops in a round.
	Lockstep bool `json:"lockstep"`
	// MTU: every node's Config.MaxDatagramSize, and the simulated network
	// drops larger datagrams (0: the default budget, no drop).
	MTU int `json:"mtu"`
	// Push: news pushed as it happens (false: -no-push, Config.DisablePush).
	Push bool `json:"push"`
	// LatencyS is the one-way delay of every datagram (virtual seconds).
	LatencyS float64 `json:"latency_s"`

	// Every node holds a state for every node.
	RoundsToKnowAll *float64 `json:"rounds_to_know_all"`
	// Every node's live-nodes watch lists every node.
	RoundsToAllLive *float64 `json:"rounds_to_all_live"`
	// A key set on one random node after convergence is on every node.
	RoundsKeyEverywhere *float64 `json:"rounds_key_everywhere"`
	// The same in virtual seconds, exact: from the write to the last node
	// applying it (each node's Engine.Subscribe callback).
	KVSpreadS *float64 `json:"kv_spread_s"`
	// log3(N) + ln(ln(N)): the push-pull rumor-spreading bound (Karp et al.
	// 2000) for one rumor and one exchange per node per round.
	PushPullBound float64 `json:"pushpull_bound"`

	// Steady state (no key changes): sent bytes and datagrams per node per
	// round, and per node per second of virtual time.
	BytesPerNodePerRound *float64 `json:"bytes_per_node_per_round"`
	MsgsPerNodePerRound  *float64 `json:"msgs_per_node_per_round"`
	BytesPerNodeS        *float64 `json:"bytes_per_node_s"`
	// Background writes during the steady window: every node rewrites one
	// key at this rate (writes per node per second, -writes-per-node-s),
	// and how many writes that made.
	WritesPerNodeS float64 `json:"writes_per_node_s"`
	Writes         int     `json:"writes"`
	// The largest datagram any node tried to send during the whole run
	// (those dropped for exceeding -mtu included, and counted apart).
	MaxDatagramBytes int    `json:"max_datagram_bytes"`
	OverMTUDropped   uint64 `json:"over_mtu_dropped"`
	// HeapInuse after GC with the cluster in memory, minus before, / N:
	// engines and the simulator's event queue, no sockets or buffers.
	HeapBytesPerNode *float64 `json:"heap_bytes_per_node"`
	// The same / N: per node each node observes (N × N states in all),
	// measured after WarmRounds rounds from the start, so that the failure
	// detector windows are full.
	HeapBytesPerObservedNode *float64 `json:"heap_bytes_per_observed_node"`
	// The same measured in live objects (HeapAlloc): what the spans of
	// HeapInuse hold; the difference is the allocator's fragmentation.
	HeapLiveBytesPerObservedNode *float64 `json:"heap_live_bytes_per_observed_node"`
	WarmRounds                   int      `json:"warm_rounds"`

	// One random node killed at a random phase after the heap figure:
	// rounds until each survivor's live-nodes watch drops it, median and
	// last survivor.
	DetectRoundsMedian *float64 `json:"detect_rounds_median"`
	DetectRoundsLast   *float64 `json:"detect_rounds_last"`
	// Live→dead transitions, over the whole run and at every observer, of
	// nodes that were not killed (each node's live-nodes watch, followed
	// at every step), and how many distinct nodes they hit.
	FalseDeaths        int `json:"false_deaths"`
	FalseDeathSubjects int `json:"false_death_subjects"`
	// The part of FalseDeaths after every node first saw every node live
	// (null if that never happened).
	FalseDeathsAfterAllLive *int `json:"false_deaths_after_all_live"`

	// Encoded size of node 0's full digest at the end (N entries), and of
	// the Syn that carries it.
	DigestBytes int `json:"digest_bytes"`
	SynBytes    int `json:"syn_bytes"`
	// The most nodes named "node_i" (generation 0, IPv4) whose digest fits
	// one 65,507-byte datagram in both a Syn and a SynAck: with the
	// heartbeats of this run, and with 5-byte heartbeats (above 65,535,
	// reached after about half an hour of gossip).
	DigestCeilingNodes        int `json:"digest_ceiling_nodes"`
	DigestCeilingNodesLongRun int `json:"digest_ceiling_nodes_long_run"`

	// Cost of the simulation itself (all nodes on this process).
	SimRounds     float64  `json:"sim_rounds"`
	CPUSPerRound  *float64 `json:"cpu_s_per_round"`
	CPUSPerNodeS  *float64 `json:"cpu_s_per_node_s"` // CPU / (N × virtual seconds)
	WallS         float64  `json:"wall_s"`
	GoVersion     string   `json:"go_version"`
	GOMAXPROCS    int      `json:"gomaxprocs"`
	Errors        []string `json:"errors"`
	CodecInTheSim bool     `json:"codec"` // false: sizes from chitchat.EncodedSize (exact), no encoding
}

const simCluster = "sim" // internal/sim's cluster id

// pushPullBound returns log3(n) + ln(ln(n)).
func pushPullBound(n int) float64 {
	x := float64(n)
	return math.Log(x)/math.Log(3) + math.Log(math.Log(x))
}

// runSim simulates n nodes and measures, in this order: convergence, the
// spread of one key, the steady window (with background writes if asked),
// memory once WarmRounds have passed, and the detection of a killed node;
// false deaths over all of it.
func runSim(o options, n int, logf func(string, ...any)) *simResult {
	seed := o.seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	res := &simResult{System: "chitchat-go", Version: version(), Mode: "sim", N: n, Loss: o.loss,
		IntervalS: o.interval.Seconds(), Seed: seed, Lockstep: o.lockstep, MTU: o.mtu, Push: !o.noPush,
		LatencyS: o.latency.Seconds(), WritesPerNodeS: o.writesPerNodeS, WarmRounds: o.warmRounds,
		PushPullBound: *num(pushPullBound(n), 3), GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		Errors: []string{}}
	res.DigestCeilingNodes = digestCeiling(simCluster, nodeName, 1000)
	res.DigestCeilingNodesLongRun = digestCeiling(simCluster, nodeName, 1<<20)

	cfg := sim.Config{N: n, Seed: seed, GossipInterval: o.interval, Loss: o.loss, Latency: o.latency,
		Node: func(_ int, c *chitchat.Config) {
			c.MaxDatagramSize = o.mtu
			c.DisablePush = o.noPush
		}}
	if o.lockstep {
		cfg.StartSpread, cfg.Latency = time.Nanosecond, max(o.latency, time.Millisecond)
	}
	res.LatencyS = cfg.Latency.Seconds()

	// The tracker's bitsets (N²/8 bytes) are allocated before the heap
	// baseline; the engines after it.
	runtime.GC()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	wall0, cpu0 := time.Now(), cpuTime()
	s, err := sim.New(cfg)
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
		return res
	}
	s.MTU = o.mtu
	tr := newLiveTracker(s)
	round := o.interval
	check := round / 10
	rounds := func(d time.Duration) *float64 { return num(d.Seconds()/round.Seconds(), 1) }
	falseAtAllLive := 0
	defer func() {
		res.SimRounds = *num(s.Elapsed().Seconds()/round.Seconds(), 1)
		cpu := (cpuTime() - cpu0).Seconds()
		res.CPUSPerRound = num(cpu/res.SimRounds, 3)
		res.CPUSPerNodeS = num(cpu/(float64(n)*s.Elapsed().Seconds()), 6)
		res.WallS = *num(time.Since(wall0).Seconds(), 1)
		st := s.Stats()
		res.MaxDatagramBytes, res.OverMTUDropped = st.MaxDatagramBytes, st.OverMTU
		res.FalseDeaths, res.FalseDeathSubjects = tr.FalseDeaths, tr.FalseSubjects()
		if res.RoundsToAllLive != nil {
			res.FalseDeathsAfterAllLive = intp(tr.FalseDeaths - falseAtAllLive)
		}
	}()
	phase := "starting"
	meanKnown := 0.0 // while "know all" runs
	at := func() {
		if o.simAt != nil {
			o.simAt.Store(&simPlace{n: n, phase: phase, round: s.Elapsed().Seconds() / round.Seconds(), known: meanKnown})
		}
	}
	enter := func(p string) { phase = p; at() }
	progress := func(what string, left int) {
		phase = what
		at()
		logf("n=%d: %s: %d nodes to go at round %.1f", n, what, left, s.Elapsed().Seconds()/round.Seconds())
	}

	// untilAll runs until pred holds for every node, checking only the
	// nodes for which it did not hold yet (the predicates are monotonic
	// here: nothing is killed or collected yet).
	// known and checked: nodes known by the nodes checked in the last pass
	// of "know all", for its progress lines.
	var known, checked int
	untilAll := func(what string, pred func(i int) bool) (time.Duration, bool) {
		pending := make([]int, n)
		for i := range pending {
			pending[i] = i
		}
		last := time.Now()
		return s.RunUntil(o.timeout, check, func() bool {
			known, checked = 0, 0
			rest := pending[:0]
			for _, i := range pending {
				if !pred(i) {
					rest = append(rest, i)
				}
			}
			pending = rest
			if time.Since(last) > 10*time.Second {
				last = time.Now()
				if what == "know all" && checked > 0 {
					meanKnown = float64(known) / float64(checked)
				}
				progress(what, len(pending))
				if meanKnown > 0 {
					logf("n=%d: those %d nodes know %.0f nodes on average", n, checked, meanKnown)
				}
			}
			return len(pending) == 0
		})
	}

	enter("know all")
	d, ok := untilAll("know all", func(i int) bool {
		k := len(s.Engine(i).NodeIDs())
		known += k
		checked++
		return k >= n
	})
	if !ok {
		res.Errors = append(res.Errors, fmt.Sprintf("not every node knew every node within %v", o.timeout))
		return res
	}
	res.RoundsToKnowAll = rounds(d)
	meanKnown = 0
	enter("all live")
	_, ok = untilAll("all live", func(i int) bool { return tr.allLive(i, n) })
	if !ok {
		res.Errors = append(res.Errors, fmt.Sprintf("not every node saw every node live within %v", o.timeout))
		return res
	}
	res.RoundsToAllLive = rounds(s.Elapsed())
	falseAtAllLive = tr.FalseDeaths
	logf("n=%d: know all after %.1f rounds, all live after %.1f rounds, %d false deaths so far", n, *res.RoundsToKnowAll, *res.RoundsToAllLive, tr.FalseDeaths)

	// One key on one random node, at a random phase of the round.
	r := rand.New(rand.NewPCG(seed, 7))
	s.RunFor(time.Duration(r.Int64N(int64(round))))
	owner := r.IntN(n)
	enter("key spread")
	spread, ok := spreadKey(s, owner, o.timeout, check)
	if !ok {
		res.Errors = append(res.Errors, fmt.Sprintf("the key did not reach every node within %v", o.timeout))
		return res
	}
	res.KVSpreadS = num(spread.Seconds(), 4)
	res.RoundsKeyEverywhere = rounds(spread)
	logf("n=%d: key everywhere after %.1f rounds, %v (push-pull bound %.1f rounds)", n, *res.RoundsKeyEverywhere, spread, res.PushPullBound)

	// Steady window: heartbeats, and the background writes if any.
	enter("steady window")
	s.RunFor(2 * round)
	st0 := s.Stats()
	window := time.Duration(o.simRounds) * round
	res.Writes, err = runWithLoad(s, window, loadSchedule(n, o.writesPerNodeS, window, r))
	if err != nil {
		res.Errors = append(res.Errors, fmt.Sprintf("background write: %v", err))
		return res
	}
	st1 := s.Stats()
	per := float64(n) * float64(o.simRounds)
	res.BytesPerNodePerRound = num(float64(st1.SentBytes-st0.SentBytes)/per, 1)
	res.MsgsPerNodePerRound = num(float64(st1.SentMessages-st0.SentMessages)/per, 3)
	res.BytesPerNodeS = num(*res.BytesPerNodePerRound/round.Seconds(), 1)
	logf("n=%d: %.0f B/node/round, %.2f msgs/node/round, %d writes", n, *res.BytesPerNodePerRound, *res.MsgsPerNodePerRound, res.Writes)

	syn := s.Engine(0).CreateSyn(s.Now())
	res.SynBytes = chitchat.EncodedSize(syn)
	res.DigestBytes = digestSize(simCluster, syn.Digest)

	// Memory, once the detector windows are full.
	if warm := time.Duration(o.warmRounds) * round; s.Elapsed() < warm {
		logf("n=%d: warming up to round %d", n, o.warmRounds)
		enter("warm-up")
		for s.Elapsed() < warm {
			s.RunFor(min(warm-s.Elapsed(), 100*round))
			at()
			logf("n=%d: round %.0f, %d false deaths", n, s.Elapsed().Seconds()/round.Seconds(), tr.FalseDeaths)
		}
	}
	runtime.GC()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	heap := float64(ms1.HeapInuse) - float64(ms0.HeapInuse)
	res.HeapBytesPerNode = num(heap/float64(n), 0)
	res.HeapBytesPerObservedNode = num(heap/(float64(n)*float64(n)), 1)
	res.HeapLiveBytesPerObservedNode = num((float64(ms1.HeapAlloc)-float64(ms0.HeapAlloc))/(float64(n)*float64(n)), 1)
	if o.memprofile != "" {
		if err := writeHeapProfile(fmt.Sprintf("%s.%d", o.memprofile, n)); err != nil {
			res.Errors = append(res.Errors, err.Error())
		}
	}
	logf("n=%d: %.0f B heap/node, %.0f B heap/observed node (%.0f B of live objects) at round %.0f, digest %d B", n,
		*res.HeapBytesPerNode, *res.HeapBytesPerObservedNode, *res.HeapLiveBytesPerObservedNode, s.Elapsed().Seconds()/round.Seconds(), res.DigestBytes)

	// Detection: one random node killed at a random phase of the round.
	enter("detection")
	s.RunFor(time.Duration(r.Int64N(int64(round))))
	tr.kill(r.IntN(n))
	last := time.Now()
	_, ok = s.RunUntil(o.timeout, time.Millisecond, func() bool {
		if time.Since(last) > 10*time.Second {
			last = time.Now()
			progress("see the killed node dead", tr.pending)
		}
		return tr.detected()
	})
	lat := tr.detectTimes()
	if !ok {
		res.Errors = append(res.Errors, fmt.Sprintf("detection timed out: %d of %d nodes saw the killed node dead within %v", len(lat), n-1, o.timeout))
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		res.DetectRoundsMedian = rounds(time.Duration(median(durations(lat))))
		if ok {
			res.DetectRoundsLast = rounds(lat[len(lat)-1])
		}
		logf("n=%d: killed node seen dead by every survivor: median %.1f rounds, last %v rounds; %d false deaths",
			n, *res.DetectRoundsMedian, fmtRounds(res.DetectRoundsLast), tr.FalseDeaths)
	}
	runtime.KeepAlive(s)
	return res
}

// durations converts sorted durations to float64 nanoseconds for median.
func durations(d []time.Duration) []float64 {
	out := make([]float64, len(d))
	for i, x := range d {
		out[i] = float64(x)
	}
	return out
}

func fmtRounds(p *float64) string {
	if p == nil {
		return "null"
	}
	return strconv.FormatFloat(*p, 'f', 1, 64)
}

// spreadKey writes a key on node owner (Sim.Set: the write and its push)
// and returns the virtual time until every node has applied it, exact:
// each node's Engine.Subscribe callback runs inside the step that applies
// the write, and records the time.
func spreadKey(s *sim.Sim, owner int, limit, check time.Duration) (time.Duration, bool) {
	const key, value = "bench.key", "v"
	n := s.N()
	seen := make([]bool, n)
	left := n - 1
	var lastAt time.Time
	seen[owner] = true
	ownerID := s.Engine(owner).Self()
	for i := range n {
		if i == owner {
			continue
		}
		cancel := s.Engine(i).Subscribe(key, func(kc chitchat.KeyChange) {
			if !seen[i] && kc.Value == value && kc.Node == ownerID {
				seen[i] = true
				left--
				lastAt = s.Now()
			}
		})
		defer cancel()
	}
	start := s.Now()
	if err := s.Set(owner, key, value); err != nil {
		return 0, false
	}
	_, ok := s.RunUntil(limit, check, func() bool { return left == 0 })
	if !ok {
		return 0, false
	}
	return lastAt.Sub(start), true
}

// digestSize returns the encoded size of d alone, from the library's exact
// message sizes: a Syn with d minus a Syn with an empty digest (whose digest
// is a 1-byte empty array).
func digestSize(cluster string, d chitchat.Digest) int {
	return chitchat.EncodedSize(&chitchat.Syn{ClusterID: cluster, Digest: d}) -
		chitchat.EncodedSize(&chitchat.Syn{ClusterID: cluster}) + 1
}

// ceilingDigest returns the digest of nodes name(0)..name(n-1) on 127.0.0.1
// (generation 0, no keys) with the given heartbeat.
func ceilingDigest(n int, name func(int) string, heartbeat uint64) chitchat.Digest {
	d := make(chitchat.Digest, n)
	for i := range d {
		d[i] = chitchat.DigestEntry{
			ID:         chitchat.NodeID{Name: name(i), Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(10000+i%50000))},
			NodeDigest: chitchat.NodeDigest{Heartbeat: heartbeat},
		}
	}
	return d
}

// digestCeiling returns the most nodes whose full digest still fits one
// datagram both in a Syn (envelope, cluster id, digest) and in a SynAck
// (envelope, digest, an empty delta). Beyond it a node that knows every node
// can neither start a handshake (the Server refuses to send an oversized
// Syn) nor answer one (the Engine skips the SynAck and counts
// RepliesTooLarge): the digest is never truncated.
func digestCeiling(cluster string, name func(int) string, heartbeat uint64) int {
	fits := func(n int) bool {
		d := ceilingDigest(n, name, heartbeat)
		return chitchat.EncodedSize(&chitchat.Syn{ClusterID: cluster, Digest: d}) <= chitchat.MaxDatagramSize &&
			chitchat.EncodedSize(&chitchat.SynAck{Digest: d}) <= chitchat.MaxDatagramSize
	}
	return sort.Search(10000, func(n int) bool { return !fits(n) }) - 1
}
