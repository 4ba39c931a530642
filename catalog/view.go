package catalog

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// View is one node's catalog at one moment: every live or dead node (left
// nodes are not in it) with the services it announces and their health.
// A View is immutable; the Agent publishes a new one at every change.
//
// Change indexes: Index grows by one at every published change. Each part
// of the view (the node list, a node, the service list, a service's
// instances, a service's health) records the Index of its last change, so
// that a blocking query on a part returns when that part changes, in the
// manner of Consul's X-Consul-Index. Indexes are local to the agent: two
// nodes number their changes differently.
type View struct {
	// Index is the change index of the whole view; it starts at 1.
	Index uint64
	// NodesIndex is the Index of the last change of the node list (a node
	// appeared, went away, or changed address or generation).
	NodesIndex uint64
	// ServicesIndex is the Index of the last change of the service list
	// (names and tags).
	ServicesIndex uint64
	// Datacenter is Config.Datacenter.
	Datacenter string
	// Self is the agent's own node.
	Self chitchat.NodeID
	// Nodes holds every node, ordered by name.
	Nodes []*Node
	// Services holds every service name, ordered by lowercase name.
	Services []*ServiceSet

	nodes    map[string]*Node       // by lowercase name
	services map[string]*ServiceSet // by lowercase name
}

// Node is a node of the catalog.
type Node struct {
	// ID is the node's chitchat identity (the incarnation shown, when a
	// restarted node is still remembered under its previous generation).
	ID chitchat.NodeID
	// Addr is the IP of the node's gossip address.
	Addr netip.Addr
	// Live is false once the failure detector deems the node dead.
	Live bool
	// Services are the node's service instances, ordered by service ID.
	Services []*Instance
	// CreateIndex is the Index at which the node appeared; ModifyIndex the
	// Index of the last change of the node or of its services' definitions
	// (not of their health).
	CreateIndex, ModifyIndex uint64
	// LiveIndex is the Index of the last change of Live.
	LiveIndex uint64
}

// Name returns the node's name.
func (n *Node) Name() string { return n.ID.Name }

// Instance is one service on one node.
type Instance struct {
	Node    *Node
	Service Service // with ID set
	// Check is the last result of the service's check as its owner
	// published it; nil when the service has no check. A check without a
	// result yet is critical.
	Check *Result
	// CreateIndex is the Index at which the instance appeared, ModifyIndex
	// that of the last change of its definition, HealthIndex that of the
	// last change of its check result or of its node's liveness.
	CreateIndex, ModifyIndex, HealthIndex uint64
}

// noResult is the check result of a service whose owner has published
// none yet: critical, as a new check in Consul.
var noResult = Result{Status: Critical, Output: "no check result yet"}

// Addr returns where the instance listens: the service's address, or its
// node's.
func (i *Instance) Addr() netip.Addr {
	if i.Service.Address.IsValid() {
		return i.Service.Address
	}
	return i.Node.Addr
}

// Status returns the instance's aggregated health: critical if its node is
// dead, else its check's status (passing without a check).
func (i *Instance) Status() Status {
	if !i.Node.Live {
		return Critical
	}
	if i.Check != nil {
		return i.Check.Status
	}
	return Passing
}

// HasTags reports whether the instance has every tag of tags
// (case-insensitively, as Consul).
func (i *Instance) HasTags(tags ...string) bool {
	for _, t := range tags {
		if !slices.ContainsFunc(i.Service.Tags, func(s string) bool { return strings.EqualFold(s, t) }) {
			return false
		}
	}
	return true
}

// ServiceSet is every instance of one service name.
type ServiceSet struct {
	// Name is the name as the first instance spells it.
	Name string
	// Instances are ordered by node name, then service ID.
	Instances []*Instance
	// Tags is the sorted union of the instances' tags.
	Tags []string
	// CatalogIndex is the Index of the last change of the instances'
	// definitions or of the set of instances; HealthIndex also counts
	// changes of their health.
	CatalogIndex, HealthIndex uint64
}

// Select returns the instances having every tag of tags, only the passing
// ones if passingOnly.
func (s *ServiceSet) Select(tags []string, passingOnly bool) []*Instance {
	if s == nil {
		return nil
	}
	var out []*Instance
	for _, in := range s.Instances {
		if in.HasTags(tags...) && (!passingOnly || in.Status() == Passing) {
			out = append(out, in)
		}
	}
	return out
}

// Node returns the node called name (case-insensitively).
func (v *View) Node(name string) (*Node, bool) {
	n, ok := v.nodes[strings.ToLower(name)]
	return n, ok
}

// Service returns the instances of the service called name
// (case-insensitively), or nil if there are none.
func (v *View) Service(name string) *ServiceSet {
	return v.services[strings.ToLower(name)]
}

// ServiceIndex returns the index a blocking query on the service called
// name waits on: its HealthIndex if health is true, else its CatalogIndex;
// ServicesIndex while there is no such service (its appearance changes the
// service list).
func (v *View) ServiceIndex(name string, health bool) uint64 {
	s := v.Service(name)
	switch {
	case s == nil:
		return v.ServicesIndex
	case health:
		return s.HealthIndex
	default:
		return s.CatalogIndex
	}
}

// NodeIndex returns the index a blocking query on the node called name
// waits on: its ModifyIndex, or NodesIndex while there is no such node.
func (v *View) NodeIndex(name string) uint64 {
	if n, ok := v.Node(name); ok {
		return n.ModifyIndex
	}
	return v.NodesIndex
}

// SelfNode returns the agent's own node. It is missing only from the empty
// view an agent starts with.
func (v *View) SelfNode() (*Node, bool) {
	n, ok := v.nodes[strings.ToLower(v.Self.Name)]
	if !ok || n.ID != v.Self {
		return nil, false
	}
	return n, true
}
