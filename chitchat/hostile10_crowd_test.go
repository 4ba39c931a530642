package chitchat

import (
	"testing"
)

// hostile10KillSeen kills k (the net's engine at index), runs rounds until
// every survivor holds it dead (at most limit), and returns the rounds
// the last survivor took.
func hostile10KillSeen(t *testing.T, l *hostile10Net, k *Engine, limit int) int {
	t.Helper()
	l.down[k] = true
	for r := 1; r <= limit; r++ {
		l.round()
		if l.seenDead(k) == len(l.engines)-1 {
			return r
		}
	}
	return limit + 1
}

// Crowding out: a key holder (or, in plaintext, a source spoofing a
// member's address) sends every node, every round, death notices about
// four live nodes, filling the confirmMax slots for kept notices. A real
// death's notice then finds no slot at most observers and waits for their
// phi (half the threshold), as before c36658c; the monitors' own
// suspicions have slots of their own. Measured (20 nodes, lossless, the
// last survivor to hold the killed node dead): 12 rounds without the
// forger, 11 with it, and no false death (the forged notices' subjects
// answer their probes); at the parent of c36658c, 12 and 15, and the
// forged notices found live nodes dead 33 times.
func TestHostile10CrowdedSlots(t *testing.T) {
	for _, forger := range []bool{false, true} {
		l := hostile10NewNet(t, 20, 0, 1)
		k := l.engines[9]
		if forger {
			l.afterTick = func(e *Engine) {
				var notices []Notice
				for _, ns := range ringFrom(e)[10:14] {
					if *ns.id != k.Self() {
						notices = append(notices, Notice{Kind: NoticeDead, ID: *ns.id, Heartbeat: ns.heartbeat + uint64(e.round)})
					}
				}
				e.Step(l.now, Inbound{From: l.engines[0].Self().Addr, Authentic: true}, wire(t, &Push{ClusterID: "default-cluster", Notices: notices}))
			}
		}
		seen := hostile10KillSeen(t, l, k, 60)
		t.Logf("forger %v: the last survivor held the killed node dead after %d rounds; %d false deaths", forger, seen, l.deaths)
		if seen > 20 || l.deaths > 0 {
			t.Errorf("forger %v: the killed node dead everywhere after %d rounds, want at most 20; %d false deaths, want 0", forger, seen, l.deaths)
		}
	}
}

// A forged alive notice about a dead node, relayed by a member (a key
// holder, or a plaintext source spoofing a member's address): a member
// vouching for a node is evidence of life (docs/design/scale.md §5), so it
// ends every confirmation of the node and restarts phi everywhere it
// reaches. But it does not reset a monitor's clock of direct word
// (contacted: contact only), so the monitors ask again at once: one such
// notice delays the verdict by the probes and the notice's spread.
// Measured (20 nodes, lossless, one notice naming the heartbeat + 1,000
// to every node 8 rounds after the kill, while its monitors ask it): the
// last survivor holds it dead after 12 rounds without it, 14 with it. One
// a round keeps a dead node live for as long as it comes, as before
// c36658c.
func TestHostile10ForgedAliveNotice(t *testing.T) {
	for _, forge := range []bool{false, true} {
		l := hostile10NewNet(t, 20, 0, 1)
		k := l.engines[9]
		round := 0
		l.afterTick = func(e *Engine) {
			if forge && round == 8 && e != k {
				ns := e.node(k.Self())
				e.Step(l.now, Inbound{From: l.engines[0].Self().Addr, Authentic: true}, wire(t, &Push{ClusterID: "default-cluster", Notices: []Notice{{Kind: NoticeAlive, ID: k.Self(), Heartbeat: ns.heartbeat + 1000}}}))
			}
		}
		l.down[k] = true
		seen := 0
		for r := 1; r <= 60 && seen == 0; r++ {
			round = r
			l.round()
			if l.seenDead(k) == len(l.engines)-1 {
				seen = r
			}
		}
		t.Logf("forged alive notice %v: the last survivor held the killed node dead after %d rounds", forge, seen)
		if seen == 0 || seen > 30 {
			t.Errorf("forged alive notice %v: the killed node not dead everywhere after %d rounds, want at most 30", forge, seen)
		}
	}
}
