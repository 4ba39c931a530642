package transport

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

// safetyNetTimeout bounds how long any Recv in these tests can block: the
// Conn is closed after that much (wall or, inside a synctest bubble,
// virtual) time, so a lost datagram fails the test instead of hanging it.
// It is never what a passing test waits for.
const safetyNetTimeout = 5 * time.Second

var localhost0 = netip.MustParseAddrPort("127.0.0.1:0")

// open opens addr on tr, closes it at cleanup, and arms the safety net.
func open(t testing.TB, tr Transport, addr netip.AddrPort) Conn {
	t.Helper()
	c, err := tr.Open(addr)
	if err != nil {
		t.Fatalf("Open(%v): %v", addr, err)
	}
	timer := time.AfterFunc(safetyNetTimeout, func() { c.Close() })
	t.Cleanup(func() {
		timer.Stop()
		c.Close()
	})
	return c
}

type recvResult struct {
	data []byte
	from netip.AddrPort
	err  error
}

// recvAsync runs one Recv in a goroutine.
func recvAsync(c Conn, bufSize int) <-chan recvResult {
	ch := make(chan recvResult, 1)
	go func() { ch <- recv(c, bufSize) }()
	return ch
}

func recv(c Conn, bufSize int) recvResult {
	buf := make([]byte, bufSize)
	n, from, err := c.Recv(buf)
	return recvResult{data: buf[:n], from: from, err: err}
}

// mustRecv receives one datagram and checks its payload and sender.
func mustRecv(t testing.TB, c Conn, wantFrom netip.AddrPort, want []byte) {
	t.Helper()
	r := recv(c, MaxPayloadSize)
	if r.err != nil {
		t.Fatalf("Recv on %v: %v", c.LocalAddr(), r.err)
	}
	if r.from != wantFrom || !bytes.Equal(r.data, want) {
		t.Fatalf("Recv on %v = (%q, %v), want (%q, %v)", c.LocalAddr(), trim(r.data), r.from, trim(want), wantFrom)
	}
}

func trim(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}

func mustSend(t testing.TB, c Conn, to netip.AddrPort, b []byte) {
	t.Helper()
	if err := c.Send(to, b); err != nil {
		t.Fatalf("Send(%v, %d bytes) from %v: %v", to, len(b), c.LocalAddr(), err)
	}
}

func mustNetwork(t testing.TB, cfg NetworkConfig) *Network {
	t.Helper()
	n, err := NewNetwork(cfg)
	if err != nil {
		t.Fatalf("NewNetwork(%+v): %v", cfg, err)
	}
	return n
}

// inboxLen is the number of datagrams waiting in an in-memory Conn.
func inboxLen(c Conn) int { return len(c.(*memConn).inbox) }
