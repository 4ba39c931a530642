package chitchat

import (
	"cmp"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// NodeID identifies one incarnation of a cluster member.
//
// Two NodeIDs are the same member iff all three fields are equal. A node
// that restarts should pick a larger Generation: with the same one, peers
// hold the previous incarnation's keys and versions, which the new
// incarnation refutes (docs/PROTOCOL.md §17) before its own writes
// replicate — safe, but a round trip slower (see the package documentation).
type NodeID struct {
	// Name is unique across the cluster (chitchat's node_id).
	Name string
	// Generation distinguishes incarnations of the same Name; it should
	// grow every time the node restarts (the demo uses the start time).
	Generation uint64
	// Addr is where peers send gossip (chitchat's gossip_advertise_addr).
	Addr netip.AddrPort
}

// String renders the id as "name:generation:addr", as upstream does.
func (id NodeID) String() string {
	return fmt.Sprintf("%s:%d:%s", id.Name, id.Generation, id.Addr)
}

// Compare orders ids by name (bytewise), then generation, then address
// (IPv4 before IPv6, then address bytes, then port). Every ordered view of the
// cluster (digests, snapshots, the demo's JSON) uses this order.
func (id NodeID) Compare(o NodeID) int {
	if c := strings.Compare(id.Name, o.Name); c != 0 {
		return c
	}
	if c := cmp.Compare(id.Generation, o.Generation); c != 0 {
		return c
	}
	return id.Addr.Compare(o.Addr)
}

// normalizeAddr unmaps IPv4-mapped IPv6 addresses and drops zones, so that
// the same endpoint always compares (and encodes) the same way.
func normalizeAddr(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap().WithZone(""), a.Port())
}

// Status is the deletion status of a key. ONLY APPEND: values are on the wire.
type Status uint8

const (
	// StatusSet is a live key.
	StatusSet Status = 0
	// StatusDeleted is a tombstone: invisible to readers, removed by GC
	// after Config.MarkedForDeletionGracePeriod.
	StatusDeleted Status = 1
	// StatusDeleteAfterTTL is a key that stays readable until GC removes it
	// after Config.MarkedForDeletionGracePeriod.
	StatusDeleteAfterTTL Status = 2
)

// String returns upstream's JSON spelling: "Set", "Delete", "DeleteAfterTtl".
func (s Status) String() string {
	switch s {
	case StatusSet:
		return "Set"
	case StatusDeleted:
		return "Delete"
	case StatusDeleteAfterTTL:
		return "DeleteAfterTtl"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// valid reports whether s is one of the three statuses of the wire format.
func (s Status) valid() bool { return s <= StatusDeleteAfterTTL }

// VersionedValue is one entry of a node's key-value map.
type VersionedValue struct {
	Value   string
	Version uint64
	Status  Status
	// MarkedAt is when the entry got its Deleted or DeleteAfterTTL status, on
	// this node's clock (the owner's mutation time, or the time a receiver
	// applied it). It is never sent on the wire. Zero for StatusSet.
	MarkedAt time.Time
}

// IsDeleted reports whether the entry is a tombstone (hidden from readers).
func (v VersionedValue) IsDeleted() bool { return v.Status == StatusDeleted }

// KeyValue is a key and its value, used for initial key-values.
type KeyValue struct {
	Key, Value string
}
