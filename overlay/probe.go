package overlay

// Health through the tunnel. A handshake says that the peers' WireGuard
// devices agree on keys; it does not say that packets between overlay
// addresses arrive (a missing route, a firewall on the TUN interface, a
// wrong MTU). So every mesh answers probes on its overlay address, UDP
// port MeshConfig.ProbePort, and sends one to each peer's overlay address
// every ProbeInterval:
//
//	request  "CCPQ" nonce(8)   ─── through the tunnel ──▶ peer
//	reply    "CCPR" nonce(8)   ◀── the same datagram, retagged
//
// A reply counts only if its nonce is one this mesh sent to that address
// and has not seen answered. A peer "answered" if a reply came after the
// previous round was sent, so a peer has a whole interval to answer.
//
// Locking: mu guards pending and state; the socket is used without it.

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Probe defaults.
const (
	// DefaultProbeInterval is the period of health probes.
	DefaultProbeInterval = 5 * time.Second
	// DefaultProbePort is the UDP port, on each overlay address, that
	// answers probes.
	DefaultProbePort = 51819
)

const (
	probeLen     = 12
	probeRequest = "CCPQ"
	probeReply   = "CCPR"
)

// ProbeResult is the outcome of one probe of a peer (Mesh.ProbePeers).
type ProbeResult struct {
	NodeID    uint64
	OverlayIP netip.Addr
	// RTT is the round trip of the probe through the tunnel; 0 if Err.
	RTT time.Duration
	// Err says why no reply came: the context ended first, or the probe
	// could not be sent.
	Err error
}

type pendingProbe struct {
	ip    netip.Addr
	sent  time.Time
	reply chan time.Duration // nil for a periodic probe
}

type probeState struct {
	prevSent, lastSent time.Time
	lastReply          time.Time
	rtt                time.Duration
}

type prober struct {
	pc     net.PacketConn
	port   uint16
	log    *slog.Logger
	closed atomic.Bool

	mu      sync.Mutex // guards the fields below
	rng     *mrand.ChaCha8
	pending map[uint64]pendingProbe
	state   map[netip.Addr]*probeState
}

// newProber answers probes on pc (bound to overlay address:port).
func newProber(pc net.PacketConn, port uint16, log *slog.Logger) *prober {
	var seed [32]byte
	rand.Read(seed[:])
	return &prober{
		pc:      pc,
		port:    port,
		log:     log,
		rng:     mrand.NewChaCha8(seed),
		pending: make(map[uint64]pendingProbe),
		state:   make(map[netip.Addr]*probeState),
	}
}

// serve answers requests and matches replies until the socket fails or
// is closed (closing is how Mesh.Close stops it).
func (p *prober) serve() {
	buf := make([]byte, 64)
	for {
		n, from, err := p.pc.ReadFrom(buf)
		if err != nil {
			if !p.closed.Load() {
				p.log.Warn("probe socket failed: health probes stop", "err", err)
			}
			return
		}
		if n != probeLen {
			continue
		}
		switch string(buf[:4]) {
		case probeRequest:
			copy(buf[:4], probeReply)
			p.pc.WriteTo(buf[:probeLen], from)
		case probeReply:
			p.matchReply(binary.BigEndian.Uint64(buf[4:probeLen]), addrOf(from))
		}
	}
}

// close stops serve.
func (p *prober) close() error {
	p.closed.Store(true)
	return p.pc.Close()
}

func addrOf(a net.Addr) netip.Addr {
	if u, ok := a.(*net.UDPAddr); ok {
		return u.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

func (p *prober) matchReply(nonce uint64, from netip.Addr) {
	now := time.Now()
	p.mu.Lock()
	pp, ok := p.pending[nonce]
	if !ok || pp.ip != from {
		p.mu.Unlock()
		return
	}
	delete(p.pending, nonce)
	rtt := now.Sub(pp.sent)
	st := p.stateLocked(pp.ip)
	st.lastReply, st.rtt = now, rtt
	p.mu.Unlock()
	if pp.reply != nil {
		pp.reply <- rtt // buffered: never blocks
	}
}

func (p *prober) stateLocked(ip netip.Addr) *probeState {
	st, ok := p.state[ip]
	if !ok {
		st = &probeState{}
		p.state[ip] = st
	}
	return st
}

// send sends a request to ip; reply, if not nil, receives the round trip.
func (p *prober) send(ip netip.Addr, reply chan time.Duration, round bool) (nonce uint64, err error) {
	now := time.Now()
	p.mu.Lock()
	nonce = p.rng.Uint64()
	p.pending[nonce] = pendingProbe{ip: ip, sent: now, reply: reply}
	if round {
		st := p.stateLocked(ip)
		st.prevSent, st.lastSent = st.lastSent, now
	}
	p.mu.Unlock()
	var b [probeLen]byte
	copy(b[:4], probeRequest)
	binary.BigEndian.PutUint64(b[4:], nonce)
	_, err = p.pc.WriteTo(b[:], net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, p.port)))
	return nonce, err
}

