package chitchat

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// How scenarios print what they show: a node's view, a delivered message.

// stateLine is the first line of a node's view: "NAME STATUS heartbeat=H
// max_version=M last_gc_version=G", and the phi n's failure detector
// gives the node now, when it has one.
func (env *scenarioEnv) stateLine(n *scenarioNode, s *Snapshot, ns *NodeState) string {
	id := ns.ID()
	status := "new"
	switch {
	case id == s.Self:
		status = "self"
	case slices.Contains(s.Left, id):
		status = "left"
	case slices.Contains(s.ScheduledForDeletion, id):
		status = "dead (scheduled for deletion)"
	case slices.Contains(s.Dead, id):
		status = "dead"
	case slices.Contains(s.Live, id):
		status = "live"
	}
	line := fmt.Sprintf("%s %s heartbeat=%d max_version=%d last_gc_version=%d",
		confNodeName(id), status, ns.Heartbeat(), ns.MaxVersion(), ns.LastGCVersion())
	// A left node is out of the failure detector's hands: its window is
	// kept (in case the leave was forged) but judges nothing.
	if held, ok := n.e.lookup(id); ok && id != s.Self && !held.left {
		if phi, ok := n.e.fd.Phi(held.slot, env.now); ok {
			line += fmt.Sprintf(" phi=%.2f", phi)
		}
	}
	return line
}

// printMessage renders a delivered datagram: a header line, then the
// coverage and its summaries, one line per digest entry and per node
// delta, each delta's entries below it. A message whose marked sender is
// not the node it came from says so. Node deltas are listed in node-id
// order: the order on the wire ranks the stalest nodes first but shuffles
// ties at random.
func (env *scenarioEnv) printMessage(d confDatagram, m Message) []string {
	out := []string{fmt.Sprintf("%s->%s %v (%d bytes)", d.from.name, d.to.name, m.Type(), len(d.b))}
	var digest Digest
	var delta Delta
	var cover *Coverage
	sender, hasSender := NodeID{}, false
	switch m := m.(type) {
	case *Syn:
		out[0] += " cluster=" + m.ClusterID
		if m.Pad > 0 {
			out[0] += fmt.Sprintf(" pad=%d", m.Pad)
		}
		digest, cover, sender, hasSender = m.Digest, m.Cover, m.Sender, true
	case *SynAck:
		digest, delta, cover, sender, hasSender = m.Digest, m.Delta, m.Cover, m.Sender, true
		if m.Echo != nil {
			out = append(out, fmt.Sprintf("  echo max_version=%d last_gc_version=%d fingerprint=%016x", m.Echo.MaxVersion, m.Echo.LastGCVersion, m.Echo.Fingerprint))
		}
	case *Ack:
		delta = m.Delta
	case *Push:
		out[0] += " cluster=" + m.ClusterID
		if m.Range != nil {
			r := *m.Range
			if r.AfterRecipient {
				r.After = ringBound(nodeRef(d.to.e.Self())) // as the recipient resolves it
			}
			out = append(out, "  "+env.rangeLine(r))
		}
		for _, n := range m.Notices {
			out = append(out, fmt.Sprintf("  notice %v %s heartbeat=%d", n.Kind, confNodeName(n.ID), n.Heartbeat))
		}
		delta = m.Delta
	}
	if hasSender && sender != d.from.e.Self() {
		if sender == (NodeID{}) {
			out[0] += " sender=none"
		} else {
			out[0] += " sender=" + confNodeName(sender)
		}
	}
	if cover != nil {
		out = append(out, fmt.Sprintf("  cover bits=%d first=%d count=%d", cover.Bits, cover.First, cover.Count))
		for _, s := range cover.Summaries {
			out = append(out, fmt.Sprintf("  summary bucket=%d nodes=%d", s.Bucket, len(s.Heartbeats)))
		}
	}
	for _, e := range digest {
		out = append(out, fmt.Sprintf("  digest %s heartbeat=%d max_version=%d last_gc_version=%d",
			confNodeName(e.ID), e.Heartbeat, e.MaxVersion, e.LastGCVersion))
	}
	nodes := slices.Clone(delta.Nodes)
	slices.SortFunc(nodes, func(a, b NodeDelta) int { return a.ID.Compare(b.ID) })
	for _, nd := range nodes {
		name := confNodeName(nd.ID)
		if nd.Ref != 0 {
			name = env.refName(nd.Ref) + " (by ref)"
		}
		line := fmt.Sprintf("  delta %s from_version=%d max_version=%d last_gc_version=%d",
			name, nd.FromVersionExcluded, nd.MaxVersion, nd.LastGCVersion)
		if nd.FromVersionExcluded == 0 && nd.LastGCVersion > 0 {
			line += " (reset)"
		}
		out = append(out, line)
		for _, kv := range nd.KeyValues {
			out = append(out, "    "+confKV(kv.Key, kv.Value, kv.Version, kv.Status))
		}
	}
	switch m.(type) {
	case *SynAck, *Ack:
		if len(digest) == 0 && len(delta.Nodes) == 0 {
			out = append(out, "  (empty)")
		}
	}
	return out
}

