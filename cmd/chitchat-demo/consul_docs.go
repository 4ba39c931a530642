package main

// The JSON documents of Consul's HTTP API, field for field as
// github.com/hashicorp/consul/api decodes them, rendered from a catalog
// view. Lists and maps are never null where Consul writes [] or {}.

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"

	"github.com/gossipkit/chitchat-go/catalog"
)

type (
	nodeDoc struct {
		ID              string
		Node            string
		Address         string
		Datacenter      string
		TaggedAddresses map[string]string
		Meta            map[string]string
		CreateIndex     uint64
		ModifyIndex     uint64
	}
	weightsDoc struct{ Passing, Warning int }
	// agentServiceDoc is Consul's AgentService (and NodeService).
	agentServiceDoc struct {
		ID                string
		Service           string
		Tags              []string
		Meta              map[string]string
		Port              int
		Address           string
		Weights           weightsDoc
		EnableTagOverride bool
		Datacenter        string
		CreateIndex       uint64 `json:",omitempty"`
		ModifyIndex       uint64 `json:",omitempty"`
	}
	catalogServiceDoc struct {
		ID                       string
		Node                     string
		Address                  string
		Datacenter               string
		TaggedAddresses          map[string]string
		NodeMeta                 map[string]string
		ServiceID                string
		ServiceName              string
		ServiceAddress           string
		ServiceTags              []string
		ServiceMeta              map[string]string
		ServicePort              int
		ServiceWeights           weightsDoc
		ServiceEnableTagOverride bool
		CreateIndex              uint64
		ModifyIndex              uint64
	}
	healthCheckDoc struct {
		Node        string
		CheckID     string
		Name        string
		Status      string
		Notes       string
		Output      string
		ServiceID   string
		ServiceName string
		ServiceTags []string
		Type        string
		Definition  checkDefinitionDoc
		CreateIndex uint64
		ModifyIndex uint64
	}
	checkDefinitionDoc struct {
		HTTP     string `json:",omitempty"`
		TCP      string `json:",omitempty"`
		Interval string `json:",omitempty"`
		Timeout  string `json:",omitempty"`
	}
	serviceEntryDoc struct {
		Node    nodeDoc
		Service agentServiceDoc
		Checks  []healthCheckDoc
	}
	catalogNodeDoc struct {
		Node     nodeDoc
		Services map[string]agentServiceDoc
	}
	// uiNodeDoc is an entry of Consul's /v1/internal/ui/nodes: a node with
	// its services and every check.
	uiNodeDoc struct {
		nodeDoc
		Services []agentServiceDoc
		Checks   []healthCheckDoc
	}
)

