package chitchat

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// The JSON form of a decoded message in testdata/wire (testdata/README.md
// documents it for other implementations). Field names are the protocol's,
// in wire order; statuses are spelled "Set", "Delete", "DeleteAfterTtl",
// notice kinds "alive" and "dead". Values a JSON parser may not hold
// exactly (ring positions, 64-bit hashes) are hex strings.
//
// A field of the message type is always present, null when the wire says
// nil (a coverage, a range, a sender index of 0); fields of other message
// types are absent.

type confMessage struct {
	Type      string             `json:"type"`
	ClusterID *string            `json:"cluster_id,omitempty"` // Syn, Push
	Range     **confRange        `json:"range,omitempty"`      // Push
	Notices   *[]confNotice      `json:"notices,omitempty"`    // Push
	Digest    *[]confDigestEntry `json:"digest,omitempty"`     // Syn, SynAck
	Sender    **confNodeID       `json:"sender,omitempty"`     // Syn, SynAck
	Coverage  **confCoverage     `json:"coverage,omitempty"`   // Syn, SynAck
	Pad       *int               `json:"pad,omitempty"`        // Syn
	Delta     *[]confNodeDelta   `json:"delta,omitempty"`      // SynAck, Ack, Push
	Echo      *confEcho          `json:"echo,omitempty"`       // SynAck, when present
}

type confEcho struct {
	MaxVersion    uint64 `json:"max_version"`
	LastGCVersion uint64 `json:"last_gc_version"`
	Fingerprint   string `json:"fingerprint"` // 16 hex digits
}

type confNodeID struct {
	Name       string `json:"name"`
	Generation uint64 `json:"generation"`
	Addr       string `json:"addr"`
}

type confDigestEntry struct {
	Name          string `json:"name"`
	Generation    uint64 `json:"generation"`
	Addr          string `json:"addr"`
	Heartbeat     uint64 `json:"heartbeat"`
	LastGCVersion uint64 `json:"last_gc_version"`
	MaxVersion    uint64 `json:"max_version"`
}

// confCoverage is a coverage; summaries name their bucket (on the wire:
// its offset from first, modulo 2^bits).
type confCoverage struct {
	Bits      uint8         `json:"bits"`
	First     uint32        `json:"first"`
	Count     uint32        `json:"count"`
	Summaries []confSummary `json:"summaries"`
}

// confSummary is a bucket summary; hash is its 8 bytes as on the wire
// (the little-endian encoding of the XOR of the nodes' state hashes).
type confSummary struct {
	Bucket     uint32   `json:"bucket"`
	Hash       string   `json:"hash"`
	Heartbeats []uint16 `json:"heartbeats"`
}

// confRange is a ring range; after and upto are ring positions as 16 hex
// digits (the value, most significant first); after is "recipient" when it
// is left off the wire (RingRange.AfterRecipient).
type confRange struct {
	After string `json:"after"`
	Upto  string `json:"upto"`
	Tag   *uint8 `json:"tag,omitempty"` // with after "recipient"
}

type confNotice struct {
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Generation uint64 `json:"generation"`
	Addr       string `json:"addr"`
	Heartbeat  uint64 `json:"heartbeat"`
}

type confNodeDelta struct {
	Name                string         `json:"name,omitempty"`
	Generation          uint64         `json:"generation,omitempty"`
	Addr                string         `json:"addr,omitempty"`
	Ref                 uint64         `json:"ref,omitempty"` // instead of name, generation and addr (opNodeRef)
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

// confToJSON renders m as indented JSON. Digests are listed as decoded
// (sorted by node id), deltas, notices and summaries in wire order.
func confToJSON(m Message) string {
	j := confMessage{Type: m.Type().String()}
	switch m := m.(type) {
	case *Syn:
		j.ClusterID = &m.ClusterID
		j.Digest = confPtr(confDigestJSON(m.Digest))
		j.Sender = confPtr(confSenderJSON(m.Sender))
		j.Coverage = confPtr(confCoverageJSON(m.Cover))
		j.Pad = &m.Pad
	case *SynAck:
		j.Digest = confPtr(confDigestJSON(m.Digest))
		j.Sender = confPtr(confSenderJSON(m.Sender))
		j.Coverage = confPtr(confCoverageJSON(m.Cover))
		j.Delta = confPtr(confDeltaJSON(m.Delta))
		if m.Echo != nil {
			j.Echo = &confEcho{m.Echo.MaxVersion, m.Echo.LastGCVersion, confHex64(m.Echo.Fingerprint)}
		}
	case *Ack:
		j.Delta = confPtr(confDeltaJSON(m.Delta))
	case *Push:
		j.ClusterID = &m.ClusterID
		var r *confRange
		if m.Range != nil {
			r = &confRange{After: confHex64(m.Range.After), Upto: confHex64(m.Range.Upto)}
			if m.Range.AfterRecipient {
				r.After, r.Tag = "recipient", &m.Range.Tag
			}
		}
		j.Range = &r
		notices := []confNotice{}
		for _, n := range m.Notices {
			notices = append(notices, confNotice{n.Kind.String(), n.ID.Name, n.ID.Generation, n.ID.Addr.String(), n.Heartbeat})
		}
		j.Notices = &notices
		j.Delta = confPtr(confDeltaJSON(m.Delta))
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		panic(err) // plain structs of strings and integers always marshal
	}
	return string(b)
}

func confSenderJSON(id NodeID) *confNodeID {
	if id == (NodeID{}) {
		return nil
	}
	return &confNodeID{id.Name, id.Generation, id.Addr.String()}
}

func confCoverageJSON(c *Coverage) *confCoverage {
	if c == nil {
		return nil
	}
	j := &confCoverage{Bits: c.Bits, First: c.First, Count: c.Count, Summaries: []confSummary{}}
	for _, s := range c.Summaries {
		hb := s.Heartbeats
		if hb == nil {
			hb = []uint16{}
		}
		j.Summaries = append(j.Summaries, confSummary{s.Bucket, hex.EncodeToString(binary.LittleEndian.AppendUint64(nil, s.Hash)), hb})
	}
	return j
}

func confHex64(v uint64) string { return fmt.Sprintf("%016x", v) }

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
		j := confNodeDelta{Ref: nd.Ref, LastGCVersion: nd.LastGCVersion, FromVersionExcluded: nd.FromVersionExcluded, MaxVersion: nd.MaxVersion}
		if nd.Ref == 0 {
			j.Name, j.Generation, j.Addr = nd.ID.Name, nd.ID.Generation, nd.ID.Addr.String()
		}
		for _, kv := range nd.KeyValues {
			j.KeyValues = append(j.KeyValues, confKeyValue{kv.Key, kv.Value, kv.Version, kv.Status.String()})
		}
		out = append(out, j)
	}
	return out
}

