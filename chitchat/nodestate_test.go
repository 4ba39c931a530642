package chitchat

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Upstream's state.rs tests on a single node state (T31, T36–T41, T43,
// T50–T62). Versioned values compare without their timestamp, like
// upstream's test-only equality, except where a test checks it.

// testState returns an empty state for upstream's NodeState::for_test().
func testState() *NodeState {
	return newNodeState(NodeID{Name: "test-node", Addr: id(7280).Addr})
}

// raw returns the raw entry of key or fails.
func raw(tb testing.TB, ns *NodeState, key string) VersionedValue {
	tb.Helper()
	v, ok := ns.GetVersioned(key)
	if !ok {
		tb.Fatalf("%v has no entry %q", ns.ID(), key)
	}
	return v
}

// vv is a versioned value without timestamp.
func vv(value string, version uint64, status Status) VersionedValue {
	return VersionedValue{Value: value, Version: version, Status: status}
}

// entries returns every entry of ns, tombstones included, without
// timestamps.
func entries(ns *NodeState) map[string]VersionedValue {
	m := map[string]VersionedValue{}
	for k, v := range ns.AllKeyValues() {
		v.MarkedAt = time.Time{}
		m[k] = v
	}
	return m
}

// T31 test_stale_node_iter_stale_key_values
func TestT31_StaleKeyValues(t *testing.T) {
	if got := testState().staleKeyValues(0); len(got) != 0 {
		t.Errorf("empty state: stale = %v, want none", got)
	}
	ns := testState()
	setVersion(t, ns, "key_c", "", 1)
	setVersion(t, ns, "key_b", "", 2)
	setVersion(t, ns, "key_a", "", 3)
	want := []KeyValueMutation{kv("key_b", "", 2, StatusSet), kv("key_a", "", 3, StatusSet)}
	if diff := cmp.Diff(want, ns.staleKeyValues(1)); diff != "" {
		t.Errorf("staleKeyValues(1) mismatch (-want +got):\n%s", diff)
	}
	if got := ns.numStale(1); got != 2 {
		t.Errorf("numStale(1) = %d, want 2", got)
	}
}

// T36 test_cluster_state_missing_node
func TestT36_MissingNode(t *testing.T) {
	e := newEngine(t, forTest(10000))
	if ns, ok := e.NodeState(id(10001)); ok {
		t.Errorf("NodeState(10001) = %v, want none", ns.ID())
	}
}

