package chitchat

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// Honest clusters never refute (docs/design/scale.md §6: "refutations cost
// nothing in a healthy cluster"). A refutation, a reincarnation or a
// fingerprint mismatch (EngineStats.ForgedContent) in a cluster without a
// forger is a false positive: each one rewrites every live key of the node
// and resets every peer's view of it. The simulation below has everything
// an honest cluster does that touches versions, GC versions and
// fingerprints: writes, TTL'd writes, deletes, deletes after TTL, restarts
// (a new generation), loss, reordering, partitions, pushes, streams, and a
// different MarkedForDeletionGracePeriod per node.

// honestPacket is one message in flight.
type honestPacket struct {
	from, to netip.AddrPort
	m        Message
	stream   bool
}

type honestSim struct {
	t       fataler
	rng     *rand.Rand
	now     time.Time
	engines []*Engine
	addrs   []netip.AddrPort
	graces  []time.Duration
	// gone sums the counters of the engines that restarts replaced.
	gone     EngineStats
	lossPct  int
	cut      map[netip.AddrPort]bool // one side of a partition, when not nil
	queue    []honestPacket
	restarts int
}

func honestAddr(i int) netip.AddrPort { return netip.AddrPortFrom(localhost, uint16(11000+i)) }

func newHonestSim(t fataler, n int, seed uint64, graces []time.Duration) *honestSim {
	s := &honestSim{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x9e37)), now: t0, graces: graces}
	for i := range n {
		s.addrs = append(s.addrs, honestAddr(i))
	}
	for i := range n {
		s.engines = append(s.engines, s.start(i, 1))
	}
	return s
}

func (s *honestSim) config(i int, gen uint64) Config {
	cfg := Config{
		ID:                           NodeID{Name: fmt.Sprintf("h%d", i), Generation: gen, Addr: s.addrs[i]},
		ClusterID:                    "honest",
		MarkedForDeletionGracePeriod: s.graces[i],
		MaxDatagramSize:              1400,
		StreamSyncInterval:           7 * time.Second,
		Limits:                       Limits{MaxKeysPerNode: 64},
	}
	for _, a := range s.addrs {
		cfg.Seeds = append(cfg.Seeds, a.String())
	}
	return cfg
}

func (s *honestSim) start(i int, gen uint64) *Engine {
	e, err := NewEngine(s.config(i, gen), rand.New(rand.NewPCG(uint64(i), gen)), nil)
	if err != nil {
		s.t.Fatalf("NewEngine: %v", err)
	}
	return e
}

func (s *honestSim) index(a netip.AddrPort) int {
	for i, x := range s.addrs {
		if x == a {
			return i
		}
	}
	return -1
}

func (s *honestSim) send(from, to netip.AddrPort, m Message, stream bool) {
	if m == nil {
		return
	}
	if !stream && s.rng.IntN(100) < s.lossPct {
		return
	}
	if s.cut != nil && s.cut[from] != s.cut[to] {
		return
	}
	s.queue = append(s.queue, honestPacket{from, to, m, stream})
}

// drain delivers every packet in flight, in a random order, and what they
// cause.
func (s *honestSim) drain() {
	for len(s.queue) > 0 {
		k := s.rng.IntN(len(s.queue))
		p := s.queue[k]
		s.queue[k] = s.queue[len(s.queue)-1]
		s.queue = s.queue[:len(s.queue)-1]
		j := s.index(p.to)
		if j < 0 {
			continue
		}
		b := EncodeMessage(p.m)
		m, err := DecodeMessage(b)
		if err != nil {
			s.t.Fatalf("%v → %v: %v does not decode: %v", p.from, p.to, p.m.Type(), err)
		}
		from := p.from
		if p.stream {
			if m.Type() == TypeSyn || m.Type() == TypeAck {
				// An inbound stream comes from an ephemeral port.
				from = netip.AddrPortFrom(from.Addr(), from.Port()+1000)
			}
		}
		out := s.engines[j].Step(s.now, Inbound{From: from, Size: len(b), Stream: p.stream}, m)
		s.send(p.to, p.from, out.Reply, p.stream)
		for _, env := range out.Pushes {
			s.send(p.to, env.To, env.Msg, false)
		}
		if out.Welcome != nil {
			s.send(p.to, p.from, out.Welcome, true)
		}
		for _, to := range out.Streams {
			s.send(p.to, to, s.engines[j].CreateStreamSyn(s.now), true)
		}
	}
}

// write makes node i do one random write.
func (s *honestSim) write(i int) {
	e := s.engines[i]
	key := fmt.Sprintf("k%d", s.rng.IntN(12))
	value := strings.Repeat(fmt.Sprint(s.rng.IntN(10)), 1+s.rng.IntN(60))
	switch s.rng.IntN(5) {
	case 0, 1:
		_ = e.Set(key, value) // ErrTooManyKeys is fine
	case 2:
		_ = e.SetWithTTL(s.now, key, value)
	case 3:
		e.Delete(s.now, key)
	case 4:
		e.DeleteAfterTTL(s.now, key)
	}
}

