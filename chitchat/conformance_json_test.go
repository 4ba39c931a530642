package chitchat

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// The JSON form of a decoded message in testdata/wire (testdata/README.md
// documents it for other implementations). Field names are the protocol's,
// in wire order; statuses are spelled "Set", "Delete", "DeleteAfterTtl".

type confMessage struct {
	Type      string             `json:"type"`
	ClusterID *string            `json:"cluster_id,omitempty"`
	Digest    *[]confDigestEntry `json:"digest,omitempty"` // Syn, SynAck
	Delta     *[]confNodeDelta   `json:"delta,omitempty"`  // SynAck, Ack
}

type confDigestEntry struct {
	Name          string `json:"name"`
	Generation    uint64 `json:"generation"`
	Addr          string `json:"addr"`
	Heartbeat     uint64 `json:"heartbeat"`
	LastGCVersion uint64 `json:"last_gc_version"`
	MaxVersion    uint64 `json:"max_version"`
}

type confNodeDelta struct {
	Name                string         `json:"name"`
	Generation          uint64         `json:"generation"`
	Addr                string         `json:"addr"`
	LastGCVersion       uint64         `json:"last_gc_version"`
	FromVersionExcluded uint64         `json:"from_version_excluded"`
	MaxVersion          uint64         `json:"max_version"`
	KeyValues           []confKeyValue `json:"key_values,omitempty"`
}

type confKeyValue struct {
	Key     string `json:"key"`
	Value   string `json:"value"`
	Version uint64 `json:"version"`
	Status  string `json:"status"`
}

// confToJSON renders m as indented JSON. Digests and deltas are listed as they
// are on the wire (a decoded digest is sorted by node id).
func confToJSON(m Message) string {
	j := confMessage{Type: m.Type().String()}
	switch m := m.(type) {
	case *Syn:
		j.ClusterID = &m.ClusterID
		j.Digest = confPtr(confDigestJSON(m.Digest))
	case *SynAck:
		j.Digest = confPtr(confDigestJSON(m.Digest))
		j.Delta = confPtr(confDeltaJSON(m.Delta))
	case *Ack:
		j.Delta = confPtr(confDeltaJSON(m.Delta))
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		panic(err) // plain structs of strings and integers always marshal
	}
	return string(b)
}

func confDigestJSON(d Digest) []confDigestEntry {
	out := make([]confDigestEntry, 0, len(d))
	for _, e := range d {
		out = append(out, confDigestEntry{e.ID.Name, e.ID.Generation, e.ID.Addr.String(), e.Heartbeat, e.LastGCVersion, e.MaxVersion})
	}
	return out
}

func confDeltaJSON(d Delta) []confNodeDelta {
	out := make([]confNodeDelta, 0, len(d.Nodes))
	for _, nd := range d.Nodes {
		j := confNodeDelta{nd.ID.Name, nd.ID.Generation, nd.ID.Addr.String(), nd.LastGCVersion, nd.FromVersionExcluded, nd.MaxVersion, nil}
		for _, kv := range nd.KeyValues {
			j.KeyValues = append(j.KeyValues, confKeyValue{kv.Key, kv.Value, kv.Version, kv.Status.String()})
		}
		out = append(out, j)
	}
	return out
}

// confFromJSON parses the JSON form back into a message.
func confFromJSON(s string) (Message, error) {
	var j confMessage
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, err
	}
	digest, err := confDigestFromJSON(confDeref(j.Digest))
	if err != nil {
		return nil, err
	}
	delta, err := confDeltaFromJSON(confDeref(j.Delta))
	if err != nil {
		return nil, err
	}
	switch j.Type {
	case "Syn":
		if j.ClusterID == nil {
			return nil, fmt.Errorf("a Syn needs a cluster_id")
		}
		return &Syn{ClusterID: *j.ClusterID, Digest: digest}, nil
	case "SynAck":
		return &SynAck{Digest: digest, Delta: delta}, nil
	case "Ack":
		return &Ack{Delta: delta}, nil
	case "BadCluster":
		return &BadCluster{}, nil
	}
	return nil, fmt.Errorf("unknown message type %q", j.Type)
}

func confDigestFromJSON(js []confDigestEntry) (Digest, error) {
	var d Digest
	for _, e := range js {
		addr, err := netip.ParseAddrPort(e.Addr)
		if err != nil {
			return nil, err
		}
		d = append(d, DigestEntry{ID: NodeID{e.Name, e.Generation, addr}, NodeDigest: NodeDigest{e.Heartbeat, e.LastGCVersion, e.MaxVersion}})
	}
	return d, nil
}

func confDeltaFromJSON(js []confNodeDelta) (Delta, error) {
	var d Delta
	for _, n := range js {
		addr, err := netip.ParseAddrPort(n.Addr)
		if err != nil {
			return Delta{}, err
		}
		nd := NodeDelta{ID: NodeID{n.Name, n.Generation, addr}, LastGCVersion: n.LastGCVersion,
			FromVersionExcluded: n.FromVersionExcluded, MaxVersion: n.MaxVersion}
		for _, kv := range n.KeyValues {
			st, ok := confParseStatus(kv.Status)
			if !ok {
				return Delta{}, fmt.Errorf("unknown status %q", kv.Status)
			}
			nd.KeyValues = append(nd.KeyValues, KeyValueMutation{kv.Key, kv.Value, kv.Version, st})
		}
		d.Nodes = append(d.Nodes, nd)
	}
	return d, nil
}

func confParseStatus(s string) (Status, bool) {
	for st := StatusSet; st <= StatusDeleteAfterTTL; st++ {
		if st.String() == s {
			return st, true
		}
	}
	return 0, false
}

func confPtr[T any](v T) *T { return &v }

func confDeref[T any](p *[]T) []T {
	if p == nil {
		return nil
	}
	return *p
}
