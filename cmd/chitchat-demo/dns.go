package main

// The catalog over DNS, in Consul's naming (with an optional datacenter
// label before the domain, as Consul):
//
//	<node>.node[.<dc>].<domain>             A / AAAA of a live node
//	<service>.service[.<dc>].<domain>       A / AAAA / SRV of its passing instances
//	<tag>.<service>.service[.<dc>].<domain> the same, with that tag
//	_<service>._tcp.service[.<dc>].<domain> SRV (RFC 2782); _<service>._<tag> filters by tag
//	<hex ip>.addr[.<dc>].<domain>           A / AAAA (the targets of SRV records
//	                                        for services with an address of their own)
//
// Dead nodes and failing instances are left out. Answers come in random
// order with the configured TTL; a name that matches nothing is NXDOMAIN,
// a name that exists without records of the asked type is NOERROR without
// answers (NODATA), both with the zone's SOA; names outside the domain are
// REFUSED (no recursion). An answer too large for the client's UDP buffer
// (512 bytes, or its EDNS0 size up to 4096) is truncated with the TC flag,
// and the client retries over TCP, which carries up to 64 KiB.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/netutil"

	"github.com/gossipkit/chitchat-go/catalog"
)

// DNS server limits.
const (
	maxDNSUDPSize     = 4096 // largest EDNS0 buffer we answer into
	maxDNSInFlight    = 1024 // queries handled at once; more are dropped (UDP) as by a busy server
	maxDNSConns       = 256  // open TCP connections
	dnsTCPIdleTimeout = 8 * time.Second
)

// dnsResponder answers DNS queries from the current catalog view.
type dnsResponder struct {
	view     func() *catalog.View
	domain   string // lowercase, with the final dot
	ttl      uint32 // seconds
	rand     *lockedRand
	inFlight chan struct{}
}

func newDNSResponder(view func() *catalog.View, domain string, ttl time.Duration, r *lockedRand) *dnsResponder {
	return &dnsResponder{view: view, domain: domain, ttl: uint32(ttl / time.Second), rand: r,
		inFlight: make(chan struct{}, maxDNSInFlight)}
}

// ServeDNS implements dns.Handler.
func (d *dnsResponder) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	select {
	case d.inFlight <- struct{}{}:
		defer func() { <-d.inFlight }()
	default:
		return // overloaded: the client retries
	}
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	w.WriteMsg(d.answer(req, tcp))
}

// answer returns the reply to req, sized for UDP or TCP.
func (d *dnsResponder) answer(req *dns.Msg, tcp bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		size = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxDNSUDPSize)
		m.SetEdns0(uint16(size), false)
	}
	if tcp {
		size = dns.MaxMsgSize
	}
	switch {
	case req.Opcode != dns.OpcodeQuery:
		m.Authoritative = false
		m.SetRcode(req, dns.RcodeNotImplemented)
		return m
	case len(req.Question) != 1:
		m.Authoritative = false
		m.SetRcode(req, dns.RcodeFormatError)
		return m
	}
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	if (q.Qclass != dns.ClassINET && q.Qclass != dns.ClassANY) || !dns.IsSubDomain(d.domain, name) {
		m.Authoritative = false
		m.SetRcode(req, dns.RcodeRefused)
		return m
	}
	v := d.view()
	if !d.resolve(m, v, q.Name, name, q.Qtype) {
		m.SetRcode(req, dns.RcodeNameError)
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{d.soa(v)}
	}
	m.Truncate(size)
	return m
}

// resolve adds the answer to name (lowercase; qname as asked) to m, and
// reports whether the name exists.
func (d *dnsResponder) resolve(m *dns.Msg, v *catalog.View, qname, name string, qtype uint16) bool {
	labels := dns.SplitDomainName(strings.TrimSuffix(name, d.domain))
	if len(labels) == 0 { // the zone's apex
		if qtype == dns.TypeSOA || qtype == dns.TypeANY {
			m.Answer = append(m.Answer, d.soa(v))
		}
		return true
	}
	// An optional datacenter label follows the kind.
	if n := len(labels); n >= 2 && labels[n-1] == strings.ToLower(v.Datacenter) && isKind(labels[n-2]) {
		labels = labels[:n-1]
	}
	kind, labels := labels[len(labels)-1], labels[:len(labels)-1]
	switch {
	case kind == "node" && len(labels) == 1:
		n, ok := v.Node(labels[0])
		if !ok || !n.Live {
			return false
		}
		m.Answer = d.addrRecords(m.Answer, qname, qtype, n.Addr)
		return true
	case kind == "addr" && len(labels) == 1:
		a, ok := parseHexAddr(labels[0])
		if !ok {
			return false
		}
		m.Answer = d.addrRecords(m.Answer, qname, qtype, a)
		return true
	case kind == "service" && (len(labels) == 1 || len(labels) == 2):
		service, tag := labels[len(labels)-1], ""
		if len(labels) == 2 {
			first, second := labels[0], labels[1]
			if strings.HasPrefix(first, "_") && strings.HasPrefix(second, "_") {
				// RFC 2782: _<service>._<protocol>; a protocol other than
				// tcp is a tag, as in Consul.
				service, tag = first[1:], second[1:]
				if tag == "tcp" {
					tag = ""
				}
			} else {
				tag = first
			}
		}
		var tags []string
		if tag != "" {
			tags = []string{tag}
		}
		instances := v.Service(service).Select(tags, true)
		if len(instances) == 0 {
			return false
		}
		d.serviceRecords(m, v, qname, qtype, instances)
		return true
	}
	return false
}

