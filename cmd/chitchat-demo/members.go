package main

import (
	"github.com/gossipkit/chitchat-go/chitchat"
	"github.com/gossipkit/chitchat-go/internal/minihttp"
)

// Serf member statuses, as Consul reports them.
const (
	memberAlive  = 1
	memberLeft   = 3
	memberFailed = 4
)

// member is one entry of Consul's GET /v1/agent/members, as cascade serves
// it over serf (seed 004). Only the fields chitchat can fill truthfully are
// present: there is no protocol or delegate version to report.
type member struct {
	Name   string
	Addr   string            // IP of the gossip address
	Port   uint16            // port of the gossip address
	Tags   map[string]string // the node's keys (tombstones and the library's internal keys excluded)
	Status int               // 1 alive, 3 left (gracefully), 4 failed (dead)
}

// members answers Consul's GET /v1/agent/members, read-only: every node
// this node knows, itself included, ordered by name (then generation: a
// restarted node is listed once per incarnation until the old one is
// forgotten).
func (a *api) members(w minihttp.ResponseWriter, _ *minihttp.Request) {
	a.writeIndented(w, jsonContentType, agentMembers(a.srv.Snapshot()))
}

func agentMembers(s chitchat.Snapshot) []member {
	status := make(map[chitchat.NodeID]int, len(s.Live)+len(s.Left))
	for _, id := range s.Live {
		status[id] = memberAlive
	}
	for _, id := range s.Left {
		status[id] = memberLeft
	}
	out := make([]member, 0, len(s.Nodes))
	for _, ns := range s.Nodes {
		id := ns.ID()
		m := member{
			Name:   id.Name,
			Addr:   id.Addr.Addr().String(),
			Port:   id.Addr.Port(),
			Tags:   make(map[string]string),
			Status: memberFailed,
		}
		if st, ok := status[id]; ok {
			m.Status = st
		}
		for k, v := range ns.KeyValues() {
			if !isInternalKey(k) { // such as the leave marker: Status says it
				m.Tags[k] = v.Value
			}
		}
		out = append(out, m)
	}
	return out
}
