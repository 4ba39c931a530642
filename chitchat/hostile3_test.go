package chitchat

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// Failing reproductions of the third hostile review (issue 14: a
// cold-start cluster is live within one round). Each states the invariant
// it breaks.

// Invariant: every push an engine hands out fits Config.MaxDatagramSize
// (the Server refuses to send a larger one: the push, with our own news,
// announcement and death notices in it, is lost).
//
// holdNotices keeps up to 256 notices of rate-limited forwards for the next
// Flush, and Flush puts every pending notice in one push whatever its size:
// at 1,400 bytes, about 30 held alive notices already overflow it. A member
// (or, in plaintext, anyone spoofing a member's address) that sends a few
// pushes while the forwarder is out of tokens makes its next pushes
// unsendable; with the default 65,507-byte budget, 256 notices of names near
// Limits.MaxNodeNameSize do the same.
func TestHostile3HeldNoticesOverflowTheDatagram(t *testing.T) {
	const mtu = 1400
	p := livePushNet(t, 5, func(c *Config) { c.PushRate = 30; c.MaxDatagramSize = mtu }) // bucket of 3 tokens
	from, f := p.engines[0], p.engines[1]
	whole := RingRange{After: from.selfState().ref, Upto: from.selfState().ref}
	for k := range 10 {
		m := &Push{ClusterID: from.cfg.ClusterID, Range: &whole}
		for i := range 30 {
			addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 9, byte(k), byte(i)}), 7000)
			m.Notices = append(m.Notices, Notice{Kind: NoticeAlive, ID: NodeID{Name: fmt.Sprintf("joiner-%d-%d", k, i), Generation: 1, Addr: addr}, Heartbeat: 3})
		}
		if size := EncodedSize(m); size > mtu {
			t.Fatalf("test setup: forged push %d is %d bytes, above %d", k, size, mtu)
		}
		f.Step(p.now, Inbound{From: from.Self().Addr}, wire(t, m))
	}
	if err := f.Set("news", "fresh"); err != nil {
		t.Fatal(err)
	}
	pushes := f.Flush(p.now.Add(time.Second))
	if len(pushes) == 0 {
		t.Fatalf("f sent no push a second later (rate limited %d)", f.push.stats.RateLimited)
	}
	for _, env := range pushes {
		if size := EncodedSize(env.Msg); size > mtu {
			t.Errorf("f's push to %v is %d bytes (%d notices), above MaxDatagramSize %d: the Server drops it, with f's own news",
				env.To, size, len(env.Msg.(*Push).Notices), mtu)
		}
	}
}
