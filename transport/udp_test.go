package transport

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
)

// Real-UDP tests: 127.0.0.1 / [::1] with OS-chosen ports only.

func TestUDPOpen(t *testing.T) {
	tests := []struct {
		name    string
		udp     UDP
		addr    netip.AddrPort
		wantErr string
	}{
		{"default buffers", UDP{}, localhost0, ""},
		{"custom buffers", UDP{SocketBuffer: 1 << 16}, localhost0, ""},
		{"OS default buffers", UDP{SocketBuffer: -1}, localhost0, ""},
		{"mapped address is unmapped", UDP{}, netip.MustParseAddrPort("[::ffff:127.0.0.1]:0"), ""},
		{"invalid address", UDP{}, netip.AddrPort{}, "failed to bind to invalid AddrPort/UDP for gossip"},
		{"address not on this host", UDP{}, netip.MustParseAddrPort("192.0.2.1:0"), "failed to bind to 192.0.2.1:0/UDP for gossip: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.udp.Open(tt.addr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open(%v) = %v, want error containing %q", tt.addr, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%v): %v", tt.addr, err)
			}
			defer c.Close()
			if got := c.LocalAddr(); got.Addr() != localhost0.Addr() || got.Port() == 0 {
				t.Errorf("LocalAddr() = %v, want 127.0.0.1 with a chosen port", got)
			}
		})
	}
	t.Run("bind error names the address", func(t *testing.T) {
		c := open(t, UDP{}, localhost0)
		_, err := UDP{}.Open(c.LocalAddr())
		want := "failed to bind to " + c.LocalAddr().String() + "/UDP for gossip: "
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("second Open = %v, want prefix %q", err, want)
		}
	})
}

// 0.0.0.0 binds IPv4 only: the same port on [::1] stays free for another
// socket, which receives what is sent there.
func TestUDPIPv4WildcardIsIPv4Only(t *testing.T) {
	c := open(t, UDP{}, netip.MustParseAddrPort("0.0.0.0:0"))
	v6 := netip.AddrPortFrom(netip.IPv6Loopback(), c.LocalAddr().Port())
	other, err := net.ListenUDP("udp6", net.UDPAddrFromAddrPort(v6))
	if errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("%v is taken by the socket bound to %v: it also listens on IPv6", v6, c.LocalAddr())
	}
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer other.Close()
	if _, err := other.WriteToUDPAddrPort([]byte("v6"), v6); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	if n, _, err := other.ReadFromUDPAddrPort(buf); err != nil || string(buf[:n]) != "v6" {
		t.Fatalf("the [::1] socket read (%q, %v), want the datagram sent to %v", buf[:n], err, v6)
	}
	// IPv4 still reaches the wildcard socket.
	sender := open(t, UDP{}, localhost0)
	mustSend(t, sender, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), c.LocalAddr().Port()), []byte("v4"))
	mustRecv(t, c, sender.LocalAddr(), []byte("v4"))
}

func TestUDPSendErrors(t *testing.T) {
	c := open(t, UDP{}, localhost0)
	// An IPv4 socket cannot reach an IPv6 peer: a permanent, non-transient error.
	err := c.Send(netip.MustParseAddrPort("[2001:db8::1]:9"), []byte("x"))
	if err == nil || IsTransient(err) || errors.Is(err, ErrClosed) {
		t.Errorf("Send to IPv6 from IPv4 socket = %v, want a non-transient error", err)
	}
}

func TestUDPOversizedDatagramIsTransient(t *testing.T) {
	// Over IPv6 a datagram can carry more than MaxPayloadSize bytes; the
	// receiver must drop it as a transient error and keep going.
	c, err := UDP{}.Open(netip.MustParseAddrPort("[::1]:0"))
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	raw, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer raw.Close()
	to := net.UDPAddrFromAddrPort(c.LocalAddr())
	if _, err := raw.WriteToUDP(make([]byte, MaxPayloadSize+1), to); err != nil {
		t.Skipf("cannot send an oversized IPv6 datagram here: %v", err)
	}
	if _, err := raw.WriteToUDP([]byte("next"), to); err != nil {
		t.Fatal(err)
	}
	from := raw.LocalAddr().(*net.UDPAddr).AddrPort()
	r := recv(c, 1<<16)
	if !IsTransient(r.err) || !errors.Is(r.err, ErrTooLarge) || r.from != from {
		t.Fatalf("Recv of oversized datagram = (%d bytes, %v, %v), want transient ErrTooLarge from %v", len(r.data), r.from, r.err, from)
	}
	mustRecv(t, c, from, []byte("next"))
}

func TestIsTransient(t *testing.T) {
	sysErr := func(errno error) error {
		return &net.OpError{Op: "read", Net: "udp", Err: os.NewSyscallError("recvfrom", errno)}
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"ErrClosed", ErrClosed, false},
		{"net.ErrClosed", net.ErrClosed, false},
		{"plain error", errors.New("boom"), false},
		{"ErrTooLarge on send", ErrTooLarge, false},
		{"dropped datagram", &transientError{ErrTooLarge}, true},
		{"ECONNREFUSED", sysErr(syscall.ECONNREFUSED), true},
		{"ECONNRESET", sysErr(syscall.ECONNRESET), true},
		{"ENOBUFS", sysErr(syscall.ENOBUFS), true},
		{"ENOMEM", sysErr(syscall.ENOMEM), true},
		{"EAGAIN", sysErr(syscall.EAGAIN), true},
		{"EHOSTUNREACH", sysErr(syscall.EHOSTUNREACH), true},
		{"ENETUNREACH", sysErr(syscall.ENETUNREACH), true},
		{"EBADF", sysErr(syscall.EBADF), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsTransient(tt.err); got != tt.want {
				t.Errorf("IsTransient(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestErrClosed(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		target error
	}{
		{"wrapped is ErrClosed", fmt.Errorf("send: %w", ErrClosed), ErrClosed},
		{"is net.ErrClosed", ErrClosed, net.ErrClosed},
		{"wrapped is net.ErrClosed", errors.Join(errors.New("recv"), ErrClosed), net.ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.target) {
				t.Errorf("errors.Is(%v, %v) = false", tt.err, tt.target)
			}
		})
	}
	if got, want := ErrClosed.Error(), "transport: connection closed"; got != want {
		t.Errorf("ErrClosed.Error() = %q, want %q", got, want)
	}
}
