package chitchat

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
	"weak"
)

// Hostile review 13: 9fea0d2's never-live queue (Engine.neverLive) holds
// states where it held slots. An entry of a node removed otherwise than by
// makeRoom's pop (garbage collected: dead or left for the dead-node grace
// period) stays until the queue is compacted, which waits until the stale
// entries outnumber the live ones: with as many nodes never seen live
// still held, the removed states, their names and their key-value stores
// stayed in memory (until those nodes went too, half a grace period later
// here: 12 h with the default). At b2f154f the queue held an 8-byte slot,
// and the removed state was freed at once.
//
// A forger plays it: 16 invented nodes, each with a 4 KB value (an Ack
// from its own address), then 16 more half a grace period later. When the
// first 16 are collected, none of them may stay reachable. Measured at
// 9fea0d2: all 16 states and their values (about 70 KB) kept.
func TestHostile13CollectedNeverLiveNotPinned(t *testing.T) {
	const grace = 100 * time.Second
	cfg := forTest(100)
	cfg.FailureDetector.InitialInterval = time.Second
	cfg.FailureDetector.DeadNodeGracePeriod = grace
	e := newEngine(t, cfg)
	now := t0
	e.Tick(now)
	now = now.Add(time.Second)
	blob := strings.Repeat("x", 4096)
	var first []weak.Pointer[NodeState]
	var ids []NodeID
	for i := range 16 {
		f := NodeID{Name: fmt.Sprintf("fake-a-%d", i), Generation: 1, Addr: hostile10Victim}
		e.Step(now, Inbound{From: attacker}, wire(t, &Ack{Delta: buildDelta([]NodeDelta{{ID: f, MaxVersion: 1,
			KeyValues: []KeyValueMutation{kv("blob", blob, 1, StatusSet)}}})}))
		ns := e.node(f)
		if ns == nil || ns.everLive || ns.NumKeyValues() != 1 {
			t.Fatalf("invented node %v not held, never live, with its key: the test attacks nothing", f)
		}
		first = append(first, weak.Make(ns))
		ids = append(ids, f)
	}
	for now.Before(t0.Add(grace / 2)) {
		now = now.Add(time.Second)
		e.Tick(now)
	}
	var d Digest
	for i := range 16 {
		d = append(d, DigestEntry{ID: NodeID{Name: fmt.Sprintf("fake-b-%02d", i), Generation: 1, Addr: hostile10Victim}, NodeDigest: NodeDigest{Heartbeat: 1}})
	}
	e.Step(now, Inbound{From: attacker}, wire(t, &Syn{ClusterID: "default-cluster", Digest: d}))
	for now.Before(t0.Add(grace + 10*time.Second)) {
		now = now.Add(time.Second)
		e.Tick(now)
	}
	for _, f := range ids {
		if e.node(f) != nil {
			t.Fatalf("%v not collected after the grace period: the test attacks nothing", f)
		}
	}
	if e.numNeverLive != 16 {
		t.Fatalf("%d nodes never live held, want the second 16: the test attacks nothing", e.numNeverLive)
	}
	runtime.GC()
	runtime.GC()
	kept := 0
	for _, w := range first {
		if w.Value() != nil {
			kept++
		}
	}
	t.Logf("never-live queue: %d entries for %d nodes never live; %d of the 16 collected states still reachable", len(e.neverLive), e.numNeverLive, kept)
	if kept != 0 {
		t.Errorf("%d of the 16 collected states (and their 4 KB values) are still reachable", kept)
	}
}
