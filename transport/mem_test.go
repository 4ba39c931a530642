package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	addrA = netip.MustParseAddrPort("127.0.0.1:10001")
	addrB = netip.MustParseAddrPort("127.0.0.1:10002")
	addrC = netip.MustParseAddrPort("127.0.0.1:10003")
	// addrNobody is never opened.
	addrNobody = netip.MustParseAddrPort("127.0.0.1:10009")
)

func TestNetworkConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     NetworkConfig
		wantErr []string // substrings; nil means valid
	}{
		{"zero value", NetworkConfig{}, nil},
		{"full", NetworkConfig{MTU: 1400, InboxSize: 10, DropProbability: 1, Seed: 7, Delay: time.Millisecond, Jitter: time.Millisecond}, nil},
		{"negative MTU", NetworkConfig{MTU: -1}, []string{"MTU"}},
		{"negative inbox", NetworkConfig{InboxSize: -1}, []string{"InboxSize"}},
		{"probability below 0", NetworkConfig{DropProbability: -0.1}, []string{"DropProbability"}},
		{"probability above 1", NetworkConfig{DropProbability: 1.1}, []string{"DropProbability"}},
		{"probability NaN", NetworkConfig{DropProbability: math.NaN()}, []string{"DropProbability"}},
		{"negative delay", NetworkConfig{Delay: -time.Second}, []string{"Delay"}},
		{"negative jitter", NetworkConfig{Jitter: -time.Second}, []string{"Jitter"}},
		{"every problem reported", NetworkConfig{MTU: -1, InboxSize: -1, DropProbability: 2, Delay: -1, Jitter: -1},
			[]string{"MTU", "InboxSize", "DropProbability", "Delay", "Jitter"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Validate() = %v, want error: %v", err, tt.wantErr != nil)
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("Validate() = %q, want it to mention %q", err, s)
				}
			}
			if _, nerr := NewNetwork(tt.cfg); (nerr == nil) != (err == nil) {
				t.Errorf("NewNetwork error %v disagrees with Validate %v", nerr, err)
			}
		})
	}
}

func TestMemOpen(t *testing.T) {
	t.Run("port 0 picks unused ports deterministically", func(t *testing.T) {
		n := mustNetwork(t, NetworkConfig{})
		ip := netip.MustParseAddr("10.0.0.1")
		open(t, n, netip.AddrPortFrom(ip, 49153)) // taken: skipped
		var got []uint16
		for range 3 {
			got = append(got, open(t, n, netip.AddrPortFrom(ip, 0)).LocalAddr().Port())
		}
		if diff := cmp.Diff([]uint16{49152, 49154, 49155}, got); diff != "" {
			t.Errorf("chosen ports mismatch (-want +got):\n%s", diff)
		}
	})
	t.Run("port 0 when every ephemeral port is taken", func(t *testing.T) {
		n := mustNetwork(t, NetworkConfig{InboxSize: 1})
		for range lastEphemeralPort - firstEphemeralPort + 1 {
			if _, err := n.Open(localhost0); err != nil {
				t.Fatalf("Open: %v", err)
			}
		}
		if _, err := n.Open(localhost0); !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("Open with no free port = %v, want EADDRINUSE", err)
		}
	})
	t.Run("invalid address", func(t *testing.T) {
		n := mustNetwork(t, NetworkConfig{})
		if _, err := n.Open(netip.AddrPort{}); err == nil {
			t.Fatal("Open(invalid) succeeded")
		}
	})
	t.Run("IPv4-mapped addresses are unmapped", func(t *testing.T) {
		n := mustNetwork(t, NetworkConfig{})
		mapped := netip.MustParseAddrPort("[::ffff:127.0.0.1]:10001")
		a := open(t, n, mapped)
		b := open(t, n, addrB)
		if a.LocalAddr() != addrA {
			t.Fatalf("LocalAddr() = %v, want %v", a.LocalAddr(), addrA)
		}
		mustSend(t, b, mapped, []byte("x"))
		mustRecv(t, a, addrB, []byte("x"))
		if got := n.NodeStats(mapped).ReceivedMessages; got != 1 {
			t.Errorf("NodeStats(mapped).ReceivedMessages = %d, want 1", got)
		}
	})
}