// rangeHolds reports whether ref is in r as docs/PROTOCOL.md §16.2 defines
// it: after After, up to and including Upto, wrapping; After == Upto is the
// whole ring but After.
func rangeHolds(r RingRange, ref uint64) bool {
	switch {
	case r.After == r.Upto:
		return ref != r.After && ref|0xffff_ffff != r.After
	case r.After < r.Upto:
		return ref > r.After && ref <= r.Upto
	}
	return ref > r.After || ref <= r.Upto
}

// rangeLine renders a push's forwarding duty: its ends, by name when they
// are a node's ref, and the scenario's nodes in it, in ring order.
// refName returns the name of the scenario's node whose ref is ref, or
// the ref in hex.
func (env *scenarioEnv) refName(ref uint64) string {
	for _, n := range env.nodes {
		if nodeRef(n.e.Self()) == ref {
			return confNodeName(n.e.Self())
		}
	}
	return fmt.Sprintf("%016x", ref)
}

func (env *scenarioEnv) rangeLine(r RingRange) string {
	type member struct {
		ref  uint64
		name string
	}
	var ring []member
	for _, n := range env.nodes {
		ring = append(ring, member{nodeRef(n.e.Self()), n.name})
	}
	slices.SortFunc(ring, func(a, b member) int { return cmp.Compare(a.ref, b.ref) })
	end := func(bound uint64) string {
		for _, m := range ring {
			if ringBound(m.ref) == bound || upToBound(m.ref) == bound {
				return m.name
			}
		}
		return fmt.Sprintf("%016x", bound)
	}
	// Ring order from just after r.After.
	var in []string
	start := 0
	for start < len(ring) && ring[start].ref <= r.After {
		start++
	}
	for k := range ring {
		m := ring[(start+k)%len(ring)]
		if rangeHolds(r, m.ref) {
			in = append(in, m.name)
		}
	}
	return fmt.Sprintf("forward: the ring after %s up to %s (%s)", end(r.After), end(r.Upto), strings.Join(in, ", "))
}

func confKV(key, value string, version uint64, st Status) string {
	switch st {
	case StatusDeleted:
		return fmt.Sprintf("v%d %s deleted", version, key)
	case StatusDeleteAfterTTL:
		return fmt.Sprintf("v%d %s=%s ttl", version, key, value)
	}
	return fmt.Sprintf("v%d %s=%s", version, key, value)
}

// confNodeName is a node's name, with its generation when it is not 1.
func confNodeName(id NodeID) string {
	if id.Generation == 1 {
		return id.Name
	}
	return fmt.Sprintf("%s(gen %d)", id.Name, id.Generation)
}

func confJoinNames(ids []NodeID) string {
	var s []string
	for _, id := range ids {
		s = append(s, confNodeName(id))
	}
	return strings.Join(s, ",")
}
