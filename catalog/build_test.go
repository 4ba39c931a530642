package catalog

import (
	"log/slog"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/gossipkit/chitchat-go/chitchat"
)

func testID(name string, gen uint64, port uint16) chitchat.NodeID {
	return chitchat.NodeID{Name: name, Generation: gen, Addr: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), port)}
}

var (
	nodeA  = testID("a", 1, 1)
	nodeB  = testID("b", 1, 2)
	nodeB2 = testID("b", 2, 2) // b restarted
)

// in builds a node input from key=value pairs, each at version 1 unless
// versions says otherwise.
func in(id chitchat.NodeID, live bool, kvs ...string) nodeInput {
	ni := nodeInput{id: id, live: live}
	for i := 0; i+1 < len(kvs); i += 2 {
		ni.entries = append(ni.entries, entry{key: kvs[i], value: kvs[i+1], version: uint64(len(kvs[i+1]))})
	}
	return ni
}

const (
	webValue    = `{"name":"web","port":80,"check":{"http":"http://127.0.0.1/","interval_ms":1000}}`
	webTagged   = `{"name":"web","port":80,"tags":["v2"],"check":{"http":"http://127.0.0.1/","interval_ms":1000}}`
	dbValue     = `{"name":"db","port":5432}`
	passingJSON = `{"status":"passing"}`
	warningJSON = `{"status":"warning","output":"slow"}`
)

// indexes is every change index of a view, for comparison.
type indexes struct {
	Index, Nodes, Services uint64
	Node                   map[string][3]uint64 // create, modify, live
	Service                map[string][2]uint64 // catalog, health
}

func indexesOf(v *View) indexes {
	ix := indexes{Index: v.Index, Nodes: v.NodesIndex, Services: v.ServicesIndex,
		Node: map[string][3]uint64{}, Service: map[string][2]uint64{}}
	for _, n := range v.Nodes {
		ix.Node[n.Name()] = [3]uint64{n.CreateIndex, n.ModifyIndex, n.LiveIndex}
	}
	for _, s := range v.Services {
		ix.Service[s.Name] = [2]uint64{s.CatalogIndex, s.HealthIndex}
	}
	return ix
}

// Each part's index moves only when that part changes, to the index of
// the change; a rebuild that changes nothing returns the previous view.
func TestBuildIndexes(t *testing.T) {
	steps := []struct {
		name string
		in   []nodeInput
		want indexes
	}{
		{"a announces web", []nodeInput{in(nodeA, true, "service:web", webValue)}, indexes{2, 2, 2,
			map[string][3]uint64{"a": {2, 2, 2}}, map[string][2]uint64{"web": {2, 2}}}},
		{"nothing new", []nodeInput{in(nodeA, true, "service:web", webValue)}, indexes{2, 2, 2,
			map[string][3]uint64{"a": {2, 2, 2}}, map[string][2]uint64{"web": {2, 2}}}},
		{"web's check passes: health only", []nodeInput{in(nodeA, true, "service:web", webValue, "health:web", passingJSON)}, indexes{3, 2, 2,
			map[string][3]uint64{"a": {2, 2, 2}}, map[string][2]uint64{"web": {2, 3}}}},
		{"web gets a tag: catalog, node and service list", []nodeInput{in(nodeA, true, "service:web", webTagged, "health:web", passingJSON)}, indexes{4, 2, 4,
			map[string][3]uint64{"a": {2, 4, 2}}, map[string][2]uint64{"web": {4, 4}}}},
		{"b joins with db", []nodeInput{in(nodeA, true, "service:web", webTagged, "health:web", passingJSON), in(nodeB, true, "service:db", dbValue)}, indexes{5, 5, 5,
			map[string][3]uint64{"a": {2, 4, 2}, "b": {5, 5, 5}}, map[string][2]uint64{"web": {4, 4}, "db": {5, 5}}}},
		{"web warns", []nodeInput{in(nodeA, true, "service:web", webTagged, "health:web", warningJSON), in(nodeB, true, "service:db", dbValue)}, indexes{6, 5, 5,
			map[string][3]uint64{"a": {2, 4, 2}, "b": {5, 5, 5}}, map[string][2]uint64{"web": {4, 6}, "db": {5, 5}}}},
		{"b dies: its liveness and db's health", []nodeInput{in(nodeA, true, "service:web", webTagged, "health:web", warningJSON), in(nodeB, false, "service:db", dbValue)}, indexes{7, 5, 5,
			map[string][3]uint64{"a": {2, 4, 2}, "b": {5, 5, 7}}, map[string][2]uint64{"web": {4, 6}, "db": {5, 7}}}},
		{"b restarts: a new incarnation", []nodeInput{in(nodeA, true, "service:web", webTagged, "health:web", warningJSON), in(nodeB, false, "service:db", dbValue), in(nodeB2, true, "service:db", dbValue)}, indexes{8, 8, 5,
			map[string][3]uint64{"a": {2, 4, 2}, "b": {8, 8, 8}}, map[string][2]uint64{"web": {4, 6}, "db": {8, 8}}}},
		{"b forgotten", []nodeInput{in(nodeA, true, "service:web", webTagged, "health:web", warningJSON)}, indexes{9, 9, 9,
			map[string][3]uint64{"a": {2, 4, 2}}, map[string][2]uint64{"web": {4, 6}}}},
		{"web deregistered", []nodeInput{in(nodeA, true)}, indexes{10, 9, 10,
			map[string][3]uint64{"a": {2, 10, 2}}, map[string][2]uint64{}}},
	}
	b := newBuilder("dc1", nodeA, 10, slog.New(slog.DiscardHandler))
	v := b.emptyView(1)
	for _, st := range steps {
		prev := v
		v = b.build(prev, st.in)
		if diff := cmp.Diff(st.want, indexesOf(v)); diff != "" {
			t.Fatalf("%s: indexes mismatch (-want +got):\n%s", st.name, diff)
		}
		if (v.Index == prev.Index) != (v == prev) {
			t.Errorf("%s: index %d after %d, but the view was %s", st.name, v.Index, prev.Index,
				map[bool]string{true: "kept", false: "replaced"}[v == prev])
		}
	}
	if got := v.ServiceIndex("db", true); got != 10 {
		t.Errorf("ServiceIndex of a service gone = %d, want the service list's 10", got)
	}
	if got := v.NodeIndex("b"); got != 9 {
		t.Errorf("NodeIndex of a node gone = %d, want the node list's 9", got)
	}
}

