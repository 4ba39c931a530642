package overlay

import (
	"net"
	"net/netip"
	"sync"

	"golang.zx2c4.com/wireguard/conn"
)

// addrBind is a conn.Bind with one UDP socket bound to one address.
// wireguard-go's default bind listens on the wildcard address of both
// families; a mesh given MeshConfig.ListenAddr must be reachable only there
// (a test on 127.0.0.1, a node on one interface of several).
//
// It reads and writes one datagram per call (BatchSize 1): the overlay
// carries control traffic and test streams, not bulk data, and the default
// bind, with its batching and offloads, stays the choice without ListenAddr.
type addrBind struct {
	addr netip.Addr

	mu sync.Mutex
	uc *net.UDPConn // nil while closed
}

func newAddrBind(addr netip.Addr) *addrBind { return &addrBind{addr: addr} }

// Open binds addr:port (port 0 picks a free one) and returns its receiver.
func (b *addrBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.uc != nil {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	uc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(b.addr, port)))
	if err != nil {
		return nil, 0, err
	}
	b.uc = uc
	// The receiver holds its own socket: after Close it returns
	// net.ErrClosed, which tells the device to stop reading, even if the
	// bind has been opened again meanwhile.
	receive := func(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		n, from, err := uc.ReadFromUDPAddrPort(packets[0])
		if err != nil {
			return 0, err
		}
		sizes[0] = n
		eps[0] = endpoint(unmapAddrPort(from))
		return 1, nil
	}
	return []conn.ReceiveFunc{receive}, uint16(uc.LocalAddr().(*net.UDPAddr).Port), nil
}

// Close closes the socket; the receiver returns net.ErrClosed.
func (b *addrBind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.uc == nil {
		return nil
	}
	err := b.uc.Close()
	b.uc = nil
	return err
}

// SetMark is a no-op: fwmark routing concerns a kernel device's traffic
// leaving the host, not a socket bound to one address.
func (b *addrBind) SetMark(uint32) error { return nil }

// Send writes each buffer to ep as one datagram.
func (b *addrBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	dst, ok := ep.(endpoint)
	if !ok {
		return conn.ErrWrongEndpointType
	}
	b.mu.Lock()
	uc := b.uc
	b.mu.Unlock()
	if uc == nil {
		return net.ErrClosed
	}
	for _, buf := range bufs {
		if _, err := uc.WriteToUDPAddrPort(buf, netip.AddrPort(dst)); err != nil {
			return err
		}
	}
	return nil
}

// ParseEndpoint parses a peer's endpoint, "ip:port" or "[ip6]:port".
func (b *addrBind) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, err
	}
	return endpoint(unmapAddrPort(ap)), nil
}

func (b *addrBind) BatchSize() int { return 1 }

// endpoint is a peer's address as addrBind sees it. The source address is
// always the bound one, so there is none to remember or clear.
type endpoint netip.AddrPort

func (e endpoint) ClearSrc()           {}
func (e endpoint) SrcToString() string { return "" }
func (e endpoint) DstToString() string { return netip.AddrPort(e).String() }
func (e endpoint) DstIP() netip.Addr   { return netip.AddrPort(e).Addr() }
func (e endpoint) SrcIP() netip.Addr   { return netip.Addr{} }

// DstToBytes is the address as the cookie MAC (mac2) covers it.
func (e endpoint) DstToBytes() []byte {
	b, _ := netip.AddrPort(e).MarshalBinary()
	return b
}
