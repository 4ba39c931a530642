package chitchat

import "testing"

// Hostile review 4: the noderef op (a push names its origin by ref), 32-bit
// push ranges, two-way stream welcomes.

// equalDeltas (the writer-versus-hand-built check of the codec property)
// must tell a node named by one ref from a node named by another: both have
// the zero NodeID, and comparing IDs alone called them equal, so a writer
// that lost or mangled a ref passed.
func TestHostile4EqualDeltasComparesRefs(t *testing.T) {
	a := Delta{Nodes: []NodeDelta{{Ref: 1, MaxVersion: 3}}}
	b := Delta{Nodes: []NodeDelta{{Ref: 2, MaxVersion: 3}}}
	if equalDeltas(&a, &b) {
		t.Errorf("equalDeltas says deltas naming refs 1 and 2 are equal")
	}
	if !equalDeltas(&a, &a) {
		t.Errorf("equalDeltas says a delta differs from itself")
	}
}