func TestBuildHealth(t *testing.T) {
	b := newBuilder("dc1", nodeA, 10, slog.New(slog.DiscardHandler))
	v := b.build(b.emptyView(1), []nodeInput{
		in(nodeA, true, "service:web", webValue, "service:web2", webTagged, "health:web2", passingJSON,
			"service:db", dbValue, "health:db", warningJSON, "health:orphan", passingJSON),
		in(nodeB, false, "service:db", dbValue),
	})
	type row struct {
		Node, ID string
		Status   Status
		Output   string
	}
	var got []row
	for _, s := range v.Services {
		for _, in := range s.Instances {
			r := row{in.Node.Name(), in.Service.ID, in.Status(), ""}
			if in.Check != nil {
				r.Output = in.Check.Output
			}
			got = append(got, r)
		}
	}
	want := []row{
		{"a", "db", Passing, ""},  // no check: its node's liveness only (a stray result is ignored)
		{"b", "db", Critical, ""}, // dead node
		{"a", "web", Critical, "no check result yet"},
		{"a", "web2", Passing, ""},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("instances mismatch (-want +got):\n%s", diff)
	}
	if got := len(v.Service("WEB").Select([]string{"V2"}, true)); got != 1 {
		t.Errorf("web with tag V2, passing: %d instances, want 1 (names and tags are case-insensitive)", got)
	}
	if got := len(v.Service("db").Select(nil, true)); got != 1 {
		t.Errorf("db passing: %d instances, want 1", got)
	}
}

// Bad entries are skipped and counted once per version, however often the
// catalog is rebuilt; so are services beyond the per-node limit.
func TestBuildSkipsAndCountsBadEntries(t *testing.T) {
	b := newBuilder("dc1", nodeA, 2, slog.New(slog.DiscardHandler))
	bad := []nodeInput{in(nodeA, true,
		"service:a", dbValue, "service:b", dbValue, "service:c", dbValue, // c: beyond the limit of 2
		"service:bad", `{"name":"x y"}`, "service:worse", `{`, "health:a", `{"status":"fine"}`)}
	v := b.build(b.emptyView(1), bad)
	v = b.build(v, bad)
	if b.bad != 4 {
		t.Errorf("bad entries = %d after two rebuilds, want 4 (3 malformed, 1 beyond the limit)", b.bad)
	}
	n, _ := v.Node("a")
	if len(n.Services) != 2 {
		t.Errorf("node a has %d services, want 2", len(n.Services))
	}
	// A new version of a bad entry is a new bad entry.
	bad[0].entries[4] = entry{key: "service:worse", value: `{"name":1}`, version: 99}
	b.build(v, bad)
	if b.bad != 5 {
		t.Errorf("bad entries = %d after a new bad version, want 5", b.bad)
	}
}
