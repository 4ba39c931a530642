package sim

import (
	"slices"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// KnowsAll reports whether node i holds a state for every up node.
func (s *Sim) KnowsAll(i int) bool {
	ids := s.nodes[i].Engine.NodeIDs()
	have := make(map[chitchat.NodeID]bool, len(ids))
	for _, id := range ids {
		have[id] = true
	}
	for _, n := range s.nodes {
		if n.up && !have[n.Engine.Self()] {
			return false
		}
	}
	return true
}

// SeesLive reports whether node i deems live exactly the up nodes.
func (s *Sim) SeesLive(i int) bool {
	live := s.nodes[i].Engine.LiveNodes()
	up := 0
	for _, n := range s.nodes {
		if n.up {
			up++
		}
	}
	if len(live) != up {
		return false
	}
	for _, id := range live {
		n, ok := s.byAddr[id.Addr]
		if !ok || !n.up || n.Engine.Self() != id {
			return false
		}
	}
	return true
}

// All reports whether pred holds for every up node.
func (s *Sim) All(pred func(i int) bool) bool {
	for _, n := range s.nodes {
		if n.up && !pred(n.Index) {
			return false
		}
	}
	return true
}

// HasValue reports whether node i sees key=value on owner's state.
func (s *Sim) HasValue(i, owner int, key, value string) bool {
	ns, ok := s.nodes[i].Engine.NodeState(s.nodes[owner].Engine.Self())
	if !ok {
		return false
	}
	v, ok := ns.Get(key)
	return ok && v == value
}

// DeemsDead reports whether node i's failure detector deems node j dead
// (or has forgotten it).
func (s *Sim) DeemsDead(i, j int) bool {
	return !slices.Contains(s.nodes[i].Engine.LiveNodes(), s.nodes[j].Engine.Self())
}
