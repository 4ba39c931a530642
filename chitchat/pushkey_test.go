package chitchat

import (
	"fmt"
	"testing"
)

// The push key's scratch buffer is not pinned by a push larger than a
// datagram (a stream welcome carries the whole cluster's state); smaller
// ones reuse it.
func TestPushKeyScratchNotPinned(t *testing.T) {
	p := livePushNet(t, 3, nil)
	e := p.engines[0]
	e.cfg.MaxDatagramSize = MinDatagramSize // the budget the scratch is kept for
	small := hostile8Dead(p.engines[1].Self(), 1)
	e.pushKey(small)
	if c := cap(e.push.scratch); c == 0 || c > maxKeptScratch {
		t.Fatalf("scratch capacity %d after a small push, want it kept (1..%d)", c, maxKeptScratch)
	}
	big := &Push{ClusterID: "default-cluster"}
	for i := range 400 {
		big.Notices = append(big.Notices, Notice{Kind: NoticeAlive, ID: NodeID{Name: fmt.Sprintf("node-with-a-long-name-%03d", i), Generation: 1, Addr: p.engines[1].Self().Addr}, Heartbeat: 7})
	}
	keep := max(maxKeptScratch, 2*MinDatagramSize)
	if n := len(EncodeMessage(big)); n <= keep {
		t.Fatalf("the big push encodes to %d bytes, not above %d: the test checks nothing", n, keep)
	}
	k1 := e.pushKey(big)
	if c := cap(e.push.scratch); c > keep {
		t.Errorf("scratch capacity %d after a %d-byte push, want at most %d", c, len(EncodeMessage(big)), keep)
	}
	if k2 := e.pushKey(big); k2 != k1 {
		t.Errorf("the same push keyed %x, then %x", k1, k2)
	}
}
