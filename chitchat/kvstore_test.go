package chitchat

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"pgregory.net/rapid"
)

// checkKVStore returns what is wrong with the store of ns: a key twice, an
// index that does not map every key to its position, an index missing
// above kvIndexMin entries, an empty store left allocated, a fingerprint
// that is not the XOR of the Set entries' hashes.
func checkKVStore(ns *NodeState) error {
	s := ns.kvs
	var fp uint64
	if s == nil {
		if ns.fp() != 0 {
			return fmt.Errorf("fingerprint %016x without keys", ns.fp())
		}
		return nil
	}
	if len(s.entries) == 0 {
		return errors.New("an empty store is allocated")
	}
	seen := make(map[string]int, len(s.entries))
	for i, e := range s.entries {
		if j, dup := seen[e.key]; dup {
			return fmt.Errorf("key %q at positions %d and %d", e.key, j, i)
		}
		seen[e.key] = i
		fp ^= fpShare(e.key, e.v)
	}
	if fp != ns.fp() {
		return fmt.Errorf("fingerprint %016x, the entries give %016x", ns.fp(), fp)
	}
	switch {
	case s.index == nil && len(s.entries) > kvIndexMin:
		return fmt.Errorf("%d entries and no index", len(s.entries))
	case s.index != nil && len(s.index) != len(s.entries):
		return fmt.Errorf("index of %d keys for %d entries", len(s.index), len(s.entries))
	}
	for k, i := range s.index {
		if j, ok := seen[k]; !ok || j != int(i) {
			return fmt.Errorf("index maps %q to %d, its entry is at %d (present %v)", k, i, j, ok)
		}
	}
	return nil
}

// storeKey is the k-th key of the store tests: short keys sharing
// prefixes, so that Prefix and key order have something to sort.
func storeKey(k int) string { return fmt.Sprintf("k%d", k) }

// The store answers for every key, through the index or without it, as the
// entries grow past kvIndexMin and shrink back below kvIndexDrop.
func TestKVStoreIndexFollowsSize(t *testing.T) {
	tests := []struct {
		name      string
		keys      int // set keys 0..keys-1
		removed   int // then remove keys 0..removed-1
		wantIndex bool
	}{
		{"one key", 1, 0, false},
		{"at the threshold", kvIndexMin, 0, false},
		{"past the threshold", kvIndexMin + 1, 0, true},
		{"many", 1000, 0, true},
		{"shrunk, above the drop", 2 * kvIndexMin, 2*kvIndexMin - kvIndexDrop - 1, true},
		{"shrunk to the drop", 2 * kvIndexMin, 2*kvIndexMin - kvIndexDrop, false},
		{"emptied", 2 * kvIndexMin, 2 * kvIndexMin, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns := newNodeState(id(1))
			for k := range tt.keys {
				ns.set(storeKey(k), fmt.Sprint(k))
			}
			for k := range tt.removed {
				ns.remove(storeKey(k))
			}
			if err := checkKVStore(ns); err != nil {
				t.Fatal(err)
			}
			if got := ns.kvs != nil && ns.kvs.index != nil; got != tt.wantIndex {
				t.Errorf("index built: %v, want %v", got, tt.wantIndex)
			}
			if got, want := ns.kvs.len(), tt.keys-tt.removed; got != want {
				t.Errorf("%d entries, want %d", got, want)
			}
			for k := range tt.keys + 1 {
				v, ok := ns.Get(storeKey(k))
				if want := k >= tt.removed && k < tt.keys; ok != want || (ok && v != fmt.Sprint(k)) {
					t.Errorf("Get(%q) = %q, %v; want present %v", storeKey(k), v, ok, want)
				}
			}
		})
	}
}