func (s *honestSim) restart(i int) {
	old := s.engines[i]
	st := old.Stats()
	s.gone.Refutations += st.Refutations
	s.gone.Reincarnations += st.Reincarnations
	s.gone.ForgedContent += st.ForgedContent
	s.engines[i] = s.start(i, old.Self().Generation+1)
	s.restarts++
}

// round advances the clock by step and runs one round: writes, ticks, and
// every message they cause.
func (s *honestSim) round(step time.Duration, writes bool) {
	s.now = s.now.Add(step)
	for i := range s.engines {
		if writes && s.rng.IntN(3) == 0 {
			s.write(i)
		}
	}
	for i, e := range s.engines {
		r := e.Tick(s.now)
		for _, to := range r.Targets {
			s.send(s.addrs[i], to, r.Syn, false)
		}
		for _, env := range r.Pushes {
			s.send(s.addrs[i], env.To, env.Msg, false)
		}
		for _, to := range r.Streams {
			s.send(s.addrs[i], to, e.CreateStreamSyn(s.now), true)
		}
		s.drain()
	}
}

func (s *honestSim) falsePositives() (refutations, reincarnations, forged uint64) {
	refutations, reincarnations, forged = s.gone.Refutations, s.gone.Reincarnations, s.gone.ForgedContent
	for _, e := range s.engines {
		st := e.Stats()
		refutations += st.Refutations
		reincarnations += st.Reincarnations
		forged += st.ForgedContent
	}
	return
}

// converged reports, for every ordered pair, a view that differs from the
// owner's keys.
func (s *honestSim) converged() []string {
	var bad []string
	// Keys of status Set only: every node collects TTL'd keys on its own
	// clock and grace period, so with different grace periods a holder
	// may rightly lack TTL'd keys the owner still has.
	set := func(ns *NodeState) map[string]string {
		m := map[string]string{}
		for k, v := range ns.kvs.all() {
			if v.Status == StatusSet {
				m[k] = v.Value
			}
		}
		return m
	}
	for _, owner := range s.engines {
		want := set(owner.selfState())
		for _, e := range s.engines {
			if e == owner {
				continue
			}
			ns, ok := e.lookup(owner.Self())
			if !ok {
				bad = append(bad, fmt.Sprintf("%v does not hold %v", e.Self(), owner.Self()))
				continue
			}
			if got := set(ns); fmt.Sprint(got) != fmt.Sprint(want) {
				bad = append(bad, fmt.Sprintf("%v's view of %v: %v, want %v", e.Self(), owner.Self(), got, want))
			}
		}
	}
	return bad
}

var honestGraces = []time.Duration{500 * time.Millisecond, 2 * time.Second, 5 * time.Second, 30 * time.Second, time.Hour}

func TestPropHonestClustersNeverRefute(t *testing.T) {
	var total struct{ rounds, restarts int }
	rapid.Check(t, func(rt *rapid.T) {
		n := rapid.IntRange(3, 5).Draw(rt, "nodes")
		graces := make([]time.Duration, n)
		for i := range graces {
			graces[i] = rapid.SampledFrom(honestGraces).Draw(rt, "grace")
		}
		s := newHonestSim(rt, n, rapid.Uint64().Draw(rt, "seed"), graces)
		for range rapid.IntRange(10, 60).Draw(rt, "rounds") {
			switch rapid.IntRange(0, 9).Draw(rt, "event") {
			case 0:
				s.restart(rapid.IntRange(0, n-1).Draw(rt, "restarted"))
			case 1:
				s.lossPct = rapid.SampledFrom([]int{0, 10, 30, 60}).Draw(rt, "loss %")
			case 2:
				if s.cut == nil {
					s.cut = map[netip.AddrPort]bool{}
					for i := range rapid.IntRange(1, n-1).Draw(rt, "cut") {
						s.cut[s.addrs[i]] = true
					}
				} else {
					s.cut = nil
				}
			}
			step := rapid.SampledFrom([]time.Duration{100 * time.Millisecond, time.Second, 3 * time.Second}).Draw(rt, "step")
			s.round(step, true)
			total.rounds++
			if r, i, f := s.falsePositives(); r+i+f > 0 {
				rt.Fatalf("honest cluster (graces %v) after %d rounds: %d refutations, %d reincarnations, %d forged-content findings", graces, total.rounds, r, i, f)
			}
		}
		total.restarts += s.restarts
		// Heal: no loss, no partition, no writes, until every TTL'd key
		// and tombstone can be collected everywhere.
		s.lossPct, s.cut = 0, nil
		for range 40 {
			s.round(time.Second, false)
		}
		if r, i, f := s.falsePositives(); r+i+f > 0 {
			rt.Fatalf("honest cluster (graces %v), healed: %d refutations, %d reincarnations, %d forged-content findings", graces, r, i, f)
		}
		if bad := s.converged(); len(bad) > 0 {
			rt.Fatalf("honest cluster (graces %v) not converged after 40 quiet rounds:\n%s", graces, strings.Join(bad, "\n"))
		}
	})
	t.Logf("%d rounds, %d restarts", total.rounds, total.restarts)
}
