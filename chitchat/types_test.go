package chitchat

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// T1 test_deletion_status_to_u8
func TestT1_DeletionStatusCodes(t *testing.T) {
	// Exactly three of the 256 byte values are statuses, both for the type
	// and for the decoder of a key-value op; each valid one re-encodes to the
	// same byte.
	var valid []byte
	for b := range 256 {
		s := Status(b)
		stream := slices.Concat(nodeOp(id(1), 0, 0), kvOpStatus("k", "v", 1, uint64(b)))
		nodes, err := parseOps(stream)
		if (err == nil) != s.valid() {
			t.Fatalf("status %d: parseOps err = %v, but valid() = %v", b, err, s.valid())
		}
		if err != nil {
			continue
		}
		valid = append(valid, byte(b))
		got := nodes[0].KeyValues[0].Status
		if got != s {
			t.Errorf("status %d decoded as %d", b, got)
		}
		d := Delta{Nodes: nodes}
		reenc := appendDelta(nil, &d)
		if back := decodeDeltaBytes(t, reenc); back.Nodes[0].KeyValues[0].Status != s {
			t.Errorf("status %d does not re-encode to itself", b)
		}
	}
	if diff := cmp.Diff([]byte{0, 1, 2}, valid); diff != "" {
		t.Errorf("valid status codes mismatch (-want +got):\n%s", diff)
	}
}

func TestStatusString(t *testing.T) {
	tests := []struct {
		name string
		s    Status
		want string
	}{
		{name: "set", s: StatusSet, want: "Set"},
		{name: "deleted", s: StatusDeleted, want: "Delete"},
		{name: "delete after ttl", s: StatusDeleteAfterTTL, want: "DeleteAfterTtl"},
		{name: "unknown", s: Status(7), want: "Status(7)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEnumStrings(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{name: "syn", got: TypeSyn.String(), want: "Syn"},
		{name: "synack", got: TypeSynAck.String(), want: "SynAck"},
		{name: "ack", got: TypeAck.String(), want: "Ack"},
		{name: "badcluster", got: TypeBadCluster.String(), want: "BadCluster"},
		{name: "unknown message", got: MessageType(9).String(), want: "MessageType(9)"},
		{name: "reject", got: deltaReject.String(), want: "reject"},
		{name: "apply", got: deltaApply.String(), want: "apply"},
		{name: "reset", got: deltaApplyAfterReset.String(), want: "apply-after-reset"},
		{name: "unknown status", got: deltaStatus(9).String(), want: "deltaStatus(9)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestNodeIDString(t *testing.T) {
	tests := []struct {
		name string
		id   NodeID
		want string
	}{
		{name: "ipv4", id: id(10001), want: "node-10001:0:127.0.0.1:10001"},
		{name: "ipv6", id: NodeID{Name: "n", Generation: 7, Addr: netip.MustParseAddrPort("[::1]:80")}, want: "n:7:[::1]:80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.id.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

// docs/PROTOCOL.md §2.1: name (bytewise), then generation, then address with IPv4
// before IPv6, then address bytes, then port.
func TestNodeIDCompare(t *testing.T) {
	ap := netip.MustParseAddrPort
	sorted := []NodeID{
		{Name: "a", Generation: 0, Addr: ap("10.0.0.1:1")},
		{Name: "a", Generation: 1, Addr: ap("9.0.0.1:1")},
		{Name: "a", Generation: 2, Addr: ap("9.0.0.1:1")},
		{Name: "a", Generation: 2, Addr: ap("9.0.0.1:2")},
		{Name: "a", Generation: 2, Addr: ap("10.0.0.1:1")},
		{Name: "a", Generation: 2, Addr: ap("[::1]:1")},
		{Name: "b", Generation: 0, Addr: ap("1.1.1.1:1")},
		{Name: "é", Generation: 0, Addr: ap("1.1.1.1:1")},
	}
	for i := range sorted {
		for j := range sorted {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := sorted[i].Compare(sorted[j]); got != want {
				t.Errorf("Compare(%v, %v) = %d, want %d", sorted[i], sorted[j], got, want)
			}
		}
	}
}

func TestNormalizeAddr(t *testing.T) {
	tests := []struct {
		name string
		in   netip.AddrPort
		want netip.AddrPort
	}{
		{name: "ipv4 unchanged", in: netip.MustParseAddrPort("1.2.3.4:5"), want: netip.MustParseAddrPort("1.2.3.4:5")},
		{name: "mapped unmapped", in: netip.MustParseAddrPort("[::ffff:1.2.3.4]:5"), want: netip.MustParseAddrPort("1.2.3.4:5")},
		{name: "zone dropped", in: netip.MustParseAddrPort("[fe80::1%eth0]:5"), want: netip.MustParseAddrPort("[fe80::1]:5")},
		{name: "ipv6 unchanged", in: netip.MustParseAddrPort("[2001:db8::1]:5"), want: netip.MustParseAddrPort("[2001:db8::1]:5")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := normalizeAddr(tt.in); got != tt.want {
				t.Errorf("normalizeAddr(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestVersionedValueIsDeleted(t *testing.T) {
	for _, s := range []Status{StatusSet, StatusDeleted, StatusDeleteAfterTTL} {
		if got, want := (VersionedValue{Status: s}).IsDeleted(), s == StatusDeleted; got != want {
			t.Errorf("IsDeleted() with status %v = %v, want %v", s, got, want)
		}
	}
}