// A node whose last key is collected holds no store again.
func TestKVStoreFreedWhenEmpty(t *testing.T) {
	ns := newNodeState(id(1))
	ns.set("a", "1")
	ns.delete(t0, "a")
	ns.gcKeys(t0.Add(time.Hour), time.Minute)
	if ns.kvs != nil || ns.fp() != 0 {
		t.Errorf("after its last key was collected the node holds %v (fingerprint %016x)", ns.kvs, ns.fp())
	}
	if ns.lastGCVersion != 2 {
		t.Errorf("last GC version %d, want 2", ns.lastGCVersion)
	}
}

// storeCopy is a copy taken by Clone and the entries it held then.
type storeCopy struct {
	ns   *NodeState
	want map[string]VersionedValue
}

// TestPropKVStoreMatchesMap drives one NodeState's key-value store through
// writes, removals, collections and copies against a plain map: the
// entries, lookups, key-order iteration, version-order deltas, counts and
// fingerprint always agree with the map, the store's own invariants hold,
// and every copy keeps the entries it had when taken whatever the owner
// does later (copy-on-write).
func TestPropKVStoreMatchesMap(t *testing.T) {
	const keys = 3 * kvIndexMin // enough to build and drop the index
	rapid.Check(t, func(t *rapid.T) {
		ns := newNodeState(id(1))
		model := map[string]VersionedValue{}
		var copies []storeCopy
		version := uint64(0) // unique versions: delta order is total
		now := t0
		key := func() string { return storeKey(rapid.IntRange(0, keys-1).Draw(t, "key")) }
		t.Repeat(map[string]func(*rapid.T){
			"put": func(t *rapid.T) {
				k := key()
				version++
				v := VersionedValue{
					Value:   rapid.SampledFrom([]string{"", "a", "b"}).Draw(t, "value"),
					Version: version,
					Status:  rapid.SampledFrom([]Status{StatusSet, StatusDeleted, StatusDeleteAfterTTL}).Draw(t, "status"),
				}
				if v.Status != StatusSet {
					v.MarkedAt = now
				}
				ns.put(k, v)
				model[k] = v
			},
			"put-many": func(t *rapid.T) {
				for range rapid.IntRange(1, keys).Draw(t, "n") {
					k := key()
					version++
					v := VersionedValue{Value: k, Version: version}
					ns.put(k, v)
					model[k] = v
				}
			},
			"remove": func(t *rapid.T) {
				k := key()
				ns.remove(k)
				delete(model, k)
			},
			"remove-where": func(t *rapid.T) {
				m := uint64(rapid.IntRange(1, 3).Draw(t, "modulus"))
				ns.removeWhere(func(_ string, v VersionedValue) bool { return v.Version%m == 0 })
				maps.DeleteFunc(model, func(_ string, v VersionedValue) bool { return v.Version%m == 0 })
			},
			"gc": func(t *rapid.T) {
				now = now.Add(time.Duration(rapid.IntRange(0, 3).Draw(t, "seconds")) * time.Second)
				const grace = 2 * time.Second
				gc := ns.lastGCVersion
				for k, v := range model {
					if v.Status != StatusSet && !now.Before(v.MarkedAt.Add(grace)) {
						gc = max(gc, v.Version)
						delete(model, k)
					}
				}
				ns.gcKeys(now, grace)
				if ns.lastGCVersion != gc {
					t.Fatalf("last GC version %d, want %d", ns.lastGCVersion, gc)
				}
			},
			"clear": func(*rapid.T) {
				ns.clearKVs()
				clear(model)
			},
			"clone": func(*rapid.T) {
				copies = append(copies, storeCopy{ns.Clone(), maps.Clone(model)})
			},
			"": func(t *rapid.T) {
				if err := checkKVStore(ns); err != nil {
					t.Fatal(err)
				}
				checkAgainstMap(t, ns, model)
				for i, c := range copies {
					if diff := gocmp.Diff(c.want, maps.Collect(c.ns.AllKeyValues())); diff != "" {
						t.Fatalf("copy %d changed after it was taken (-then +now):\n%s", i, diff)
					}
					if err := checkKVStore(c.ns); err != nil {
						t.Fatalf("copy %d: %v", i, err)
					}
				}
			},
		})
	})
}