// confFromJSON parses the JSON form back into a message. Absent fields
// take their zero value (nil, empty).
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
	var sender NodeID
	if j.Sender != nil && *j.Sender != nil {
		if sender, err = confNodeIDFromJSON(**j.Sender); err != nil {
			return nil, err
		}
	}
	var cover *Coverage
	if j.Coverage != nil && *j.Coverage != nil {
		if cover, err = confCoverageFromJSON(**j.Coverage); err != nil {
			return nil, err
		}
	}
	switch j.Type {
	case "Syn":
		if j.ClusterID == nil {
			return nil, fmt.Errorf("a Syn needs a cluster_id")
		}
		syn := &Syn{ClusterID: *j.ClusterID, Digest: digest, Sender: sender, Cover: cover}
		if j.Pad != nil {
			syn.Pad = *j.Pad
		}
		return syn, nil
	case "SynAck":
		sa := &SynAck{Digest: digest, Sender: sender, Cover: cover, Delta: delta}
		if j.Echo != nil {
			fp, err := strconv.ParseUint(j.Echo.Fingerprint, 16, 64)
			if err != nil {
				return nil, fmt.Errorf("echo fingerprint: %w", err)
			}
			sa.Echo = &Echo{MaxVersion: j.Echo.MaxVersion, LastGCVersion: j.Echo.LastGCVersion, Fingerprint: fp}
		}
		return sa, nil
	case "Ack":
		return &Ack{Delta: delta}, nil
	case "BadCluster":
		return &BadCluster{}, nil
	case "Push":
		if j.ClusterID == nil {
			return nil, fmt.Errorf("a Push needs a cluster_id")
		}
		p := &Push{ClusterID: *j.ClusterID, Delta: delta}
		if j.Range != nil && *j.Range != nil {
			r := **j.Range
			mine := r.After == "recipient"
			if mine {
				r.After = "0"
			}
			if mine != (r.Tag != nil) {
				return nil, fmt.Errorf(`range: a tag goes with after "recipient", and only with it`)
			}
			after, err1 := strconv.ParseUint(r.After, 16, 64)
			upto, err2 := strconv.ParseUint(r.Upto, 16, 64)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf(`range: after ("recipient" or 16 hex digits) and upto (16 hex digits)`)
			}
			p.Range = &RingRange{After: after, Upto: upto, AfterRecipient: mine}
			if mine {
				p.Range.Tag = *r.Tag
			}
		}
		for _, n := range confDeref(j.Notices) {
			id, err := confNodeIDFromJSON(confNodeID{n.Name, n.Generation, n.Addr})
			if err != nil {
				return nil, err
			}
			kind := NoticeAlive
			switch n.Kind {
			case "alive":
			case "dead":
				kind = NoticeDead
			default:
				return nil, fmt.Errorf("unknown notice kind %q", n.Kind)
			}
			p.Notices = append(p.Notices, Notice{Kind: kind, ID: id, Heartbeat: n.Heartbeat})
		}
		return p, nil
	}
	return nil, fmt.Errorf("unknown message type %q", j.Type)
}

func confNodeIDFromJSON(j confNodeID) (NodeID, error) {
	addr, err := netip.ParseAddrPort(j.Addr)
	if err != nil {
		return NodeID{}, err
	}
	return NodeID{j.Name, j.Generation, addr}, nil
}

func confCoverageFromJSON(j confCoverage) (*Coverage, error) {
	c := &Coverage{Bits: j.Bits, First: j.First, Count: j.Count}
	for _, s := range j.Summaries {
		h, err := hex.DecodeString(s.Hash)
		if err != nil || len(h) != 8 {
			return nil, fmt.Errorf("summary hash %q: want 8 bytes in hex", s.Hash)
		}
		bs := BucketSummary{Bucket: s.Bucket, Hash: binary.LittleEndian.Uint64(h)}
		if len(s.Heartbeats) > 0 {
			bs.Heartbeats = s.Heartbeats
		}
		c.Summaries = append(c.Summaries, bs)
	}
	return c, nil
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
		nd := NodeDelta{Ref: n.Ref, LastGCVersion: n.LastGCVersion, FromVersionExcluded: n.FromVersionExcluded, MaxVersion: n.MaxVersion}
		if n.Ref == 0 {
			addr, err := netip.ParseAddrPort(n.Addr)
			if err != nil {
				return Delta{}, err
			}
			nd.ID = NodeID{n.Name, n.Generation, addr}
		}
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