// nodeUUID derives a stable UUID-shaped ID for one node incarnation
// (Consul's node IDs are UUIDs; ours only need to be unique and stable).
func nodeUUID(n *catalog.Node) string {
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d", n.ID.Name, n.ID.Generation))
	h[6] = h[6]&0x0f | 0x80 // version 8: custom
	h[8] = h[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

func renderNode(v *catalog.View, n *catalog.Node) nodeDoc {
	addr := n.Addr.String()
	family := "ipv4"
	if n.Addr.Is6() {
		family = "ipv6"
	}
	return nodeDoc{
		ID:              nodeUUID(n),
		Node:            n.Name(),
		Address:         addr,
		Datacenter:      v.Datacenter,
		TaggedAddresses: map[string]string{"lan": addr, "lan_" + family: addr, "wan": addr, "wan_" + family: addr},
		Meta:            map[string]string{},
		CreateIndex:     n.CreateIndex,
		ModifyIndex:     n.ModifyIndex,
	}
}

func renderService(v *catalog.View, in *catalog.Instance) agentServiceDoc {
	s := in.Service
	d := agentServiceDoc{
		ID:          s.ID,
		Service:     s.Name,
		Tags:        nonNil(s.Tags),
		Meta:        nonNilMap(s.Meta),
		Port:        s.Port,
		Weights:     weightsDoc{Passing: 1, Warning: 1},
		Datacenter:  v.Datacenter,
		CreateIndex: in.CreateIndex,
		ModifyIndex: in.ModifyIndex,
	}
	if s.Address.IsValid() {
		d.Address = s.Address.String()
	}
	return d
}

func renderCatalogService(v *catalog.View, in *catalog.Instance) catalogServiceDoc {
	n := renderNode(v, in.Node)
	s := renderService(v, in)
	return catalogServiceDoc{
		ID: n.ID, Node: n.Node, Address: n.Address, Datacenter: n.Datacenter,
		TaggedAddresses: n.TaggedAddresses, NodeMeta: n.Meta,
		ServiceID: s.ID, ServiceName: s.Service, ServiceAddress: s.Address, ServiceTags: s.Tags,
		ServiceMeta: s.Meta, ServicePort: s.Port, ServiceWeights: s.Weights,
		CreateIndex: in.CreateIndex, ModifyIndex: in.ModifyIndex,
	}
}

// Serf's node check, as Consul reports it for every node.
const (
	serfCheckID     = "serfHealth"
	serfCheckName   = "Serf Health Status"
	serfAliveOutput = "Agent alive and reachable"
	serfDeadOutput  = "Agent not live or unreachable"
)

func serfCheck(n *catalog.Node) healthCheckDoc {
	d := healthCheckDoc{Node: n.Name(), CheckID: serfCheckID, Name: serfCheckName, Status: string(catalog.Passing),
		Output: serfAliveOutput, ServiceTags: []string{}, CreateIndex: n.CreateIndex, ModifyIndex: n.LiveIndex}
	if !n.Live {
		d.Status, d.Output = string(catalog.Critical), serfDeadOutput
	}
	return d
}

// serviceCheck returns the check of in, if it has one.
func serviceCheck(in *catalog.Instance) (healthCheckDoc, bool) {
	c := in.Service.Check
	if c == nil || in.Check == nil {
		return healthCheckDoc{}, false
	}
	d := healthCheckDoc{
		Node: in.Node.Name(), CheckID: "service:" + in.Service.ID, Name: fmt.Sprintf("Service '%s' check", in.Service.Name),
		Status: string(in.Check.Status), Output: in.Check.Output,
		ServiceID: in.Service.ID, ServiceName: in.Service.Name, ServiceTags: nonNil(in.Service.Tags),
		Type:        c.Type(),
		Definition:  checkDefinitionDoc{HTTP: c.HTTP, TCP: c.TCP, Interval: c.Interval.String()},
		CreateIndex: in.CreateIndex, ModifyIndex: in.HealthIndex,
	}
	if c.Timeout > 0 {
		d.Definition.Timeout = c.Timeout.String()
	}
	return d, true
}

func renderServiceEntry(v *catalog.View, in *catalog.Instance) serviceEntryDoc {
	checks := []healthCheckDoc{serfCheck(in.Node)}
	if c, ok := serviceCheck(in); ok {
		checks = append(checks, c)
	}
	return serviceEntryDoc{Node: renderNode(v, in.Node), Service: renderService(v, in), Checks: checks}
}

func renderCatalogNode(v *catalog.View, n *catalog.Node) catalogNodeDoc {
	d := catalogNodeDoc{Node: renderNode(v, n), Services: make(map[string]agentServiceDoc, len(n.Services))}
	for _, in := range n.Services {
		d.Services[in.Service.ID] = renderService(v, in)
	}
	return d
}

func renderUINode(v *catalog.View, n *catalog.Node) uiNodeDoc {
	d := uiNodeDoc{nodeDoc: renderNode(v, n), Services: []agentServiceDoc{}, Checks: []healthCheckDoc{serfCheck(n)}}
	for _, in := range n.Services {
		d.Services = append(d.Services, renderService(v, in))
		if c, ok := serviceCheck(in); ok {
			d.Checks = append(d.Checks, c)
		}
	}
	return d
}

// renderServices is /v1/catalog/services: every service name with the
// union of its tags.
func renderServices(v *catalog.View) map[string][]string {
	out := make(map[string][]string, len(v.Services))
	for _, s := range v.Services {
		out[s.Name] = nonNil(s.Tags)
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}
