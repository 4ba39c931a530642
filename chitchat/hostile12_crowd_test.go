package chitchat

import (
	"fmt"
	"testing"
)

// Hostile review 12: the entries our Syns list first (c191deb: the nodes
// we are confirming and the node probeTarget asks) against the spots'
// budget (40 % of a Syn's digest budget, PROTOCOL.md §3.6).

// Four death notices from a stranger, about four live nodes that have
// spoken to us, are four kept notices we confirm (confirmMax), renewed
// each round if the stranger sends them each round. At a 1,400-byte
// datagram, with names of 63 bytes (a pod's FQDN) and real generations,
// a digest entry takes 84 bytes and the spots 385: listed first, with no
// bound of their own, the four filled them. Neither the dead node probed
// this round (whose listing c191deb added so that it refutes a forged
// heartbeat in its answer) nor a suspect was listed; now the probed node
// and our own suspicions come first, and kept notices take at most half
// the room left.
func TestHostile12NoticesCrowdTheSyn(t *testing.T) {
	p := livePushNet(t, 12, func(c *Config) {
		c.MaxDatagramSize = 1400
		c.ID.Generation = 1764150000
		c.ID.Name = fmt.Sprintf("searcher-7d9f8b6c4-%05d-xk2lp.search.prod.eu-west-1.example.com", c.ID.Addr.Port())
	})
	for _, e := range p.engines {
		e.tune = tuning{bucketTarget: 4, maxBuckets: 1}
		e.CreateSyn(p.now)
	}
	e := p.engines[0]
	if !e.monitoring() {
		t.Fatal("monitors not in force: the test attacks nothing")
	}
	for _, o := range p.engines[5:9] {
		e.Step(p.now, Inbound{From: attacker}, wire(t, hostile8Dead(o.Self(), e.node(o.Self()).heartbeat)))
	}
	if len(e.confirming) != confirmMax {
		t.Fatalf("%d confirmations after %d notices, want %d: the test attacks nothing", len(e.confirming), confirmMax, confirmMax)
	}
	// A node dead here whose hearsay rise settling held back: this
	// round's probe.
	dead := e.node(p.engines[10].Self())
	e.fd.MarkDead(dead.slot, p.now)
	e.mirror(dead, p.now)
	e.probe = *dead.id
	if _, ok := e.probeTarget(); !ok {
		t.Fatal("no probe: the test attacks nothing")
	}
	suspect := e.node(p.engines[2].Self())
	suspect.suspect = true

	syn := e.CreateSyn(p.now)
	notices := 0
	for _, o := range p.engines[5:9] {
		if _, ok := syn.Digest.Get(o.Self()); ok {
			notices++
		}
	}
	_, probed := syn.Digest.Get(*dead.id)
	_, suspected := syn.Digest.Get(*suspect.id)
	t.Logf("Syn lists %d entries (%d bytes): the probed node %v, the suspect %v, %d of the 4 nodes of kept notices",
		len(syn.Digest), sizeDigest(syn.Digest), probed, suspected, notices)
	if !probed {
		t.Error("the probed node is not listed")
	}
	if !suspected {
		t.Error("the suspect is not listed")
	}
	if notices == 0 {
		t.Error("no node of a kept notice is listed")
	}
}
