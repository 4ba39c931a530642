package catalog

import (
	"cmp"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// nodeInput is what the builder needs of one node state: its identity, its
// liveness, and its catalog entries (keys with ServiceKeyPrefix or
// HealthKeyPrefix), in any order.
type nodeInput struct {
	id      chitchat.NodeID
	live    bool
	entries []entry
}

type entry struct {
	key, value string
	version    uint64
}

// cacheKey names one entry of one node incarnation.
type cacheKey struct {
	node chitchat.NodeID
	key  string
}

// parsed is the decoding of one entry at one version.
type parsed struct {
	version uint64
	svc     Service // for a service entry
	res     Result  // for a health entry
	err     error
	// overLimit is set once the entry was skipped, and counted, for
	// being beyond the node's service limit.
	overLimit bool
}

// builder turns node inputs into views. It remembers the decoding of every
// entry by version, so that an entry is decoded, and a bad one counted and
// logged, once per version rather than at every rebuild. Not safe for
// concurrent use.
type builder struct {
	datacenter  string
	self        chitchat.NodeID
	maxServices int
	log         *slog.Logger

	cache map[cacheKey]parsed
	// bad counts the entries skipped: malformed, invalid, or beyond
	// maxServices (once per node, key and version).
	bad uint64
}

func newBuilder(datacenter string, self chitchat.NodeID, maxServices int, log *slog.Logger) *builder {
	return &builder{datacenter: datacenter, self: self, maxServices: maxServices, log: log, cache: make(map[cacheKey]parsed)}
}

// emptyView is the view before the first build, at index first (at least
// 1: Consul's indexes start above 0).
func (b *builder) emptyView(first uint64) *View {
	return &View{Index: first, NodesIndex: first, ServicesIndex: first, Datacenter: b.datacenter, Self: b.self,
		nodes: map[string]*Node{}, services: map[string]*ServiceSet{}}
}

// decode returns the decoding of e, from the cache when its version is
// known.
func (b *builder) decode(next map[cacheKey]parsed, node chitchat.NodeID, e entry) parsed {
	k := cacheKey{node, e.key}
	p, ok := b.cache[k]
	if !ok || p.version != e.version {
		p = parsed{version: e.version}
		if id, ok := strings.CutPrefix(e.key, ServiceKeyPrefix); ok {
			p.svc, p.err = decodeService(id, e.value)
		} else {
			p.res, p.err = decodeResult(e.value)
		}
		if p.err != nil {
			b.bad++
			b.log.Debug("skipping a bad catalog entry", "node", node, "key", e.key, "err", p.err)
			if isPow2(b.bad) {
				b.log.Warn("skipped bad catalog entries", "count", b.bad, "last_node", node.Name, "last_key", e.key)
			}
		}
	}
	next[k] = p
	return p
}

// build returns the view of in, with the change indexes carried over from
// prev for every part that did not change, or prev itself if nothing did.
func (b *builder) build(prev *View, in []nodeInput) *View {
	next := make(map[cacheKey]parsed, len(b.cache))
	defer func() { b.cache = next }()

	// Every part that changed gets idx; the others keep prev's index.
	idx := prev.Index + 1
	bump := func(old uint64, same bool) uint64 {
		if same {
			return old
		}
		return idx
	}

	v := &View{Datacenter: b.datacenter, Self: b.self, nodes: make(map[string]*Node), services: make(map[string]*ServiceSet)}
	for _, ni := range pickIncarnations(in) {
		n := &Node{ID: ni.id, Addr: ni.id.Addr.Addr(), Live: ni.live}
		p := prev.nodes[strings.ToLower(n.ID.Name)]
		if p != nil && p.ID != n.ID {
			p = nil // another node, or another incarnation
		}
		n.Services = b.instances(next, n, ni.entries)
		nodeSame := p != nil && len(p.Services) == len(n.Services)
		for i, inst := range n.Services {
			var pi *Instance
			if p != nil {
				if j, ok := slices.BinarySearchFunc(p.Services, inst.Service.ID, func(x *Instance, id string) int {
					return strings.Compare(x.Service.ID, id)
				}); ok {
					pi = p.Services[j]
				}
			}
			defSame := pi != nil && serviceEqual(pi.Service, inst.Service)
			inst.CreateIndex, inst.ModifyIndex, inst.HealthIndex = idx, idx, idx
			if pi != nil {
				inst.CreateIndex = pi.CreateIndex
				inst.ModifyIndex = bump(pi.ModifyIndex, defSame)
				inst.HealthIndex = bump(pi.HealthIndex, defSame && resultEqual(pi.Check, inst.Check) && p.Live == n.Live)
			}
			nodeSame = nodeSame && defSame && p.Services[i].Service.ID == inst.Service.ID
		}
		n.CreateIndex, n.ModifyIndex, n.LiveIndex = idx, idx, idx
		if p != nil {
			n.CreateIndex = p.CreateIndex
			n.ModifyIndex = bump(p.ModifyIndex, nodeSame)
			n.LiveIndex = bump(p.LiveIndex, p.Live == n.Live)
		}
		v.Nodes = append(v.Nodes, n)
		if _, dup := v.nodes[strings.ToLower(n.ID.Name)]; !dup {
			v.nodes[strings.ToLower(n.ID.Name)] = n
		}
	}
	nodesSame := len(v.Nodes) == len(prev.Nodes)
	for i := 0; nodesSame && i < len(v.Nodes); i++ {
		nodesSame = v.Nodes[i].ID == prev.Nodes[i].ID
	}
	v.NodesIndex = bump(prev.NodesIndex, nodesSame)
	b.groupServices(v, prev, bump)

	if !v.changedAt(idx) {
		return prev
	}
	v.Index = idx
	return v
}

// changedAt reports whether some part of v has index idx.
func (v *View) changedAt(idx uint64) bool {
	if v.NodesIndex == idx || v.ServicesIndex == idx {
		return true
	}
	for _, n := range v.Nodes {
		if n.ModifyIndex == idx || n.LiveIndex == idx {
			return true
		}
		for _, inst := range n.Services {
			if inst.HealthIndex == idx {
				return true
			}
		}
	}
	for _, s := range v.Services {
		if s.CatalogIndex == idx || s.HealthIndex == idx {
			return true
		}
	}
	return false
}

// instances decodes a node's entries into its service instances, ordered by
// service ID. Services beyond maxServices (in key order) are skipped.
func (b *builder) instances(next map[cacheKey]parsed, n *Node, entries []entry) []*Instance {
	services := make(map[string]Service)
	results := make(map[string]Result)
	slices.SortFunc(entries, func(x, y entry) int { return strings.Compare(x.key, y.key) })
	for _, e := range entries {
		p := b.decode(next, n.ID, e)
		if p.err != nil {
			continue
		}
		if strings.HasPrefix(e.key, ServiceKeyPrefix) {
			if len(services) >= b.maxServices {
				if !p.overLimit {
					p.overLimit = true
					next[cacheKey{n.ID, e.key}] = p
					b.bad++
					b.log.Debug("skipping a service beyond the per-node limit", "node", n.ID, "key", e.key, "limit", b.maxServices)
				}
				continue
			}
			services[p.svc.ID] = p.svc
		} else {
			results[strings.TrimPrefix(e.key, HealthKeyPrefix)] = p.res
		}
	}
	out := make([]*Instance, 0, len(services))
	for _, id := range slices.Sorted(maps.Keys(services)) {
		inst := &Instance{Node: n, Service: services[id]}
		if inst.Service.Check != nil {
			r, ok := results[id]
			if !ok {
				r = noResult
			}
			inst.Check = &r
		}
		out = append(out, inst)
	}
	return out
}

// groupServices fills v.Services and v.services from v's nodes, and the
// services' indexes.
func (b *builder) groupServices(v, prev *View, bump func(uint64, bool) uint64) {
	for _, n := range v.Nodes {
		for _, inst := range n.Services {
			key := strings.ToLower(inst.Service.Name)
			s := v.services[key]
			if s == nil {
				s = &ServiceSet{Name: inst.Service.Name}
				v.services[key] = s
			}
			s.Instances = append(s.Instances, inst)
		}
	}
	listSame := len(v.services) == len(prev.services)
	for _, key := range slices.Sorted(maps.Keys(v.services)) {
		s := v.services[key]
		tags := map[string]bool{}
		for _, inst := range s.Instances {
			for _, t := range inst.Service.Tags {
				tags[t] = true
			}
		}
		s.Tags = slices.Sorted(maps.Keys(tags))
		ps := prev.services[key]
		catalogSame := ps != nil && ps.Name == s.Name && len(ps.Instances) == len(s.Instances)
		healthSame := catalogSame
		for i := 0; catalogSame && i < len(s.Instances); i++ {
			x, y := s.Instances[i], ps.Instances[i]
			catalogSame = x.Node.ID == y.Node.ID && x.Service.ID == y.Service.ID && x.ModifyIndex == y.ModifyIndex
			healthSame = catalogSame && healthSame && x.HealthIndex == y.HealthIndex
		}
		s.CatalogIndex = bump(catalogOf(ps), catalogSame)
		s.HealthIndex = bump(healthIndexOf(ps), healthSame)
		listSame = listSame && ps != nil && ps.Name == s.Name && slices.Equal(ps.Tags, s.Tags)
		v.Services = append(v.Services, s)
	}
	v.ServicesIndex = bump(prev.ServicesIndex, listSame)
}

// pickIncarnations returns one input per node name (case-insensitively),
// ordered by name: the live one, else the newest generation. A restarted
// node is remembered under both generations until the old one is
// forgotten; the catalog shows one node per name, as Consul.
func pickIncarnations(in []nodeInput) []nodeInput {
	best := make(map[string]nodeInput, len(in))
	for _, ni := range in {
		k := strings.ToLower(ni.id.Name)
		cur, ok := best[k]
		if !ok || better(ni, cur) {
			best[k] = ni
		}
	}
	out := slices.Collect(maps.Values(best))
	slices.SortFunc(out, func(x, y nodeInput) int { return x.id.Compare(y.id) })
	return out
}

func better(x, y nodeInput) bool {
	if x.live != y.live {
		return x.live
	}
	if c := cmp.Compare(x.id.Generation, y.id.Generation); c != 0 {
		return c > 0
	}
	return x.id.Compare(y.id) < 0
}

func serviceEqual(x, y Service) bool {
	return x.ID == y.ID && x.Name == y.Name && x.Port == y.Port && slices.Equal(x.Tags, y.Tags) &&
		maps.Equal(x.Meta, y.Meta) && x.Address == y.Address && ptrEqual(x.Check, y.Check)
}

func resultEqual(x, y *Result) bool { return ptrEqual(x, y) }

func ptrEqual[T comparable](x, y *T) bool {
	if x == nil || y == nil {
		return x == y
	}
	return *x == *y
}

func catalogOf(s *ServiceSet) uint64 {
	if s == nil {
		return 0
	}
	return s.CatalogIndex
}

func healthIndexOf(s *ServiceSet) uint64 {
	if s == nil {
		return 0
	}
	return s.HealthIndex
}

func isPow2(n uint64) bool { return n&(n-1) == 0 }