// checkAgainstMap compares every reader of ns's keys with model.
func checkAgainstMap(t *rapid.T, ns *NodeState, model map[string]VersionedValue) {
	if diff := gocmp.Diff(model, maps.Collect(ns.AllKeyValues()), cmpopts.EquateEmpty()); diff != "" {
		t.Fatalf("entries differ from the map (-map +store):\n%s", diff)
	}
	var order, live, prefixed []string
	for k := range ns.AllKeyValues() {
		order = append(order, k)
	}
	for k := range ns.KeyValues() {
		live = append(live, k)
	}
	for k := range ns.Prefix("k1") {
		prefixed = append(prefixed, k)
	}
	var wantLive, wantPrefixed []string
	for _, k := range slices.Sorted(maps.Keys(model)) {
		if !model[k].IsDeleted() {
			wantLive = append(wantLive, k)
			if len(k) >= 2 && k[:2] == "k1" {
				wantPrefixed = append(wantPrefixed, k)
			}
		}
	}
	if want := slices.Sorted(maps.Keys(model)); !slices.Equal(order, want) {
		t.Fatalf("AllKeyValues yields %q, want %q", order, want)
	}
	if !slices.Equal(live, wantLive) || !slices.Equal(prefixed, wantPrefixed) {
		t.Fatalf("KeyValues yields %q, Prefix(k1) %q; want %q, %q", live, prefixed, wantLive, wantPrefixed)
	}
	if got := ns.NumKeyValues(); got != len(wantLive) {
		t.Fatalf("NumKeyValues = %d, want %d", got, len(wantLive))
	}
	if ns.kvs.len() != len(model) {
		t.Fatalf("%d entries, want %d", ns.kvs.len(), len(model))
	}
	for k := range 3 * kvIndexMin {
		got, ok := ns.GetVersioned(storeKey(k))
		want, wantOK := model[storeKey(k)]
		if ok != wantOK || got != want {
			t.Fatalf("GetVersioned(%q) = %+v, %v; want %+v, %v", storeKey(k), got, ok, want, wantOK)
		}
	}
	// Deltas: entries above a floor in version order, and their count.
	var versions []uint64
	for _, v := range model {
		versions = append(versions, v.Version)
	}
	slices.Sort(versions)
	floor := uint64(0)
	if len(versions) > 0 {
		floor = versions[len(versions)/2]
	}
	var want []KeyValueMutation
	for k, v := range model {
		if v.Version > floor {
			want = append(want, KeyValueMutation{Key: k, Value: v.Value, Version: v.Version, Status: v.Status})
		}
	}
	slices.SortFunc(want, func(a, b KeyValueMutation) int { return cmp.Compare(a.Version, b.Version) })
	if diff := gocmp.Diff(want, ns.appendStaleKeyValues(nil, floor)); diff != "" {
		t.Fatalf("entries above version %d differ (-map +store):\n%s", floor, diff)
	}
	if got := ns.numStale(floor); got != len(want) {
		t.Fatalf("numStale(%d) = %d, want %d", floor, got, len(want))
	}
}

// A copy shares its state's key store until the state writes (ownKVs); the
// fingerprint lives in the store, so a write that replaces a key's value
// must clone the store before it touches the fingerprint, or the copy's
// store (published, read by other goroutines) changes under its readers
// and no longer matches its entries.
func TestKVStoreCopyKeepsItsFingerprint(t *testing.T) {
	ns := newNodeState(NodeID{Name: "n", Generation: 1})
	ns.set("a", "1")
	ns.set("b", "2")
	c := ns.Clone()
	before := c.fp()
	ns.set("a", "3") // replaces an entry: put
	ns.remove("b")   // removes one: removeAt
	ns.set("c", "4") // appends one
	if err := checkKVStore(c); err != nil || c.fp() != before {
		t.Errorf("the copy after its state's writes: %v, fingerprint %016x, want %016x", err, c.fp(), before)
	}
	if err := checkKVStore(ns); err != nil {
		t.Errorf("the state after its writes: %v", err)
	}
}
