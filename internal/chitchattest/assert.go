package chitchattest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// Eventually checks cond at once, then every interval of virtual time,
// until it holds, and returns the virtual time that took. It fails the test
// (t.Fatalf) if cond still does not hold after timeout. Inside a synctest
// bubble time.Sleep only advances the fake clock, so Eventually costs no
// wall-clock time.
func Eventually(t testing.TB, timeout, interval time.Duration, cond func() bool) time.Duration {
	t.Helper()
	return EventuallyNoError(t, timeout, interval, func() error {
		if cond() {
			return nil
		}
		return fmt.Errorf("condition false")
	})
}

// EventuallyNoError is Eventually for a check returning an error (nil when
// satisfied); on timeout the last error is reported.
func EventuallyNoError(t testing.TB, timeout, interval time.Duration, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		err := check()
		elapsed := time.Since(start)
		if err == nil {
			return elapsed
		}
		if elapsed >= timeout {
			t.Fatalf("not satisfied within %v (virtual): %v", timeout, err)
			return elapsed // only reached with a TB whose Fatalf returns
		}
		time.Sleep(min(interval, timeout-elapsed))
	}
}

// Predicate is a condition on a node state, as upstream's simulator
// NodeStatePredicate.
type Predicate struct {
	desc string
	f    func(*chitchat.NodeState) bool
}

func (p Predicate) String() string { return p.desc }

// EqualKeyValue holds when the raw entry of key (tombstones included)
// exists and its value is value.
func EqualKeyValue(key, value string) Predicate {
	return Predicate{fmt.Sprintf("%s == %q", key, value), func(ns *chitchat.NodeState) bool {
		v, ok := ns.GetVersioned(key)
		return ok && v.Value == value
	}}
}

// KeyPresent holds when the existence of key's raw entry is present: a
// tombstone counts as present.
func KeyPresent(key string, present bool) Predicate {
	return Predicate{fmt.Sprintf("present(%s) == %v", key, present), func(ns *chitchat.NodeState) bool {
		_, ok := ns.GetVersioned(key)
		return ok == present
	}}
}

// KeyMarkedDeleted holds when key's raw entry exists and whether it is a
// tombstone equals deleted.
func KeyMarkedDeleted(key string, deleted bool) Predicate {
	return Predicate{fmt.Sprintf("deleted(%s) == %v", key, deleted), func(ns *chitchat.NodeState) bool {
		v, ok := ns.GetVersioned(key)
		return ok && v.IsDeleted() == deleted
	}}
}

// CheckNodeState checks once that node i has a state for of and that p
// holds on it; the error says what was found otherwise.
func (c *Cluster) CheckNodeState(i int, of chitchat.NodeID, p Predicate) error {
	srv := c.nodes[i].srv
	if srv == nil {
		return fmt.Errorf("node %d is stopped", i)
	}
	ns, ok := srv.NodeState(of)
	if !ok {
		return fmt.Errorf("node %d (%s) has no state for %v (want %v)", i, c.ID(i).Name, of, p)
	}
	if !p.f(ns) {
		var entries []string
		for k, v := range ns.AllKeyValues() {
			entries = append(entries, fmt.Sprintf("%s=%q@%d/%v", k, v.Value, v.Version, v.Status))
			if len(entries) == 8 {
				entries = append(entries, "…")
				break
			}
		}
		return fmt.Errorf("node %d (%s) view of %s: want %v; max version %d, entries %v",
			i, c.ID(i).Name, of.Name, p, ns.MaxVersion(), entries)
	}
	return nil
}

// AssertNodeState checks once, reporting a failure with t.Errorf.
func (c *Cluster) AssertNodeState(i int, of chitchat.NodeID, p Predicate) {
	c.t.Helper()
	if err := c.CheckNodeState(i, of, p); err != nil {
		c.t.Errorf("%v (at %v virtual)", err, c.Elapsed())
	}
}

// EventuallyNodeState polls CheckNodeState every 100 ms of virtual time
// (upstream's simulator period) until it passes, failing the test after
// timeout. It returns the virtual time it took.
func (c *Cluster) EventuallyNodeState(i int, of chitchat.NodeID, p Predicate, timeout time.Duration) time.Duration {
	c.t.Helper()
	return EventuallyNoError(c.t, timeout, 100*time.Millisecond, func() error { return c.CheckNodeState(i, of, p) })
}

// Status is what a node thinks of another, as upstream's simulator
// NodeStatusAssert.
type Status int

const (
	// Live: the node is in LiveNodeIDs and has a state.
	Live Status = iota + 1
	// Dead: the node is in DeadNodeIDs and has a state.
	Dead
	// Absent: no state, neither live nor dead (never known, or garbage
	// collected).
	Absent
)

func (s Status) String() string {
	switch s {
	case Live:
		return "live"
	case Dead:
		return "dead"
	case Absent:
		return "absent"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// CheckStatus checks once what node i thinks of of.
func (c *Cluster) CheckStatus(i int, of chitchat.NodeID, want Status) error {
	srv := c.nodes[i].srv
	if srv == nil {
		return fmt.Errorf("node %d is stopped", i)
	}
	// One snapshot, so that the three facts are consistent.
	snap := srv.Snapshot()
	_, hasState := snap.Node(of)
	live := slices.Contains(snap.Live, of)
	dead := slices.Contains(snap.Dead, of)
	var ok bool
	switch want {
	case Live:
		ok = live && hasState
	case Dead:
		ok = dead && hasState
	case Absent:
		ok = !hasState && !live && !dead
	}
	if !ok {
		return fmt.Errorf("node %d (%s) view of %s: want %v; state=%v live=%v dead=%v",
			i, c.ID(i).Name, of.Name, want, hasState, live, dead)
	}
	return nil
}

// AssertStatus checks once, reporting a failure with t.Errorf.
func (c *Cluster) AssertStatus(i int, of chitchat.NodeID, want Status) {
	c.t.Helper()
	if err := c.CheckStatus(i, of, want); err != nil {
		c.t.Errorf("%v (at %v virtual)", err, c.Elapsed())
	}
}

// EventuallyStatus polls CheckStatus every 100 ms of virtual time until it
// passes, failing the test after timeout.
func (c *Cluster) EventuallyStatus(i int, of chitchat.NodeID, want Status, timeout time.Duration) time.Duration {
	c.t.Helper()
	return EventuallyNoError(c.t, timeout, 100*time.Millisecond, func() error { return c.CheckStatus(i, of, want) })
}
