package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sort"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/sim"
)

// simResult is one line of -sim output. Rounds are virtual time divided by
// the gossip interval, counted from the start of the simulation (nodes start
// at random phases within the first interval, like processes started one
// after the other) and checked every tenth of a round.
type simResult struct {
	System    string  `json:"system"`
	Version   string  `json:"version"`
	Mode      string  `json:"mode"` // "sim"
	N         int     `json:"n"`
	Loss      float64 `json:"loss"`
	IntervalS float64 `json:"interval_s"`
	Seed      uint64  `json:"seed"`
	// Lockstep: synchronous rounds (every node ticks at the same instant,
	// 1 ms per datagram). Otherwise nodes tick at random phases and
	// datagrams arrive at once, so news can travel several hops in a round.
	Lockstep bool `json:"lockstep"`

	// Every node holds a state for every node.
	RoundsToKnowAll *float64 `json:"rounds_to_know_all"`
	// Every node's failure detector deems every node live.
	RoundsToAllLive *float64 `json:"rounds_to_all_live"`
	// A key set on one random node after convergence is on every node.
	RoundsKeyEverywhere *float64 `json:"rounds_key_everywhere"`
	// log3(N) + ln(ln(N)): the push-pull rumor-spreading bound (Karp et al.
	// 2000) for one rumor and one exchange per node per round.
	PushPullBound float64 `json:"pushpull_bound"`

	// Steady state (no key changes): sent bytes and datagrams per node per
	// round, and per node per second of virtual time.
	BytesPerNodePerRound *float64 `json:"bytes_per_node_per_round"`
	MsgsPerNodePerRound  *float64 `json:"msgs_per_node_per_round"`
	BytesPerNodeS        *float64 `json:"bytes_per_node_s"`
	// HeapInuse after GC with the cluster in memory, minus before, / N:
	// engines and the simulator's event queue, no sockets or buffers.
	HeapBytesPerNode *float64 `json:"heap_bytes_per_node"`

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

// runSim simulates n nodes and measures convergence, key spread, steady
// traffic and memory.
func runSim(o options, n int, logf func(string, ...any)) *simResult {
	seed := o.seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	res := &simResult{System: "chitchat-go", Version: version(), Mode: "sim", N: n, Loss: o.loss,
		IntervalS: o.interval.Seconds(), Seed: seed, Lockstep: o.lockstep, PushPullBound: *num(pushPullBound(n), 3),
		GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0), Errors: []string{}}
	res.DigestCeilingNodes = digestCeiling(simCluster, nodeName, 1000)
	res.DigestCeilingNodesLongRun = digestCeiling(simCluster, nodeName, 1<<20)

	runtime.GC()
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	wall0, cpu0 := time.Now(), cpuTime()

	cfg := sim.Config{N: n, Seed: seed, GossipInterval: o.interval, Loss: o.loss}
	if o.lockstep {
		cfg.StartSpread, cfg.Latency = time.Nanosecond, time.Millisecond
	}
	s, err := sim.New(cfg)
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
		return res
	}
	round := o.interval
	check := round / 10
	rounds := func(d time.Duration) *float64 { return num(d.Seconds()/round.Seconds(), 1) }
	defer func() {
		res.SimRounds = *num(s.Elapsed().Seconds()/round.Seconds(), 1)
		cpu := (cpuTime() - cpu0).Seconds()
		res.CPUSPerRound = num(cpu/res.SimRounds, 3)
		res.CPUSPerNodeS = num(cpu/(float64(n)*s.Elapsed().Seconds()), 6)
		res.WallS = *num(time.Since(wall0).Seconds(), 1)
	}()

	// untilAll runs until pred holds for every node, checking only the
	// nodes for which it did not hold yet (the predicates are monotonic
	// here: nothing is lost, killed or collected).
	untilAll := func(what string, pred func(i int) bool) (time.Duration, bool) {
		pending := make([]int, n)
		for i := range pending {
			pending[i] = i
		}
		last := time.Now()
		return s.RunUntil(o.timeout, check, func() bool {
			rest := pending[:0]
			for _, i := range pending {
				if !pred(i) {
					rest = append(rest, i)
				}
			}
			pending = rest
			if time.Since(last) > 10*time.Second {
				last = time.Now()
				logf("n=%d: %s: %d nodes to go at round %.1f", n, what, len(pending), s.Elapsed().Seconds()/round.Seconds())
			}
			return len(pending) == 0
		})
	}

	d, ok := untilAll("know all", func(i int) bool { return len(s.Engine(i).NodeIDs()) >= n })
	if !ok {
		res.Errors = append(res.Errors, fmt.Sprintf("not every node knew every node within %v", o.timeout))
		return res
	}
	res.RoundsToKnowAll = rounds(d)
	_, ok = untilAll("all live", func(i int) bool { return len(s.Engine(i).LiveNodes()) == n })
	if !ok {
		res.Errors = append(res.Errors, fmt.Sprintf("not every node saw every node live within %v", o.timeout))
		return res
	}
	res.RoundsToAllLive = rounds(s.Elapsed())
	logf("n=%d: know all after %.1f rounds, all live after %.1f rounds", n, *res.RoundsToKnowAll, *res.RoundsToAllLive)

	// One key on one random node, at a random phase of the round.
	r := rand.New(rand.NewPCG(seed, 7))
	s.RunFor(time.Duration(r.Int64N(int64(round))))
	owner := r.IntN(n)
	if err := s.Set(owner, "bench.key", "v"); err != nil {
		res.Errors = append(res.Errors, err.Error())
		return res
	}
	d, ok = untilAll("key everywhere", func(i int) bool { return s.HasValue(i, owner, "bench.key", "v") })
	if !ok {
		res.Errors = append(res.Errors, fmt.Sprintf("the key did not reach every node within %v", o.timeout))
		return res
	}
	res.RoundsKeyEverywhere = rounds(d)
	logf("n=%d: key everywhere after %.1f rounds (push-pull bound %.1f)", n, *res.RoundsKeyEverywhere, res.PushPullBound)

	// Steady window: nothing changes but heartbeats.
	s.RunFor(2 * round)
	st0 := s.Stats()
	s.RunFor(time.Duration(o.simRounds) * round)
	st1 := s.Stats()
	per := float64(n) * float64(o.simRounds)
	res.BytesPerNodePerRound = num(float64(st1.SentBytes-st0.SentBytes)/per, 1)
	res.MsgsPerNodePerRound = num(float64(st1.SentMessages-st0.SentMessages)/per, 3)
	res.BytesPerNodeS = num(*res.BytesPerNodePerRound/round.Seconds(), 1)

	syn := s.Engine(0).CreateSyn(s.Now())
	res.SynBytes = chitchat.EncodedSize(syn)
	res.DigestBytes = digestSize(simCluster, syn.Digest)

	runtime.GC()
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	res.HeapBytesPerNode = num((float64(ms1.HeapInuse)-float64(ms0.HeapInuse))/float64(n), 0)
	if o.memprofile != "" {
		if err := writeHeapProfile(fmt.Sprintf("%s.%d", o.memprofile, n)); err != nil {
			res.Errors = append(res.Errors, err.Error())
		}
	}
	runtime.KeepAlive(s)
	logf("n=%d: %.0f B/node/round, %.2f msgs/node/round, %.0f B heap/node, digest %d B",
		n, *res.BytesPerNodePerRound, *res.MsgsPerNodePerRound, *res.HeapBytesPerNode, res.DigestBytes)
	return res
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
