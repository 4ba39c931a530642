package chitchat

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"pgregory.net/rapid"
)

// A differential test of the owner's writes (docs/PROTOCOL.md §2.2, §6) against a
// naive map model, with a replica kept in sync by a handshake after every
// step: the replica must hold exactly the model's live (Set) entries.

type modelEntry struct {
	value   string
	version uint64
	status  Status
	marked  time.Time
}

// writeModel is the write API of docs/PROTOCOL.md §2.2, written as plainly as possible.
type writeModel struct {
	kvs    map[string]modelEntry
	max    uint64
	gc     uint64
	events int
}

func (m *writeModel) set(key, value string, status Status, now time.Time) {
	if e, ok := m.kvs[key]; ok && e.status == status && e.value == value {
		return // same value, same status: no new version, no event
	}
	m.max++
	e := modelEntry{value: value, version: m.max, status: status}
	if status != StatusSet {
		e.marked = now
	}
	m.kvs[key] = e
	m.events++
}

func (m *writeModel) delete(key string, status Status, now time.Time) bool {
	e, ok := m.kvs[key]
	if !ok {
		return false
	}
	m.max++
	value := e.value
	if status == StatusDeleted {
		value = ""
	}
	m.kvs[key] = modelEntry{value: value, version: m.max, status: status, marked: now}
	return true
}

func (m *writeModel) collect(now time.Time, grace time.Duration) {
	for k, e := range m.kvs {
		if e.status != StatusSet && !now.Before(e.marked.Add(grace)) {
			delete(m.kvs, k)
			m.gc = max(m.gc, e.version)
		}
	}
}

// live returns the model's entries with status Set.
func (m *writeModel) live() map[string]string {
	out := map[string]string{}
	for k, e := range m.kvs {
		if e.status == StatusSet {
			out[k] = e.value
		}
	}
	return out
}

func setEntries(ns *NodeState) map[string]string {
	out := map[string]string{}
	for k, v := range ns.AllKeyValues() {
		if v.Status == StatusSet {
			out[k] = v.Value
		}
	}
	return out
}

func TestPropOwnerWritesMatchModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const grace = 10 * time.Second
		cfg := forTest(1)
		cfg.MarkedForDeletionGracePeriod = grace
		owner, err := NewEngine(cfg, rand.New(rand.NewPCG(1, 1)), nil)
		if err != nil {
			t.Fatal(err)
		}
		replica, err := NewEngine(forTest(2), rand.New(rand.NewPCG(2, 2)), nil)
		if err != nil {
			t.Fatal(err)
		}
		events := 0
		owner.Subscribe("", func(KeyChange) { events++ })
		m := &writeModel{kvs: map[string]modelEntry{}}
		now := t0
		key := func() string { return fmt.Sprintf("k%d", rapid.IntRange(0, 4).Draw(t, "key")) }
		value := func() string { return rapid.SampledFrom([]string{"", "a", "b"}).Draw(t, "value") }
		t.Repeat(map[string]func(*rapid.T){
			"set": func(t *rapid.T) {
				k, v := key(), value()
				if err := owner.Set(k, v); err != nil {
					t.Fatal(err)
				}
				m.set(k, v, StatusSet, now)
			},
			"set-with-ttl": func(t *rapid.T) {
				k, v := key(), value()
				if err := owner.SetWithTTL(now, k, v); err != nil {
					t.Fatal(err)
				}
				m.set(k, v, StatusDeleteAfterTTL, now)
			},
			"delete": func(t *rapid.T) {
				k := key()
				if got, want := owner.Delete(now, k), m.delete(k, StatusDeleted, now); got != want {
					t.Fatalf("Delete(%q) = %v, model %v", k, got, want)
				}
			},
			"delete-after-ttl": func(t *rapid.T) {
				k := key()
				if got, want := owner.DeleteAfterTTL(now, k), m.delete(k, StatusDeleteAfterTTL, now); got != want {
					t.Fatalf("DeleteAfterTTL(%q) = %v, model %v", k, got, want)
				}
			},
			"advance": func(t *rapid.T) {
				now = now.Add(time.Duration(rapid.IntRange(0, 15).Draw(t, "seconds")) * time.Second)
			},
			"gc": func(*rapid.T) {
				owner.GCKeys(now)
				m.collect(now, grace)
			},
			"": func(t *rapid.T) {
				ns := owner.selfState()
				got := map[string]modelEntry{}
				for k, v := range ns.AllKeyValues() {
					got[k] = modelEntry{value: v.Value, version: v.Version, status: v.Status, marked: v.MarkedAt}
				}
				if diff := cmp.Diff(m.kvs, got, cmp.AllowUnexported(modelEntry{})); diff != "" {
					t.Fatalf("owner entries differ from the model (-model +owner):\n%s", diff)
				}
				if ns.MaxVersion() != m.max || ns.LastGCVersion() != m.gc || events != m.events {
					t.Fatalf("owner (gc %d, max %d, %d events), model (gc %d, max %d, %d events)",
						ns.LastGCVersion(), ns.MaxVersion(), events, m.gc, m.max, m.events)
				}
				for k, e := range m.kvs {
					v, ok := owner.Get(k)
					if want := e.status != StatusDeleted; ok != want || (ok && v != e.value) {
						t.Fatalf("Get(%q) = %q, %v; model %+v", k, v, ok, e)
					}
				}
				handshake(t, now, replica, owner)
				view, _ := replica.NodeState(owner.Self())
				if diff := cmp.Diff(m.live(), setEntries(view)); diff != "" {
					t.Fatalf("replica's live entries differ from the model (-model +replica):\n%s", diff)
				}
			},
		})
	})
}
