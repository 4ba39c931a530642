package chitchat

import (
	"testing"
)

// A summary whose bucket holds the same nodes as ours, some at other
// versions, still carries heartbeats: the identity half of the hash
// (stateHash) agrees, and low 16 bits up to 2^15 ahead of ours are rises.
// Before, any difference of version made the whole bucket's heartbeats
// unreadable: with writes that anti-entropy alone spreads (push off, or
// rate limited), most buckets differ at any moment, and 1,000 simulated
// nodes saw peers die that were alive.
func TestSummaryHeartbeatsSurviveVersionDifferences(t *testing.T) {
	x := id(3)
	tests := []struct {
		name   string
		tweak  func(s *BucketSummary) // applied to a summary of our own view
		ahead  uint16                 // added to x's low 16 bits in the summary
		wantHB uint64                 // x's heartbeat after, from 1,000
	}{
		{name: "same view: exact", ahead: 5, wantHB: 1005},
		{name: "same nodes, other versions: rise taken", tweak: func(s *BucketSummary) { s.Hash ^= 0x1234 }, ahead: 5, wantHB: 1005},
		{name: "same nodes, other versions, behind: nothing", tweak: func(s *BucketSummary) { s.Hash ^= 0x1234 }, ahead: 0xfffb, wantHB: 1000},
		{name: "same nodes, other versions, 2^15 ahead: nothing", tweak: func(s *BucketSummary) { s.Hash ^= 0x1234 }, ahead: 1 << 15, wantHB: 1000},
		{name: "other nodes, same count: nothing", tweak: func(s *BucketSummary) { s.Hash ^= 1 << 40 }, ahead: 5, wantHB: 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEngine(t, forTest(1))
			ns := addNode(t, e, x)
			e.observeHeartbeat(t0, ns, 1000, false, false)
			setVersion(t, ns, "k", "v", 1)
			var slab []uint16
			s := e.summarize(t0, 0, 0, e.nextMark(), &slab)
			if len(s.Heartbeats) != 2 {
				t.Fatalf("summary of %d nodes, want self and x", len(s.Heartbeats))
			}
			for i, n := range e.bucketNodes(0, 0) {
				if n == ns {
					s.Heartbeats[i] += tt.ahead
				}
			}
			if tt.tweak != nil {
				tt.tweak(&s)
			}
			syn := &Syn{ClusterID: "default-cluster", Cover: &Coverage{Count: 1, Summaries: []BucketSummary{s}}}
			e.Step(t0.Add(1e9), Inbound{From: id(9).Addr}, wire(t, syn))
			if ns.heartbeat != tt.wantHB {
				t.Errorf("x's heartbeat = %d, want %d", ns.heartbeat, tt.wantHB)
			}
			if err := checkInvariants(e, nil); err != nil {
				t.Error(err)
			}
		})
	}
}