// T37 test_cluster_state_first_version_is_one
func TestT37_FirstVersionIsOne(t *testing.T) {
	e := newEngine(t, forTest(10001))
	if err := e.Set("key_a", ""); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(vv("", 1, StatusSet), raw(t, e.selfState(), "key_a")); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

// T38 test_cluster_state_set
func TestT38_Set(t *testing.T) {
	e := newEngine(t, forTest(10001))
	steps := []struct {
		key, value string
		want       map[string]VersionedValue
	}{
		{"key_a", "1", map[string]VersionedValue{"key_a": vv("1", 1, StatusSet)}},
		{"key_b", "2", map[string]VersionedValue{"key_a": vv("1", 1, StatusSet), "key_b": vv("2", 2, StatusSet)}},
		{"key_a", "3", map[string]VersionedValue{"key_a": vv("3", 3, StatusSet), "key_b": vv("2", 2, StatusSet)}},
	}
	for _, s := range steps {
		if err := e.Set(s.key, s.value); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(s.want, entries(e.selfState())); diff != "" {
			t.Errorf("after set %s=%s (-want +got):\n%s", s.key, s.value, diff)
		}
	}
}

// T39 test_cluster_state_set_with_same_value_updates_version (which, despite
// its name, checks that the version does NOT change).
func TestT39_SetSameValueKeepsVersion(t *testing.T) {
	e := newEngine(t, forTest(10001))
	var events int
	e.Subscribe("", func(KeyChange) { events++ })
	for range 2 {
		if err := e.Set("key", "1"); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(vv("1", 1, StatusSet), raw(t, e.selfState(), "key")); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	if events != 1 {
		t.Errorf("listener fired %d times, want 1 (no event for a no-op set)", events)
	}
}

// T40 test_cluster_state_set_and_mark_for_deletion
func TestT40_SetAndDelete(t *testing.T) {
	e := newEngine(t, forTest(10001))
	var events int
	e.Subscribe("", func(KeyChange) { events++ })
	if err := e.Set("key", "1"); err != nil {
		t.Fatal(err)
	}
	if !e.Delete(t0, "key") {
		t.Fatal("Delete(key) = false")
	}
	if _, ok := e.Get("key"); ok {
		t.Error("Get(key) found a deleted key")
	}
	if diff := cmp.Diff(VersionedValue{Version: 2, Status: StatusDeleted, MarkedAt: t0}, raw(t, e.selfState(), "key")); diff != "" {
		t.Errorf("tombstone mismatch (-want +got):\n%s", diff)
	}
	if events != 1 {
		t.Errorf("listener fired %d times, want 1 (deletions are not notified)", events)
	}
	if err := e.Set("key", "2"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(vv("2", 3, StatusSet), raw(t, e.selfState(), "key")); diff != "" {
		t.Errorf("revived key mismatch (-want +got):\n%s", diff)
	}
}

// T41 test_cluster_state_delete_after_ttl
func TestT41_DeleteAfterTTL(t *testing.T) {
	e := newEngine(t, forTest(10001))
	if err := e.Set("key", "1"); err != nil {
		t.Fatal(err)
	}
	if !e.DeleteAfterTTL(t0, "key") {
		t.Fatal("DeleteAfterTTL(key) = false")
	}
	if v, ok := e.Get("key"); !ok || v != "1" {
		t.Errorf("Get(key) = %q, %v, want \"1\", true", v, ok)
	}
	got := raw(t, e.selfState(), "key")
	if diff := cmp.Diff(VersionedValue{Value: "1", Version: 2, Status: StatusDeleteAfterTTL, MarkedAt: t0}, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	if got.IsDeleted() {
		t.Error("IsDeleted() = true for DeleteAfterTTL")
	}
	if err := e.Set("key", "2"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(vv("2", 3, StatusSet), raw(t, e.selfState(), "key")); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

// Deleting a missing key is a logged no-op; deleting a tombstone bumps its
// version; DeleteAfterTTL on a tombstone revives it with "" (docs/PROTOCOL.md §2.2).
func TestDeleteEdgeCases(t *testing.T) {
	e := newEngine(t, forTest(1))
	if e.Delete(t0, "missing") || e.DeleteAfterTTL(t0, "missing") {
		t.Error("deleting a missing key reported true")
	}
	if got := e.selfState().MaxVersion(); got != 0 {
		t.Errorf("max version = %d after no-op deletes, want 0", got)
	}
	_ = e.Set("k", "v")
	e.Delete(t0, "k")
	e.Delete(t0.Add(time.Second), "k")
	if diff := cmp.Diff(VersionedValue{Version: 3, Status: StatusDeleted, MarkedAt: t0.Add(time.Second)}, raw(t, e.selfState(), "k")); diff != "" {
		t.Errorf("re-deleted tombstone mismatch (-want +got):\n%s", diff)
	}
	e.DeleteAfterTTL(t0, "k")
	if v, ok := e.Get("k"); !ok || v != "" {
		t.Errorf("Get after DeleteAfterTTL on a tombstone = %q, %v, want \"\", true", v, ok)
	}
}

// T43 test_cluster_state_gc_keys_marked_for_deletion
func TestT43_GCKeysMarkedForDeletion(t *testing.T) {
	ns := testState()
	ns.set("key_a", "1")
	ns.delete(t0, "key_a")
	now := t0.Add(5 * time.Second)
	setVersion(t, ns, "key_b", "1", 13)
	ns.gcKeys(now, 10*time.Second)
	want := map[string]VersionedValue{"key_a": vv("", 2, StatusDeleted), "key_b": vv("1", 13, StatusSet)}
	if diff := cmp.Diff(want, entries(ns)); diff != "" {
		t.Errorf("at t0+5s (-want +got):\n%s", diff)
	}
	ns.gcKeys(now.Add(5*time.Second), 10*time.Second)
	want = map[string]VersionedValue{"key_b": vv("1", 13, StatusSet)}
	if diff := cmp.Diff(want, entries(ns)); diff != "" {
		t.Errorf("at t0+10s (-want +got):\n%s", diff)
	}
	if ns.LastGCVersion() != 2 || ns.MaxVersion() != 13 {
		t.Errorf("(gc, max) = (%d, %d), want (2, 13)", ns.LastGCVersion(), ns.MaxVersion())
	}
}

// DeleteAfterTTL entries are collected like tombstones; Set entries never.
func TestGCKeysTTL(t *testing.T) {
	e := newEngine(t, forTest(1))
	if err := e.SetWithTTL(t0, "ttl", "v"); err != nil {
		t.Fatal(err)
	}
	_ = e.Set("keep", "v")
	e.GCKeys(t0.Add(e.Config().MarkedForDeletionGracePeriod - time.Nanosecond))
	if _, ok := e.Get("ttl"); !ok {
		t.Error("TTL key collected before the grace period")
	}
	e.GCKeys(t0.Add(e.Config().MarkedForDeletionGracePeriod))
	if _, ok := e.Get("ttl"); ok {
		t.Error("TTL key not collected at the grace period")
	}
	if _, ok := e.Get("keep"); !ok {
		t.Error("Set key collected")
	}
	if got := e.selfState().LastGCVersion(); got != 1 {
		t.Errorf("last gc version = %d, want 1", got)
	}
}

// T50 test_iter_prefix
func TestT50_Prefix(t *testing.T) {
	ns := testState()
	for _, k := range []string{"Europe", "Europe:", "Europe:UK", "Asia:Japan", "Europe:Italy", "Africa:Uganda", "Oceania"} {
		ns.set(k, "")
	}
	ns.delete(t0, "Europe:UK")
	var got []string
	for k := range ns.Prefix("Europe:") {
		got = append(got, k)
	}
	if diff := cmp.Diff([]string{"Europe:", "Europe:Italy"}, got); diff != "" {
		t.Errorf("Prefix(Europe:) mismatch (-want +got):\n%s", diff)
	}
	var all []string
	for k := range ns.AllKeyValues() {
		all = append(all, k)
	}
	if !slices.IsSorted(all) || len(all) != 7 {
		t.Errorf("AllKeyValues = %v, want 7 sorted keys", all)
	}
	// Early exit of the iterators.
	for range ns.KeyValues() {
		break
	}
	if ns.NumKeyValues() != 6 || !ns.ContainsKey("Europe") || ns.ContainsKey("Europe:UK") {
		t.Errorf("NumKeyValues = %d, want 6; ContainsKey wrong", ns.NumKeyValues())
	}
}

// nodeDeltaCase is one row of the node-level delta table (docs/PROTOCOL.md §5.1).
type nodeDeltaCase struct {
	name       string
	setup      func(tb testing.TB, ns *NodeState)
	delta      NodeDelta
	wantStatus deltaStatus
	wantGC     uint64
	wantMax    uint64
	want       map[string]VersionedValue
}

// T51 test_node_apply_delta_simple, T52 test_node_apply_same_value_different_version,
// T53 test_node_skip_delta_from_the_future,
// T54 test_node_apply_delta_different_last_gc_is_ok_if_below_max_version,
// T55 test_node_apply_delta_on_reset_fresher_version,
// T56 test_node_apply_delta_no_reset_if_older_version,
// T57 test_apply_delta_reset_does_not_violate_monotonic_property,
// T58 test_delta_accepted_when_sender_gc_equals_receiver_max, and the other
// rows of upstream's delta-application table (node level).
func TestT51toT58_NodeApplyDelta(t *testing.T) {
	tests := []nodeDeltaCase{
		{
			name: "T51 apply simple",
			setup: func(tb testing.TB, ns *NodeState) {
				setVersion(tb, ns, "key_a", "val_a", 1)
				setVersion(tb, ns, "key_b", "val_a", 2)
			},
			// KV order inside a hand-built delta need not be sorted.
			delta:      NodeDelta{FromVersionExcluded: 2, MaxVersion: 4, KeyValues: []KeyValueMutation{kv("key_c", "val_c", 4, StatusSet), kv("key_b", "val_b2", 3, StatusSet)}},
			wantStatus: deltaApply, wantMax: 4,
			want: map[string]VersionedValue{"key_a": vv("val_a", 1, StatusSet), "key_b": vv("val_b2", 3, StatusSet), "key_c": vv("val_c", 4, StatusSet)},
		},
		{
			name:       "T52 same value with a higher version",
			setup:      func(tb testing.TB, ns *NodeState) { setVersion(tb, ns, "key_a", "val_a", 1) },
			delta:      NodeDelta{FromVersionExcluded: 1, MaxVersion: 3, KeyValues: []KeyValueMutation{kv("key_a", "val_a", 3, StatusSet)}},
			wantStatus: deltaApply, wantMax: 3,
			want: map[string]VersionedValue{"key_a": vv("val_a", 3, StatusSet)},
		},
		{
			name:       "T53 delta from the future",
			setup:      func(tb testing.TB, ns *NodeState) { setVersion(tb, ns, "key_a", "val_a", 5) },
			delta:      NodeDelta{FromVersionExcluded: 6, MaxVersion: 7, KeyValues: []KeyValueMutation{kv("key_a", "new_val", 7, StatusSet)}},
			wantStatus: deltaReject, wantMax: 5,
			want: map[string]VersionedValue{"key_a": vv("val_a", 5, StatusSet)},
		},
		{
			name: "T54 different last gc is ok below max version",
			setup: func(tb testing.TB, ns *NodeState) {
				setVersion(tb, ns, "key_a", "val_a", 17)
				ns.delete(t0, "key_a")
				ns.gcKeys(t0.Add(10*time.Second), 10*time.Second)
				if ns.LastGCVersion() != 18 || ns.MaxVersion() != 18 {
					tb.Fatalf("after gc (gc, max) = %v, want (18, 18)", ns.monotonic())
				}
				setVersion(tb, ns, "key_a", "val_a", 31)
			},
			delta:      NodeDelta{LastGCVersion: 30, FromVersionExcluded: 31, MaxVersion: 32, KeyValues: []KeyValueMutation{kv("key_a", "new_val", 32, StatusSet)}},
			wantStatus: deltaApply, wantGC: 18, wantMax: 32,
			want: map[string]VersionedValue{"key_a": vv("new_val", 32, StatusSet)},
		},
		{
			name:       "T55 reset with a fresher version",
			setup:      func(tb testing.TB, ns *NodeState) { setVersion(tb, ns, "key_a", "val_a", 17) },
			delta:      NodeDelta{LastGCVersion: 30, MaxVersion: 32, KeyValues: []KeyValueMutation{kv("key_b", "val_b", 32, StatusSet)}},
			wantStatus: deltaApplyAfterReset, wantGC: 30, wantMax: 32,
			want: map[string]VersionedValue{"key_b": vv("val_b", 32, StatusSet)},
		},
		{
			name: "T56 no reset if older version",
			setup: func(tb testing.TB, ns *NodeState) {
				setVersion(tb, ns, "key_a", "val_a", 31)
				setVersion(tb, ns, "key_b", "val_b2", 32)
			},
			delta:      NodeDelta{LastGCVersion: 17, MaxVersion: 30, KeyValues: []KeyValueMutation{kv("key_b", "val_b", 30, StatusSet)}},
			wantStatus: deltaReject, wantMax: 32,
			want: map[string]VersionedValue{"key_a": vv("val_a", 31, StatusSet), "key_b": vv("val_b2", 32, StatusSet)},
		},
		{
			name: "T57 reset does not violate the monotonic property (#178)",
			setup: func(tb testing.TB, ns *NodeState) {
				setVersion(tb, ns, "key_a", "val_a", 50)
				setVersion(tb, ns, "key_b", "val_b", 70)
				ns.lastGCVersion = 50
			},
			delta:      NodeDelta{LastGCVersion: 120, MaxVersion: 80, KeyValues: []KeyValueMutation{kv("key_c", "val_c", 80, StatusSet)}},
			wantStatus: deltaApplyAfterReset, wantGC: 120, wantMax: 80,
			want: map[string]VersionedValue{"key_c": vv("val_c", 80, StatusSet)},
		},
		{
			name: "T58 sender gc equal to receiver max is accepted (#176)",
			setup: func(tb testing.TB, ns *NodeState) {
				setVersion(tb, ns, "key_a", "val_a", 70)
				ns.lastGCVersion = 50
			},
			delta:      NodeDelta{LastGCVersion: 70, FromVersionExcluded: 70, MaxVersion: 100, KeyValues: []KeyValueMutation{kv("key_b", "val_b", 100, StatusSet)}},
			wantStatus: deltaApply, wantGC: 50, wantMax: 100,
			want: map[string]VersionedValue{"key_a": vv("val_a", 70, StatusSet), "key_b": vv("val_b", 100, StatusSet)},
		},
		{
			name:       "gc equal to max is compatible: no reset",
			setup:      func(tb testing.TB, ns *NodeState) { setVersion(tb, ns, "key_a", "val_a", 20) },
			delta:      NodeDelta{LastGCVersion: 20, MaxVersion: 18, KeyValues: []KeyValueMutation{kv("key_b", "val_b", 18, StatusSet)}},
			wantStatus: deltaReject, wantMax: 20,
			want: map[string]VersionedValue{"key_a": vv("val_a", 20, StatusSet)},
		},
		{
			name:       "incompatible delta not from 0 is rejected",
			setup:      func(tb testing.TB, ns *NodeState) { setVersion(tb, ns, "key_a", "val_a", 5) },
			delta:      NodeDelta{LastGCVersion: 10, FromVersionExcluded: 3, MaxVersion: 12, KeyValues: []KeyValueMutation{kv("key_b", "val_b", 12, StatusSet)}},
			wantStatus: deltaReject, wantMax: 5,
			want: map[string]VersionedValue{"key_a": vv("val_a", 5, StatusSet)},
		},
		{
			name: "known versions and collected tombstones are skipped",
			setup: func(tb testing.TB, ns *NodeState) {
				setVersion(tb, ns, "key_a", "val_a", 3)
				ns.lastGCVersion = 5
			},
			delta: NodeDelta{LastGCVersion: 5, FromVersionExcluded: 3, MaxVersion: 7, KeyValues: []KeyValueMutation{
				kv("key_a", "stale", 2, StatusSet), kv("key_x", "", 4, StatusDeleted), kv("key_y", "v", 5, StatusDeleteAfterTTL),
				kv("key_z", "z", 6, StatusSet), kv("key_w", "", 7, StatusDeleted),
			}},
			wantStatus: deltaApply, wantGC: 5, wantMax: 7,
			want: map[string]VersionedValue{"key_a": vv("val_a", 3, StatusSet), "key_z": vv("z", 6, StatusSet), "key_w": vv("", 7, StatusDeleted)},
		},
		{
			name: "after a reset, an older-epoch delta stopping below our gc is rejected",
			setup: func(tb testing.TB, ns *NodeState) {
				setVersion(tb, ns, "key_a", "val_a", 1)
				ns.lastGCVersion = 5
			},
			delta:      NodeDelta{LastGCVersion: 4, FromVersionExcluded: 1, MaxVersion: 4, KeyValues: []KeyValueMutation{kv("key_b", "old", 4, StatusSet)}},
			wantStatus: deltaReject, wantGC: 5, wantMax: 1,
			want: map[string]VersionedValue{"key_a": vv("val_a", 1, StatusSet)},
		},
		{
			name: "after a reset, an older-epoch delta reaching our gc is applied",
			setup: func(tb testing.TB, ns *NodeState) {
				setVersion(tb, ns, "key_a", "val_a", 1)
				ns.lastGCVersion = 5
			},
			delta:      NodeDelta{LastGCVersion: 4, FromVersionExcluded: 1, MaxVersion: 6, KeyValues: []KeyValueMutation{kv("key_b", "new", 6, StatusSet)}},
			wantStatus: deltaApply, wantGC: 5, wantMax: 6,
			want: map[string]VersionedValue{"key_a": vv("val_a", 1, StatusSet), "key_b": vv("new", 6, StatusSet)},
		},
		{
			name: "after a reset, a same-epoch delta is applied",
			setup: func(tb testing.TB, ns *NodeState) {
				setVersion(tb, ns, "key_a", "val_a", 1)
				ns.lastGCVersion = 5
			},
			delta:      NodeDelta{LastGCVersion: 5, FromVersionExcluded: 1, MaxVersion: 3, KeyValues: []KeyValueMutation{kv("key_b", "b", 3, StatusSet)}},
			wantStatus: deltaApply, wantGC: 5, wantMax: 3,
			want: map[string]VersionedValue{"key_a": vv("val_a", 1, StatusSet), "key_b": vv("b", 3, StatusSet)},
		},
		{
			name:       "node delta without key-values raises max version",
			setup:      func(tb testing.TB, ns *NodeState) { setVersion(tb, ns, "key_a", "val_a", 3) },
			delta:      NodeDelta{FromVersionExcluded: 3, MaxVersion: 9},
			wantStatus: deltaApply, wantMax: 9,
			want: map[string]VersionedValue{"key_a": vv("val_a", 3, StatusSet)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := testState()
			ns.heartbeat = 42
			tt.setup(t, ns)
			before := ns.monotonic()
			tt.delta.ID = ns.ID()
			status := ns.classify(&tt.delta)
			if status != tt.wantStatus {
				t.Fatalf("classify = %v, want %v", status, tt.wantStatus)
			}
			if status != deltaReject {
				ns.applyDelta(t0, &tt.delta, status, nil)
			}
			if lessMonotonic(ns.monotonic(), before) {
				t.Errorf("monotonic property went from %v to %v", before, ns.monotonic())
			}
			if ns.LastGCVersion() != tt.wantGC || ns.MaxVersion() != tt.wantMax {
				t.Errorf("(gc, max) = %v, want (%d, %d)", ns.monotonic(), tt.wantGC, tt.wantMax)
			}
			if diff := cmp.Diff(tt.want, entries(ns)); diff != "" {
				t.Errorf("entries mismatch (-want +got):\n%s", diff)
			}
			if wantHB := uint64(42); status == deltaApplyAfterReset {
				if ns.Heartbeat() != 0 {
					t.Errorf("heartbeat after reset = %d, want 0 (docs/PROTOCOL.md §5.2)", ns.Heartbeat())
				}
			} else if ns.Heartbeat() != wantHB {
				t.Errorf("heartbeat = %d, want %d", ns.Heartbeat(), wantHB)
			}
		})
	}
}

// Deleted mutations applied by gossip carry the receiver's clock.
func TestApplyDeltaStampsTombstones(t *testing.T) {
	ns := testState()
	d := NodeDelta{ID: ns.ID(), MaxVersion: 2, KeyValues: []KeyValueMutation{kv("a", "", 1, StatusDeleted), kv("b", "v", 2, StatusDeleteAfterTTL)}}
	ns.applyDelta(t0, &d, ns.classify(&d), nil)
	for _, k := range []string{"a", "b"} {
		if got := raw(t, ns, k).MarkedAt; !got.Equal(t0) {
			t.Errorf("%s MarkedAt = %v, want %v", k, got, t0)
		}
	}
}

// T60 test_node_set_delete
func TestT60_SetDelete(t *testing.T) {
	e := newEngine(t, forTest(1))
	_ = e.Set("key_a", "val_b")
	e.Delete(t0, "key_a")
	if _, ok := e.Get("key_a"); ok {
		t.Error("Get(key_a) found a deleted key")
	}
}

// T61 test_node_set_delete_after_ttl_set
func TestT61_SetDeleteAfterTTLSet(t *testing.T) {
	e := newEngine(t, forTest(1))
	_ = e.Set("key_a", "val_b")
	e.DeleteAfterTTL(t0, "key_a")
	_ = e.Set("key_a", "val_b2")
	if got := raw(t, e.selfState(), "key_a"); got.Status != StatusSet || !got.MarkedAt.IsZero() {
		t.Errorf("entry = %+v, want status Set without timestamp", got)
	}
}

// T62 test_node_set_with_ttl
func TestT62_SetWithTTL(t *testing.T) {
	e := newEngine(t, forTest(1))
	var events []KeyChange
	e.Subscribe("", func(c KeyChange) { events = append(events, c) })
	if err := e.SetWithTTL(t0, "key_a", "val_b"); err != nil {
		t.Fatal(err)
	}
	want := VersionedValue{Value: "val_b", Version: 1, Status: StatusDeleteAfterTTL, MarkedAt: t0}
	if diff := cmp.Diff(want, raw(t, e.selfState(), "key_a")); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	// The same value again is a no-op: the TTL is not refreshed (docs/PROTOCOL.md §2.2).
	if err := e.SetWithTTL(t0.Add(time.Hour), "key_a", "val_b"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, raw(t, e.selfState(), "key_a")); diff != "" {
		t.Errorf("after a second SetWithTTL (-want +got):\n%s", diff)
	}
	if len(events) != 1 {
		t.Errorf("%d events, want 1 (SetWithTTL notifies once)", len(events))
	}
}

func TestHeartbeats(t *testing.T) {
	ns := testState()
	if ns.trySetHeartbeat(5) {
		t.Error("first heartbeat reported as an update")
	}
	if ns.trySetHeartbeat(5) || ns.trySetHeartbeat(4) {
		t.Error("a heartbeat that is not larger reported as an update")
	}
	if !ns.trySetHeartbeat(6) || ns.Heartbeat() != 6 {
		t.Errorf("heartbeat 6 not an update (heartbeat %d)", ns.Heartbeat())
	}
	ns.heartbeat = ^uint64(0)
	defer func() {
		if recover() == nil {
			t.Error("heartbeat overflow did not panic")
		}
	}()
	ns.incHeartbeat()
}

// Clone is deep and detached from the engine's bookkeeping (the listener
// registry among it); a clone of a clone is one too.
func TestNodeStateClone(t *testing.T) {
	ns := testState()
	ns.set("a", "1")
	c := ns.Clone()
	ns.set("a", "2")
	if v, _ := c.Get("a"); v != "1" {
		t.Errorf("clone sees %q after the original changed", v)
	}
	if c.nodeLocal != nil {
		t.Error("clone keeps the engine's bookkeeping")
	}
	cc := c.Clone()
	if v, _ := cc.Get("a"); v != "1" || cc.nodeLocal != nil || cc.ID() != ns.ID() || cc.MaxVersion() != c.MaxVersion() {
		t.Errorf("clone of a clone: a=%q, bookkeeping %v, id %v, max version %d", v, cc.nodeLocal != nil, cc.ID(), cc.MaxVersion())
	}
}

// staleKeyValues is appendStaleKeyValues into a new slice.
func (ns *NodeState) staleKeyValues(floor uint64) []KeyValueMutation {
	return ns.appendStaleKeyValues(nil, floor)
}
