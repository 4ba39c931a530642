package chitchat

import (
	"testing"
)

// route gives a node named dead by a notice we keep the push without the
// duty, and the next node of its chunk heads the rest (c36658c): one extra
// datagram per chunk. With the heads of all PushFanout chunks so named (a
// forger's member notices, kept at low phi), a forwarded push goes out as
// 2 × PushFanout datagrams, and one Step can send more than the bound
// TestPropAdversaryPlaintext checks, PushFanout × (1 + PushRedundancy)
// (a forward down one tree, and our own news down PushRedundancy trees):
// it found "sent 7 pushes answering one Push, above 6" (rapid seed draw
// 0x81, 4 honest engines, MTU 586), which passes at the parent.
func TestHostile10SuspectHeadsStayWithinTheForwardBound(t *testing.T) {
	p := partialPushNet(t, 30)
	e := p.engines[0]
	whole := RingRange{After: ringBound(e.selfNS.ref), Upto: ringBound(e.selfNS.ref)}
	before := e.route(p.now, whole, 1)
	for _, rt := range before {
		if rt.duty != nil {
			e.node(p.byAddr[rt.to].Self()).deathHeard = true
		}
	}
	after := e.route(p.now, whole, 1)
	t.Logf("routes of one tree: %d, %d with every chunk head named dead by a kept notice", len(before), len(after))
	// One tree's forward, plus our own news flushed by the same Step.
	if limit := e.cfg.PushFanout * (1 + e.cfg.PushRedundancy); len(after)+e.cfg.PushFanout*e.cfg.PushRedundancy > limit {
		t.Errorf("a forward takes %d datagrams; with our own news down %d tree(s) a Step sends %d, above the %d TestPropAdversaryPlaintext allows",
			len(after), e.cfg.PushRedundancy, len(after)+e.cfg.PushFanout*e.cfg.PushRedundancy, limit)
	}
}
