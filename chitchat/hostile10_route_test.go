package chitchat

import (
	"testing"
)

// route gives a node named dead by a notice we keep the push without the
// duty, and the next node of its chunk heads the rest (c36658c): one extra
// datagram per chunk. With the heads of all PushFanout chunks so named (a
// forger's member notices, kept at low phi), a forwarded push goes out as
// 2 × PushFanout datagrams: TestPropAdversaryPlaintext's bound of
// PushFanout × (1 + PushRedundancy) per Step (a forward down one tree, our
// own news down PushRedundancy trees) found "sent 7 pushes answering one
// Push, above 6" (rapid seed draw 0x81, 4 honest engines, MTU 586). The
// doubling is the design's (a suspect that is live can refute the notice
// it gets; one that is dead loses no chunk), bounded to one leaf a chunk,
// and under the push token bucket: the bound is now twice that, and this
// test holds route to it.
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
	if len(after) <= len(before) {
		t.Fatalf("%d routes with every head a suspect, %d without: the suspects got no leaf", len(after), len(before))
	}
	if limit := 2 * e.cfg.PushFanout; len(after) > limit {
		t.Errorf("a forward down one tree takes %d datagrams, above 2 × PushFanout = %d", len(after), limit)
	}
}
