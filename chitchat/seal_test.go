package chitchat

import (
	"errors"
	"net/netip"
	"testing"
)

func testKey(b byte) Key {
	var k Key
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	a := netip.MustParseAddrPort("127.0.0.1:1")
	ring, err := NewKeyring(testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewKeyring(testKey(2))
	msg := EncodeMessage(&Syn{ClusterID: "c", Digest: nil})
	tests := []struct {
		name    string
		sender  *sealer
		wantErr error
	}{
		{"same key and cluster", newSealer(ring, "c", a, 100, 16), nil},
		{"wrong key", newSealer(other, "c", a, 100, 16), errAuth},
		{"wrong cluster", newSealer(ring, "d", a, 100, 16), errWrongCluster},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			to := netip.MustParseAddrPort("127.0.0.1:2")
			recv := newSealer(ring, "c", to, 0, 16)
			sealed := tt.sender.seal(nil, msg, to)
			if len(sealed) != len(msg)+sealOverhead {
				t.Errorf("sealed %d bytes, want %d + %d", len(sealed), len(msg), sealOverhead)
			}
			got, err := recv.open(sealed, nil)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("open: err %v, want %v", err, tt.wantErr)
			}
			if err == nil && (string(got.msg) != string(msg) || got.sender != a) {
				t.Errorf("open returned %x from %v, want %x from %v", got.msg, got.sender, msg, a)
			}
		})
	}
}

func TestSealTamperAndReplay(t *testing.T) {
	ring, _ := NewKeyring(testKey(1))
	send := newSealer(ring, "c", netip.MustParseAddrPort("127.0.0.1:1"), 1000, 16)
	to := netip.MustParseAddrPort("127.0.0.1:2")
	recv := newSealer(ring, "c", to, 0, 16)
	msg := EncodeMessage(&BadCluster{})
	first := send.seal(nil, msg, to)
	for i := range first {
		b := append([]byte(nil), first...)
		b[i] ^= 0x40
		if _, err := recv.open(b, nil); err == nil {
			t.Fatalf("flipping byte %d still opens", i)
		}
	}
	if _, err := recv.open(first, nil); err != nil {
		t.Fatalf("first open: %v", err)
	}
	if _, err := recv.open(first, nil); !errors.Is(err, errReplay) {
		t.Fatalf("replay: err %v, want errReplay", err)
	}
	// Reordering within the window is accepted once each.
	var later [][]byte
	for range 10 {
		later = append(later, send.seal(nil, msg, to))
	}
	for i := len(later) - 1; i >= 0; i-- {
		if _, err := recv.open(later[i], nil); err != nil {
			t.Fatalf("reordered datagram %d: %v", i, err)
		}
		if _, err := recv.open(later[i], nil); !errors.Is(err, errReplay) {
			t.Fatalf("reordered replay %d: err %v", i, err)
		}
	}
	// A datagram overtaken by more than the window remembers is refused.
	old := send.seal(nil, msg, to)
	for range replaySet + 1 {
		recv.open(send.seal(nil, msg, to), nil)
	}
	if _, err := recv.open(old, nil); !errors.Is(err, errReplay) {
		t.Fatalf("datagram older than the window: err %v, want errReplay", err)
	}
}

// A datagram sealed for one node does not open at another: a recorded
// datagram cannot be replayed across receivers (issue 11, item 6). The
// "any" recipient, for Syns to seed addresses, opens anywhere but only on a
// Syn.
func TestSealBindsTheRecipient(t *testing.T) {
	ring, _ := NewKeyring(testKey(1))
	a, b, c := netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("127.0.0.1:2"), netip.MustParseAddrPort("127.0.0.1:3")
	send := newSealer(ring, "k", a, 1, 16)
	syn := EncodeMessage(&Syn{ClusterID: "k"})
	ack := EncodeMessage(&Ack{})
	tests := []struct {
		name    string
		msg     []byte
		rcpt    netip.AddrPort
		at      netip.AddrPort
		wantErr error
	}{
		{"sealed for b, opened at b", ack, b, b, nil},
		{"sealed for b, opened at c", ack, b, c, errAuth},
		{"Syn sealed for b, opened at c", syn, b, c, errAuth},
		{"Syn for any node, opened at c", syn, netip.AddrPort{}, c, nil},
		{"Ack for any node, opened at c", ack, netip.AddrPort{}, c, errAuth},
		{"Push for any node, opened at c", EncodeMessage(&Push{ClusterID: "k"}), netip.AddrPort{}, c, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recv := newSealer(ring, "k", tt.at, 0, 16)
			o, err := recv.open(send.seal(nil, tt.msg, tt.rcpt), nil)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("open: err %v, want %v", err, tt.wantErr)
			}
			if err == nil && o.sender != a {
				t.Errorf("sender %v, want %v", o.sender, a)
			}
		})
	}
}

func TestReplayWindowBounded(t *testing.T) {
	r := newReplayWindows(4)
	for i := range 100 {
		r.accept(netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(i)), 1)
	}
	if len(r.byAddr) != 4 || r.evicted != 96 {
		t.Errorf("tracked %d senders, evicted %d; want 4 and 96", len(r.byAddr), r.evicted)
	}
}

func TestKeyringRotation(t *testing.T) {
	k1, k2 := testKey(1), testKey(2)
	ring, _ := NewKeyring(k1)
	if err := ring.UseKey(k2); err == nil {
		t.Error("UseKey of a key not in the ring succeeded")
	}
	if err := ring.AddKey(k2); err != nil {
		t.Fatal(err)
	}
	if err := ring.UseKey(k2); err != nil {
		t.Fatal(err)
	}
	if err := ring.RemoveKey(k2); err == nil {
		t.Error("removing the primary key succeeded")
	}
	if err := ring.RemoveKey(k1); err != nil {
		t.Fatal(err)
	}
	if got := ring.Keys(); len(got) != 1 || got[0] != k2 {
		t.Errorf("keys = %v, want [k2]", got)
	}
	if _, err := NewKeyring(Key{}); err == nil {
		t.Error("the zero key was accepted")
	}
}

func TestParseKey(t *testing.T) {
	k := testKey(7)
	for _, s := range []string{k.String(), "  " + k.String() + "\n"} {
		got, err := ParseKey(s)
		if err != nil || got != k {
			t.Errorf("ParseKey(%q) = %v, %v", s, got, err)
		}
	}
	for _, bad := range []string{"", "not base64!", "AAAA"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) succeeded", bad)
		}
	}
}
