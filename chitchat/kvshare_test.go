package chitchat

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Copies share the owner's key-value store (copy-on-write): every way the
// owner changes its keys after a copy leaves the copy as it was, and the
// copy's store is the owner's until then, whether it has an index or not.
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
		for _, extra := range []int{0, 2 * kvIndexMin} { // without and with an index
			t.Run(fmt.Sprintf("%s/%d more keys", tt.name, extra), func(t *testing.T) {
				ns := newNodeState(id(1))
				for k := range extra {
					ns.set(storeKey(k), "x")
				}
				ns.set("c", "1")
				ns.delete(t0, "c") // a tombstone, for the collections
				ns.set("a", "1")
				ns.setWithTTL(t0, "b", "1")
				c := ns.Clone()
				want := kvs(c)
				if !ns.kvsShared || ns.kvs != c.kvs {
					t.Fatal("the copy does not share the owner's store")
				}
				tt.change(ns)
				if diff := cmp.Diff(want, kvs(c)); diff != "" {
					t.Errorf("the copy changed with its owner (-before +after):\n%s", diff)
				}
				if ns.kvsShared && tt.name != "clear" {
					t.Error("the owner still shares the store it wrote to")
				}
				if err := checkKVStore(ns); err != nil {
					t.Errorf("owner: %v", err)
				}
			})
		}
	}
}

// A node without keys holds no store, and gets one at its first key.
func TestKeysAllocatedAtFirstKey(t *testing.T) {
	ns := newNodeState(id(1))
	if ns.kvs != nil {
		t.Fatal("a new node state holds a store")
	}
	ns.set("a", "1")
	if v, ok := ns.Get("a"); !ok || v != "1" {
		t.Errorf("Get(a) = %q, %v; want 1", v, ok)
	}
}