// round probes every target once and forgets probes unanswered for two
// intervals, and the state of addresses no longer probed.
func (p *prober) round(targets []netip.Addr, interval time.Duration) {
	now := time.Now()
	p.mu.Lock()
	for n, pp := range p.pending {
		if pp.reply == nil && now.Sub(pp.sent) > 2*interval {
			delete(p.pending, n)
		}
	}
	keep := make(map[netip.Addr]bool, len(targets))
	for _, ip := range targets {
		keep[ip] = true
	}
	for ip := range p.state {
		if !keep[ip] {
			delete(p.state, ip)
		}
	}
	p.mu.Unlock()
	for _, ip := range targets {
		if _, err := p.send(ip, nil, true); err != nil {
			p.log.Debug("probe not sent", "overlay_ip", ip, "err", err)
		}
	}
}

// probe sends one request to ip and waits for its reply until ctx is done.
func (p *prober) probe(ctx context.Context, ip netip.Addr) (time.Duration, error) {
	reply := make(chan time.Duration, 1)
	nonce, err := p.send(ip, reply, false)
	if err != nil {
		return 0, fmt.Errorf("overlay: probe %v: %w", ip, err)
	}
	select {
	case rtt := <-reply:
		return rtt, nil
	case <-ctx.Done():
		p.mu.Lock()
		delete(p.pending, nonce)
		p.mu.Unlock()
		return 0, fmt.Errorf("overlay: probe %v: no reply: %w", ip, ctx.Err())
	}
}

// health returns what the probes say of ip: whether it answered since the
// round before the last, its last reply and round trip.
func (p *prober) health(ip netip.Addr) (answered bool, last time.Time, rtt time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.state[ip]
	if !ok || st.lastReply.IsZero() {
		return false, time.Time{}, 0
	}
	return !st.lastReply.Before(st.prevSent), st.lastReply, st.rtt
}

// startProbes answers probes on the overlay address and, unless
// ProbeInterval is negative, probes every peer each interval.
func (m *Mesh) startProbes() error {
	port := uint16(m.cfg.ProbePort)
	if port == 0 {
		port = DefaultProbePort
	}
	pc, err := m.dev.ListenUDP(netip.AddrPortFrom(m.cfg.OverlayIP, port))
	if err != nil {
		return fmt.Errorf("overlay: probe port %d on %v: %w", port, m.cfg.OverlayIP, err)
	}
	p := newProber(pc, port, m.log)
	m.probes = p
	ctx, cancel := context.WithCancel(context.Background())
	m.stopProbe = cancel
	m.probeWG.Go(p.serve)
	interval := m.cfg.ProbeInterval
	if interval == 0 {
		interval = DefaultProbeInterval
	}
	if interval < 0 {
		return nil
	}
	m.probeWG.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				p.round(m.probeTargets(), interval)
			}
		}
	})
	return nil
}

func (m *Mesh) stopProbes() {
	if m.probes == nil {
		return
	}
	m.stopProbe()
	m.probes.close()
	m.probeWG.Wait()
}

// probeTargets returns the overlay address probed for each configured
// peer: its first allowed IP (its IPv4 address if dual-stack).
func (m *Mesh) probeTargets() []netip.Addr {
	var out []netip.Addr
	for _, p := range m.Peers() {
		if len(p.AllowedIPs) > 0 {
			out = append(out, p.AllowedIPs[0].Addr())
		}
	}
	return out
}

// ProbePeers probes every configured peer through the tunnel now and
// waits for the replies until ctx is done: a peer that has not answered by
// then has a ProbeResult with an error. Results are in node id order.
func (m *Mesh) ProbePeers(ctx context.Context) []ProbeResult {
	byIP := make(map[netip.Addr]uint64)
	for _, info := range m.pool.Peers() {
		byIP[info.OverlayIP.Unmap()] = info.NodeID
	}
	targets := m.probeTargets()
	results := make([]ProbeResult, len(targets))
	var wg sync.WaitGroup
	for i, ip := range targets {
		results[i] = ProbeResult{NodeID: byIP[ip], OverlayIP: ip}
		if m.probes == nil {
			results[i].Err = errors.New("overlay: probes are not running")
			continue
		}
		wg.Go(func() { results[i].RTT, results[i].Err = m.probes.probe(ctx, ip) })
	}
	wg.Wait()
	slices.SortFunc(results, func(a, b ProbeResult) int { return cmp.Compare(a.NodeID, b.NodeID) })
	return results
}
