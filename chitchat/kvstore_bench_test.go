package chitchat

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkApplyManyKeys measures the key-value paths of one node holding
// 1,000 keys (issue 13: the per-node store must stay fast for large key
// sets while it shrinks for small ones):
//   - delta-update: an Engine applies a one-key delta of a peer that holds
//     1,000 keys (an existing key, at the next version);
//   - delta-fresh: a peer's whole state, 1,000 keys in version order, is
//     applied to an empty view of it;
//   - set-update: Engine.Set of an existing key of the self node's 1,000;
//   - set-fill: 1,000 keys set one by one on an empty state;
//   - gc: a collection pass over 1,000 keys, none of them due.
func BenchmarkApplyManyKeys(b *testing.B) {
	const n = 1000
	keys := make([]string, n)
	values := make([]string, n)
	for k := range n {
		keys[k] = fmt.Sprintf("key_%d", k)
		values[k] = fmt.Sprintf("value_%d", k)
	}
	peer := benchID(1)
	full := NodeDelta{ID: peer, MaxVersion: n}
	for k := range n {
		full.KeyValues = append(full.KeyValues, KeyValueMutation{Key: keys[k], Value: values[k], Version: uint64(k + 1)})
	}

	b.Run("delta-update", func(b *testing.B) {
		e := benchEngine(b, 0, 2)
		kvs := map[string]VersionedValue{}
		for k := range n {
			kvs[keys[k]] = VersionedValue{Value: values[k], Version: uint64(k + 1)}
		}
		if err := e.ResetNodeStateIfUpdate(t0, peer, kvs, n, 0); err != nil {
			b.Fatal(err)
		}
		max := uint64(n)
		d := &Delta{Nodes: []NodeDelta{{ID: peer, KeyValues: make([]KeyValueMutation, 1)}}}
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			nd := &d.Nodes[0]
			nd.FromVersionExcluded = max
			max++
			nd.MaxVersion = max
			nd.KeyValues[0] = KeyValueMutation{Key: keys[i%n], Value: values[(i+1)%n], Version: max}
			e.applyDelta(t0, d)
			i++
		}
		if ns, _ := e.lookup(peer); ns.maxVersion != max {
			b.Fatalf("max version %d, want %d", ns.maxVersion, max)
		}
	})
	b.Run("delta-fresh", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ns := newNodeState(peer)
			ns.applyDelta(t0, &full, deltaApply, nil)
			if ns.maxVersion != n {
				b.Fatalf("max version %d, want %d", ns.maxVersion, n)
			}
		}
	})
	b.Run("set-update", func(b *testing.B) {
		e := benchEngine(b, 0, 1)
		for k := range n {
			if err := e.Set(keys[k], values[k]); err != nil {
				b.Fatal(err)
			}
		}
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			if err := e.Set(keys[i%n], values[(i+1+i/n)%n]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("set-fill", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ns := newNodeState(peer)
			for k := range n {
				ns.set(keys[k], values[k])
			}
		}
	})
	b.Run("gc", func(b *testing.B) {
		ns := newNodeState(peer)
		ns.applyDelta(t0, &full, deltaApply, nil)
		b.ReportAllocs()
		for b.Loop() {
			ns.gcKeys(t0.Add(time.Hour), time.Minute)
		}
	})
}
