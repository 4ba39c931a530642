package chitchat

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Copies share the owner's key-value map (copy-on-write): every way the
// owner changes its keys after a copy leaves the copy as it was, and the
// copy's map is the owner's until then.
func TestCloneSharesKeysCopyOnWrite(t *testing.T) {
	tests := []struct {
		name   string
		change func(ns *NodeState)
	}{
		{"set", func(ns *NodeState) { ns.set("a", "2") }},
		{"new key", func(ns *NodeState) { ns.set("c", "1") }},
		{"delete", func(ns *NodeState) { ns.delete(t0, "a") }},
		{"gc", func(ns *NodeState) { ns.gcKeys(t0.Add(time.Hour), time.Minute) }},
		{"clear", func(ns *NodeState) { ns.clearKVs() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := newNodeState(id(1), nil)
			ns.set("c", "1")
			ns.delete(t0, "c") // a tombstone, for the collections
			ns.set("a", "1")
			ns.setWithTTL(t0, "b", "1")
			c := ns.Clone()
			want := kvs(c)
			if !ns.kvsShared || !c.kvsShared {
				t.Fatal("the copy does not share the owner's map")
			}
			tt.change(ns)
			if diff := cmp.Diff(want, kvs(c)); diff != "" {
				t.Errorf("the copy changed with its owner (-before +after):\n%s", diff)
			}
			if ns.kvsShared && tt.name != "clear" {
				t.Error("the owner still shares the map it wrote to")
			}
		})
	}
}

// A node without keys holds no map, and gets one at its first key.
func TestKeysAllocatedAtFirstKey(t *testing.T) {
	ns := newNodeState(id(1), nil)
	if ns.kvs != nil {
		t.Fatal("a new node state holds a map")
	}
	ns.set("a", "1")
	if v, ok := ns.Get("a"); !ok || v != "1" {
		t.Errorf("Get(a) = %q, %v; want 1", v, ok)
	}
}
