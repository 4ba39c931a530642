package transport

import (
	"errors"
	"net/netip"
	"slices"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// lossyRun sends count datagrams through Lossy(p, seed) over a perfect
// in-memory network and returns the indices that arrived.
func lossyRun(t *testing.T, p float64, seed uint64, count int) []int {
	t.Helper()
	n := mustNetwork(t, NetworkConfig{InboxSize: count})
	tr, err := Lossy(n, p, seed)
	if err != nil {
		t.Fatalf("Lossy: %v", err)
	}
	a, b := open(t, tr, addrA), open(t, tr, addrB)
	for i := range count {
		mustSend(t, a, addrB, []byte{byte(i >> 8), byte(i)})
	}
	var got []int
	for range n.Stats().SentMessages {
		r := recv(b, MaxPayloadSize)
		if r.err != nil {
			t.Fatalf("Recv: %v", r.err)
		}
		got = append(got, int(r.data[0])<<8|int(r.data[1]))
	}
	return got
}

func TestLossy(t *testing.T) {
	const count = 1000
	all := make([]int, count)
	for i := range all {
		all[i] = i
	}
	tests := []struct {
		name string
		p    float64
		want func(t *testing.T, got []int)
	}{
		{"p=0 passes everything", 0, func(t *testing.T, got []int) {
			if diff := cmp.Diff(all, got); diff != "" {
				t.Errorf("arrived mismatch (-want +got):\n%s", diff)
			}
		}},
		{"p=1 drops everything", 1, func(t *testing.T, got []int) {
			if len(got) != 0 {
				t.Errorf("%d datagrams arrived, want none", len(got))
			}
		}},
		{"p=0.5 drops about half", 0.5, func(t *testing.T, got []int) {
			if len(got) < 400 || len(got) > 600 {
				t.Errorf("%d of %d datagrams arrived, want about half", len(got), count)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.want(t, lossyRun(t, tt.p, 1, count)) })
	}
	t.Run("seeded determinism", func(t *testing.T) {
		first, second := lossyRun(t, 0.3, 7, count), lossyRun(t, 0.3, 7, count)
		if diff := cmp.Diff(first, second); diff != "" {
			t.Errorf("two runs with seed 7 differ (-first +second):\n%s", diff)
		}
		if slices.Equal(first, lossyRun(t, 0.3, 8, count)) {
			t.Error("seeds 7 and 8 drop exactly the same datagrams")
		}
	})
}

func TestLossyErrors(t *testing.T) {
	n := mustNetwork(t, NetworkConfig{})
	for _, p := range []float64{-0.5, 1.5} {
		if _, err := Lossy(n, p, 0); err == nil {
			t.Errorf("Lossy(p=%v) succeeded", p)
		}
	}
	if _, err := Lossy(nil, 0.5, 0); err == nil {
		t.Error("Lossy(nil) succeeded")
	}
	tr, err := Lossy(n, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := open(t, tr, addrA)
	if _, err := tr.Open(addrA); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("second Open = %v, want EADDRINUSE", err)
	}
	c.Close()
	if err := c.Send(addrB, []byte("x")); err != ErrClosed {
		t.Errorf("Send after Close = %v, want ErrClosed even when it would be dropped", err)
	}
}

// A Send the network refuses fails even when Lossy would have dropped it,
// and it does not consume a random draw: the drops that follow are the
// same as without it.
func TestLossyRefusesBeforeDropping(t *testing.T) {
	v6 := netip.MustParseAddrPort("[fd00::1]:10003")
	tests := []struct {
		name  string
		inner func(t *testing.T) Transport
		to    func(b Conn) netip.AddrPort
		size  int
		want  error
	}{
		{"in-memory, larger than UDP allows", func(t *testing.T) Transport { return mustNetwork(t, NetworkConfig{}) },
			func(b Conn) netip.AddrPort { return b.LocalAddr() }, MaxPayloadSize + 1, ErrTooLarge},
		{"in-memory, larger than the MTU", func(t *testing.T) Transport { return mustNetwork(t, NetworkConfig{MTU: 100}) },
			func(b Conn) netip.AddrPort { return b.LocalAddr() }, 101, ErrTooLarge},
		{"in-memory, IPv4 to IPv6", func(t *testing.T) Transport { return mustNetwork(t, NetworkConfig{}) },
			func(Conn) netip.AddrPort { return v6 }, 10, syscall.EAFNOSUPPORT},
		{"counted in-memory, larger than the MTU", func(t *testing.T) Transport { return Counting(mustNetwork(t, NetworkConfig{MTU: 100})) },
			func(b Conn) netip.AddrPort { return b.LocalAddr() }, 101, ErrTooLarge},
		{"UDP, larger than UDP allows", func(*testing.T) Transport { return UDP{} },
			func(b Conn) netip.AddrPort { return b.LocalAddr() }, MaxPayloadSize + 1, ErrTooLarge},
		{"UDP, IPv4 to IPv6", func(*testing.T) Transport { return UDP{} },
			func(Conn) netip.AddrPort { return netip.MustParseAddrPort("[::1]:9") }, 10, syscall.EAFNOSUPPORT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range []float64{1, 0.5} {
				tr, err := Lossy(tt.inner(t), p, 3)
				if err != nil {
					t.Fatal(err)
				}
				a, b := open(t, tr, localhost0), open(t, tr, localhost0)
				for range 20 {
					if err := a.Send(tt.to(b), make([]byte, tt.size)); !errors.Is(err, tt.want) || IsTransient(err) {
						t.Fatalf("p=%v: Send(%d bytes) = %v, want a non-transient %v", p, tt.size, err, tt.want)
					}
				}
			}
		})
	}
	t.Run("refused sends draw no random number", func(t *testing.T) {
		run := func(refusedFirst bool) []int {
			n := mustNetwork(t, NetworkConfig{MTU: 100, InboxSize: 100})
			tr, _ := Lossy(n, 0.5, 11)
			a, b := open(t, tr, addrA), open(t, tr, addrB)
			if refusedFirst {
				for range 10 {
					a.Send(addrB, make([]byte, 101))
				}
			}
			for i := range 50 {
				mustSend(t, a, addrB, []byte{byte(i)})
			}
			var got []int
			for range n.Stats().SentMessages {
				got = append(got, int(recv(b, MaxPayloadSize).data[0]))
			}
			return got
		}
		if diff := cmp.Diff(run(false), run(true)); diff != "" {
			t.Errorf("refused sends changed the drops that follow (-without +with):\n%s", diff)
		}
	})
}

func TestCounting(t *testing.T) {
	run := func(t *testing.T, tr Transport, inner func() Stats) {
		ctr := Counting(tr)
		a, b := open(t, ctr, localhost0), open(t, ctr, localhost0)
		for _, size := range []int{10, 20, 30} {
			mustSend(t, a, b.LocalAddr(), make([]byte, size))
			mustRecv(t, b, a.LocalAddr(), make([]byte, size))
		}
		mustSend(t, b, a.LocalAddr(), make([]byte, 5))
		mustRecv(t, a, b.LocalAddr(), make([]byte, 5))
		if err := a.Send(b.LocalAddr(), make([]byte, MaxPayloadSize+1)); err == nil {
			t.Fatal("oversized Send succeeded")
		}
		if _, err := ctr.Open(a.LocalAddr()); err == nil {
			t.Fatal("second Open succeeded")
		}
		tests := []struct {
			name      string
			got, want Stats
		}{
			{"total", ctr.Stats(), Stats{SentMessages: 4, SentBytes: 65, ReceivedMessages: 4, ReceivedBytes: 65}},
			{"a", a.(*CountingConn).Stats(), Stats{SentMessages: 3, SentBytes: 60, ReceivedMessages: 1, ReceivedBytes: 5}},
			{"b", b.(*CountingConn).Stats(), Stats{SentMessages: 1, SentBytes: 5, ReceivedMessages: 3, ReceivedBytes: 60}},
		}
		if inner != nil {
			tests = append(tests, struct {
				name      string
				got, want Stats
			}{"inner network agrees", inner(), ctr.Stats()})
		}
		for _, tt := range tests {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("%s stats mismatch (-want +got):\n%s", tt.name, diff)
			}
		}
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	t.Run("in-memory", func(t *testing.T) {
		n := mustNetwork(t, NetworkConfig{})
		run(t, n, n.Stats)
	})
	t.Run("UDP", func(t *testing.T) { run(t, UDP{}, nil) })
}