func TestMemMTU(t *testing.T) {
	n := mustNetwork(t, NetworkConfig{MTU: 100})
	a, b := open(t, n, addrA), open(t, n, addrB)
	mustSend(t, a, addrB, make([]byte, 100))
	err := a.Send(addrB, make([]byte, 101))
	if err == nil || !strings.Contains(err.Error(), "exceeds MTU") || !errors.Is(err, ErrTooLarge) || IsTransient(err) {
		t.Fatalf("Send(101 bytes) with MTU 100 = %v, want non-transient ErrTooLarge containing \"exceeds MTU\"", err)
	}
	mustRecv(t, b, addrA, make([]byte, 100))
	want := Stats{SentMessages: 1, SentBytes: 100, ReceivedMessages: 1, ReceivedBytes: 100}
	if diff := cmp.Diff(want, n.Stats()); diff != "" {
		t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
	}
}

// Whatever the MTU, the network refuses what UDP refuses: more than
// MaxPayloadSize bytes, and sends across address families. Refused sends
// are errors, never counted as sent.
func TestMemRefusesWhatUDPRefuses(t *testing.T) {
	v6a, v6b := netip.MustParseAddrPort("[fd00::1]:10001"), netip.MustParseAddrPort("[fd00::2]:10002")
	tests := []struct {
		name     string
		mtu      int
		from, to netip.AddrPort
		size     int
		want     error // nil: delivered
	}{
		{"no MTU, largest UDP payload", 0, addrA, addrB, MaxPayloadSize, nil},
		{"no MTU, one byte more", 0, addrA, addrB, MaxPayloadSize + 1, ErrTooLarge},
		{"no MTU, 70000 bytes", 0, addrA, addrB, 70000, ErrTooLarge},
		{"MTU above UDP's, one byte more than UDP", 100000, addrA, addrB, MaxPayloadSize + 1, ErrTooLarge},
		{"IPv6 to IPv6", 0, v6a, v6b, 10, nil},
		{"IPv4 to IPv6", 0, addrA, v6b, 10, syscall.EAFNOSUPPORT},
		{"IPv6 to IPv4", 0, v6a, addrB, 10, syscall.EAFNOSUPPORT},
		{"IPv6 wildcard to IPv4", 0, netip.MustParseAddrPort("[::]:10001"), addrB, 10, syscall.EAFNOSUPPORT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := mustNetwork(t, NetworkConfig{MTU: tt.mtu})
			a, b := open(t, n, tt.from), open(t, n, tt.to)
			err := a.Send(tt.to, make([]byte, tt.size))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Send(%d bytes) from %v to %v: %v", tt.size, tt.from, tt.to, err)
				}
				mustRecv(t, b, tt.from, make([]byte, tt.size))
				return
			}
			if !errors.Is(err, tt.want) || IsTransient(err) {
				t.Fatalf("Send(%d bytes) from %v to %v = %v, want a non-transient %v", tt.size, tt.from, tt.to, err, tt.want)
			}
			if got := n.Stats(); got != (Stats{}) {
				t.Errorf("a refused Send was counted: %+v", got)
			}
		})
	}
}

func TestMemInboxFull(t *testing.T) {
	tests := []struct {
		name      string
		inboxSize int
		capacity  int
	}{
		{"default is 100", 0, DefaultInboxSize},
		{"custom", 5, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := mustNetwork(t, NetworkConfig{InboxSize: tt.inboxSize})
			a, b := open(t, n, addrA), open(t, n, addrB)
			for i := range tt.capacity + 1 {
				mustSend(t, a, addrB, []byte{byte(i)})
			}
			want := Stats{SentMessages: uint64(tt.capacity + 1), SentBytes: uint64(tt.capacity + 1), DroppedInboxFull: 1}
			if diff := cmp.Diff(want, n.Stats()); diff != "" {
				t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
			}
			for i := range tt.capacity { // the first ones are kept, in order
				mustRecv(t, b, addrA, []byte{byte(i)})
			}
			mustSend(t, a, addrB, []byte("room again"))
			mustRecv(t, b, addrA, []byte("room again"))
		})
	}
}

// delivered sends one datagram from → to and reports whether it reached
// the inbox of to (delivery is synchronous without Delay).
func delivered(t *testing.T, from, to Conn) bool {
	t.Helper()
	before := inboxLen(to)
	mustSend(t, from, to.LocalAddr(), []byte("ping"))
	if inboxLen(to) == before {
		return false
	}
	mustRecv(t, to, from.LocalAddr(), []byte("ping"))
	return true
}