func isKind(l string) bool { return l == "node" || l == "service" || l == "addr" }

// addrRecords appends the A or AAAA record of a to rrs if qtype asks for
// it.
func (d *dnsResponder) addrRecords(rrs []dns.RR, qname string, qtype uint16, a netip.Addr) []dns.RR {
	switch {
	case a.Is4() && (qtype == dns.TypeA || qtype == dns.TypeANY):
		return append(rrs, &dns.A{Hdr: d.hdr(qname, dns.TypeA), A: a.AsSlice()})
	case a.Is6() && (qtype == dns.TypeAAAA || qtype == dns.TypeANY):
		return append(rrs, &dns.AAAA{Hdr: d.hdr(qname, dns.TypeAAAA), AAAA: a.AsSlice()})
	}
	return rrs
}

// serviceRecords answers a service lookup: SRV records with the targets'
// addresses in the additional section, or the instances' addresses (once
// each), in random order.
func (d *dnsResponder) serviceRecords(m *dns.Msg, v *catalog.View, qname string, qtype uint16, instances []*catalog.Instance) {
	d.rand.shuffle(len(instances), func(i, j int) { instances[i], instances[j] = instances[j], instances[i] })
	if qtype == dns.TypeSRV {
		seen := map[string]bool{}
		for _, in := range instances {
			target := d.target(v, in)
			m.Answer = append(m.Answer, &dns.SRV{Hdr: d.hdr(qname, dns.TypeSRV), Priority: 1, Weight: 1,
				Port: uint16(in.Service.Port), Target: target})
			if !seen[target] {
				seen[target] = true
				m.Extra = d.addrRecords(m.Extra, target, dns.TypeANY, in.Addr())
			}
		}
		return
	}
	seen := map[netip.Addr]bool{}
	for _, in := range instances {
		if a := in.Addr(); !seen[a] {
			seen[a] = true
			m.Answer = d.addrRecords(m.Answer, qname, qtype, a)
		}
	}
}

// target is the SRV target of an instance: its node's name when the
// instance listens on its node's address and that name is a DNS label,
// else its own address in the .addr form.
func (d *dnsResponder) target(v *catalog.View, in *catalog.Instance) string {
	dc := strings.ToLower(v.Datacenter)
	if !in.Service.Address.IsValid() && catalog.IsDNSLabel(in.Node.Name()) {
		return strings.ToLower(in.Node.Name()) + ".node." + dc + "." + d.domain
	}
	return hex.EncodeToString(in.Addr().AsSlice()) + ".addr." + dc + "." + d.domain
}

func parseHexAddr(s string) (netip.Addr, bool) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(b)
	return a, ok
}

func (d *dnsResponder) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: d.ttl}
}

// soa is the zone's SOA record; its serial is the catalog's change index,
// its negative-caching TTL the configured TTL.
func (d *dnsResponder) soa(v *catalog.View) *dns.SOA {
	return &dns.SOA{Hdr: d.hdr(d.domain, dns.TypeSOA), Ns: "ns." + d.domain, Mbox: "hostmaster." + d.domain,
		Serial: uint32(v.Index), Refresh: 3600, Retry: 600, Expire: 86400, Minttl: d.ttl}
}

// dnsServer serves a dnsResponder on one address, over UDP and TCP.
type dnsServer struct {
	udp, tcp *dns.Server
	addr     netip.AddrPort
}

// startDNS binds addr (UDP and TCP) and serves h there. It returns once
// both servers run.
func startDNS(addr netip.AddrPort, h dns.Handler, logger *slog.Logger) (*dnsServer, error) {
	pc, err := net.ListenPacket("udp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("cannot serve DNS on %v/UDP: %w", addr, err)
	}
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("cannot serve DNS on %v/TCP: %w", addr, err)
	}
	s := &dnsServer{
		addr: addr,
		udp:  &dns.Server{PacketConn: pc, Handler: h},
		tcp: &dns.Server{Listener: netutil.LimitListener(ln, maxDNSConns), Handler: h,
			ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second,
			IdleTimeout: func() time.Duration { return dnsTCPIdleTimeout }},
	}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		started := make(chan struct{})
		failed := make(chan error, 1)
		srv.NotifyStartedFunc = func() { close(started) }
		go func() {
			if err := srv.ActivateAndServe(); err != nil {
				logger.Warn("DNS server stopped", "addr", addr, "err", err)
				failed <- err
			}
		}()
		select {
		case <-started:
		case err := <-failed:
			s.shutdown(context.Background())
			return nil, fmt.Errorf("cannot serve DNS on %v: %w", addr, err)
		}
	}
	return s, nil
}

// shutdown stops both servers, waiting for queries in progress until ctx
// ends.
func (s *dnsServer) shutdown(ctx context.Context) error {
	var errs []error
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		if err := srv.ShutdownContext(ctx); err != nil && !strings.Contains(err.Error(), "not started") {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