func TestMemPartitions(t *testing.T) {
	type reach struct{ AB, BA, AC, CA, BC, CB bool }
	all := reach{true, true, true, true, true, true}
	tests := []struct {
		name string
		act  func(n *Network)
		want reach
	}{
		{"connected", func(*Network) {}, all},
		{"cut blocks both directions", func(n *Network) { n.Cut(addrA, addrB) },
			reach{AB: false, BA: false, AC: true, CA: true, BC: true, CB: true}},
		{"restore with reversed arguments", func(n *Network) { n.Cut(addrA, addrB); n.Restore(addrB, addrA) }, all},
		{"isolate", func(n *Network) { n.Isolate(addrA) },
			reach{AB: false, BA: false, AC: false, CA: false, BC: true, CB: true}},
		{"rejoin", func(n *Network) { n.Isolate(addrA); n.Rejoin(addrA) }, all},
		{"rejoin keeps explicit cuts", func(n *Network) { n.Cut(addrC, addrA); n.Isolate(addrA); n.Rejoin(addrA) },
			reach{AB: true, BA: true, AC: false, CA: false, BC: true, CB: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := mustNetwork(t, NetworkConfig{})
			a, b, c := open(t, n, addrA), open(t, n, addrB), open(t, n, addrC)
			tt.act(n)
			got := reach{
				AB: delivered(t, a, b), BA: delivered(t, b, a),
				AC: delivered(t, a, c), CA: delivered(t, c, a),
				BC: delivered(t, b, c), CB: delivered(t, c, b),
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("reachability mismatch (-want +got):\n%s", diff)
			}
			blocked := 0
			for _, ok := range []bool{got.AB, got.BA, got.AC, got.CA, got.BC, got.CB} {
				if !ok {
					blocked++
				}
			}
			want := Stats{SentMessages: 6, SentBytes: 24, ReceivedMessages: uint64(6 - blocked),
				ReceivedBytes: uint64(4 * (6 - blocked)), DroppedCut: uint64(blocked)}
			if diff := cmp.Diff(want, n.Stats()); diff != "" {
				t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// dropPattern sends count datagrams and returns, for each, whether it was
// randomly dropped.
func dropPattern(t *testing.T, cfg NetworkConfig, count int) []bool {
	t.Helper()
	n := mustNetwork(t, cfg)
	a := open(t, n, addrA)
	pattern := make([]bool, count)
	for i := range pattern {
		before := n.Stats().DroppedRandom
		mustSend(t, a, addrNobody, []byte("x"))
		pattern[i] = n.Stats().DroppedRandom != before
	}
	return pattern
}

func TestMemDropProbability(t *testing.T) {
	t.Run("same seed same drops", func(t *testing.T) {
		cfg := NetworkConfig{DropProbability: 0.5, Seed: 42}
		first, second := dropPattern(t, cfg, 1000), dropPattern(t, cfg, 1000)
		if diff := cmp.Diff(first, second); diff != "" {
			t.Fatalf("two runs with seed 42 differ (-first +second):\n%s", diff)
		}
		cfg.Seed = 43
		if slices.Equal(first, dropPattern(t, cfg, 1000)) {
			t.Fatal("seeds 42 and 43 drop exactly the same datagrams")
		}
	})
	for _, p := range []float64{0, 0.1, 0.3, 0.5, 0.9, 1} {
		t.Run(fmt.Sprintf("rate p=%v", p), func(t *testing.T) {
			const sends = 10000
			n := mustNetwork(t, NetworkConfig{DropProbability: p, Seed: 1})
			a := open(t, n, addrA)
			for range sends {
				mustSend(t, a, addrNobody, []byte("x"))
			}
			st := n.Stats()
			rate := float64(st.DroppedRandom) / sends
			if math.Abs(rate-p) > 0.03 {
				t.Errorf("p=%v: measured drop rate %v, want within ±0.03", p, rate)
			}
			if st.SentMessages+st.DroppedRandom != sends || st.DroppedNoListener != st.SentMessages {
				t.Errorf("p=%v: Stats() = %+v, want sent+dropped = %d, all sent unheard", p, st, sends)
			}
		})
	}
	t.Run("SetDropProbability", func(t *testing.T) {
		n := mustNetwork(t, NetworkConfig{})
		a := open(t, n, addrA)
		for _, bad := range []float64{-1, 1.5, math.NaN()} {
			if err := n.SetDropProbability(bad); err == nil {
				t.Errorf("SetDropProbability(%v) succeeded", bad)
			}
		}
		if err := n.SetDropProbability(1); err != nil {
			t.Fatal(err)
		}
		mustSend(t, a, addrNobody, []byte("x"))
		if err := n.SetDropProbability(0); err != nil {
			t.Fatal(err)
		}
		mustSend(t, a, addrNobody, []byte("x"))
		want := Stats{SentMessages: 1, SentBytes: 1, DroppedRandom: 1, DroppedNoListener: 1}
		if diff := cmp.Diff(want, n.Stats()); diff != "" {
			t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestMemDelay(t *testing.T) {
	const delay = 50 * time.Millisecond
	t.Run("delivered at exactly the delay, in order", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := mustNetwork(t, NetworkConfig{Delay: delay})
			a, b := open(t, n, addrA), open(t, n, addrB)
			start := time.Now()
			mustSend(t, a, addrB, []byte("1"))
			mustSend(t, a, addrB, []byte("2"))
			<-time.After(10 * time.Millisecond)
			mustSend(t, a, addrB, []byte("3"))
			synctest.Wait()
			if got := inboxLen(b); got != 0 {
				t.Fatalf("%d datagrams delivered before the delay", got)
			}
			for _, want := range []struct {
				payload string
				at      time.Duration
			}{{"1", delay}, {"2", delay}, {"3", delay + 10*time.Millisecond}} {
				mustRecv(t, b, addrA, []byte(want.payload))
				if d := time.Since(start); d != want.at {
					t.Errorf("datagram %s received after %v, want exactly %v", want.payload, d, want.at)
				}
			}
		})
	})
	t.Run("destination closed in flight", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := mustNetwork(t, NetworkConfig{Delay: delay})
			a, b := open(t, n, addrA), open(t, n, addrB)
			mustSend(t, a, addrB, []byte("lost"))
			b.Close()
			<-time.After(delay)
			synctest.Wait()
			want := Stats{SentMessages: 1, SentBytes: 4, DroppedNoListener: 1}
			if diff := cmp.Diff(want, n.NodeStats(addrA)); diff != "" {
				t.Errorf("NodeStats(A) mismatch (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("destination reopened in flight", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			n := mustNetwork(t, NetworkConfig{Delay: delay})
			a, b := open(t, n, addrA), open(t, n, addrB)
			mustSend(t, a, addrB, []byte("late"))
			b.Close()
			b2 := open(t, n, addrB)
			mustRecv(t, b2, addrA, []byte("late"))
		})
	})
}

func TestMemJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			count  = 100
			delay  = 10 * time.Millisecond
			jitter = 20 * time.Millisecond
		)
		n := mustNetwork(t, NetworkConfig{Delay: delay, Jitter: jitter, Seed: 3, InboxSize: count})
		a, b := open(t, n, addrA), open(t, n, addrB)
		start := time.Now()
		for i := range count {
			mustSend(t, a, addrB, binary.BigEndian.AppendUint32(nil, uint32(i)))
		}
		var order []int
		for range count {
			r := recv(b, MaxPayloadSize)
			if r.err != nil {
				t.Fatalf("Recv: %v", r.err)
			}
			if d := time.Since(start); d < delay || d >= delay+jitter {
				t.Errorf("datagram received after %v, want in [%v, %v)", d, delay, delay+jitter)
			}
			order = append(order, int(binary.BigEndian.Uint32(r.data)))
		}
		if slices.IsSorted(order) {
			t.Error("jitter did not reorder any datagram")
		}
		slices.Sort(order)
		for i, v := range order {
			if v != i {
				t.Fatalf("received set is not 0..%d: %v", count-1, order)
			}
		}
	})
}

func TestMemStats(t *testing.T) {
	n := mustNetwork(t, NetworkConfig{MTU: 100, InboxSize: 1})
	a, b, c := open(t, n, addrA), open(t, n, addrB), open(t, n, addrC)
	mustSend(t, a, addrB, make([]byte, 10)) // received by b
	mustRecv(t, b, addrA, make([]byte, 10))
	mustSend(t, a, addrB, make([]byte, 20)) // fills b's inbox
	mustSend(t, a, addrB, make([]byte, 30)) // inbox full
	mustSend(t, a, addrNobody, make([]byte, 5))
	if err := a.Send(addrB, make([]byte, 101)); err == nil { // MTU: not counted
		t.Fatal("Send over MTU succeeded")
	}
	n.Cut(addrC, addrB)
	mustSend(t, c, addrB, make([]byte, 7))
	mustSend(t, b, addrC, make([]byte, 8))
	if err := n.SetDropProbability(1); err != nil {
		t.Fatal(err)
	}
	mustSend(t, c, addrA, make([]byte, 9)) // random drop: not sent
	if err := n.SetDropProbability(0); err != nil {
		t.Fatal(err)
	}
	mustRecv(t, b, addrA, make([]byte, 20))

	tests := []struct {
		name string
		got  Stats
		want Stats
	}{
		{"total", n.Stats(), Stats{SentMessages: 6, SentBytes: 10 + 20 + 30 + 5 + 7 + 8,
			ReceivedMessages: 2, ReceivedBytes: 30,
			DroppedRandom: 1, DroppedCut: 2, DroppedNoListener: 1, DroppedInboxFull: 1}},
		{"A", n.NodeStats(addrA), Stats{SentMessages: 4, SentBytes: 65, DroppedNoListener: 1, DroppedInboxFull: 1}},
		{"B", n.NodeStats(addrB), Stats{SentMessages: 1, SentBytes: 8, ReceivedMessages: 2, ReceivedBytes: 30, DroppedCut: 1}},
		{"C", n.NodeStats(addrC), Stats{SentMessages: 1, SentBytes: 7, DroppedRandom: 1, DroppedCut: 1}},
		{"unknown address", n.NodeStats(addrNobody), Stats{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("stats mismatch (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("reset", func(t *testing.T) {
		n.ResetStats()
		for _, got := range []Stats{n.Stats(), n.NodeStats(addrA), n.NodeStats(addrB), n.NodeStats(addrC)} {
			if got != (Stats{}) {
				t.Errorf("after ResetStats: %+v, want zero", got)
			}
		}
		mustSend(t, a, addrC, []byte("xy")) // per-conn counters still wired after reset
		if diff := cmp.Diff(Stats{SentMessages: 1, SentBytes: 2}, n.NodeStats(addrA)); diff != "" {
			t.Errorf("NodeStats(A) after reset mismatch (-want +got):\n%s", diff)
		}
	})
}

func TestMemSendCopiesPayload(t *testing.T) {
	n := mustNetwork(t, NetworkConfig{})
	a, b := open(t, n, addrA), open(t, n, addrB)
	p := []byte("original")
	mustSend(t, a, addrB, p)
	copy(p, "CLOBBER!")
	mustRecv(t, b, addrA, []byte("original"))
}

func TestMemConcurrentSenders(t *testing.T) {
	const senders, perSender = 8, 500
	n := mustNetwork(t, NetworkConfig{InboxSize: senders * perSender})
	dst := open(t, n, addrNobody)
	var wg sync.WaitGroup
	for s := range senders {
		c := open(t, n, netip.AddrPortFrom(addrA.Addr(), uint16(20000+s)))
		wg.Go(func() {
			for i := range perSender {
				if err := c.Send(addrNobody, []byte{byte(s), byte(i)}); err != nil {
					t.Errorf("Send: %v", err)
					return
				}
			}
		})
	}
	// Receive concurrently with the senders; every datagram is delivered
	// synchronously, so exactly senders*perSender arrive.
	perFrom := make(map[netip.AddrPort]int)
	for range senders * perSender {
		r := recv(dst, MaxPayloadSize)
		if r.err != nil {
			t.Fatalf("Recv: %v", r.err)
		}
		perFrom[r.from]++
	}
	wg.Wait()
	for from, got := range perFrom {
		if got != perSender {
			t.Errorf("received %d datagrams from %v, want %d", got, from, perSender)
		}
	}
	want := Stats{SentMessages: senders * perSender, SentBytes: 2 * senders * perSender,
		ReceivedMessages: senders * perSender, ReceivedBytes: 2 * senders * perSender}
	if diff := cmp.Diff(want, n.Stats()); diff != "" {
		t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
	}
}

func TestDelayQueueOrder(t *testing.T) {
	base := time.Unix(0, 0)
	var q delayQueue
	ats := []int{5, 3, 9, 3, 1, 7, 1, 5}
	for i, at := range ats {
		q.push(delayed{at: base.Add(time.Duration(at)), seq: uint64(i)})
	}
	type item struct {
		At  int
		Seq uint64
	}
	var got []item
	for len(q) > 0 {
		d := q.pop()
		got = append(got, item{int(d.at.Sub(base)), d.seq})
	}
	want := []item{{1, 4}, {1, 6}, {3, 1}, {3, 3}, {5, 0}, {5, 7}, {7, 5}, {9, 2}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pop order mismatch (-want +got):\n%s", diff)
	}
}

func BenchmarkMemSendRecv(b *testing.B) {
	n := mustNetwork(b, NetworkConfig{})
	src, dst := open(b, n, addrA), open(b, n, addrB)
	payload := make([]byte, 1024)
	buf := make([]byte, MaxPayloadSize)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if err := src.Send(addrB, payload); err != nil {
			b.Fatal(err)
		}
		if _, _, err := dst.Recv(buf); err != nil {
			b.Fatal(err)
		}
	}
}
