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
// answers (NODATA), both with the zone's SOA; names outside the domain, and
// classes other than IN and ANY, are REFUSED (no recursion). An answer too
// large for the client's UDP buffer (512 bytes, or its EDNS0 size up to
// 1232) is truncated with the TC flag, and the client retries over TCP,
// which carries up to 64 KiB.
//
// Queries are read as a careful server reads them (dnswire.go): messages
// shorter than a header, and replies, are dropped; opcodes other than
// QUERY get NOTIMP; a query that does not parse, or has other than one
// question, gets FORMERR. The server (dnsserver.go) serves UDP and TCP.

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"github.com/gossipkit/chitchat-go/catalog"
)

// dnsResponder answers DNS queries from the current catalog view.
type dnsResponder struct {
	view   func() *catalog.View
	domain string // lowercase, with the final dot
	ttl    uint32 // seconds
	rand   *lockedRand
}

func newDNSResponder(view func() *catalog.View, domain string, ttl time.Duration, r *lockedRand) *dnsResponder {
	return &dnsResponder{view: view, domain: domain, ttl: uint32(ttl / time.Second), rand: r}
}

// answer returns the reply to the DNS message query, received over TCP if
// tcp, or nil when it gets none: a message shorter than a header, or a
// reply.
func (d *dnsResponder) answer(query []byte, tcp bool) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil || h.Response {
		return nil // any reply to these could be used to amplify
	}
	r := &dnsReply{hdr: dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode,
		RecursionDesired: h.RecursionDesired, CheckingDisabled: h.CheckingDisabled}, ttl: d.ttl, size: dnsMinUDPSize}
	switch {
	case h.OpCode != 0:
		return r.fail(dnsmessage.RCodeNotImplemented)
	case !plausibleCounts(query):
		return r.fail(dnsmessage.RCodeFormatError)
	}
	q, err := p.Question()
	if err != nil {
		return r.fail(dnsmessage.RCodeFormatError)
	}
	r.question = &q
	opt, err := readEDNS(&p)
	if err != nil {
		return r.fail(dnsmessage.RCodeFormatError)
	}
	if opt.present {
		r.opt = min(max(opt.size, dnsMinUDPSize), maxDNSUDPSize)
		r.size = int(r.opt)
	}
	if tcp {
		r.size = dnsMaxMsgSize
	}
	qname := q.Name.String()
	name := lowerASCII(qname)
	if (q.Class != dnsmessage.ClassINET && q.Class != dnsmessage.ClassANY) || !d.inZone(name) {
		return r.fail(dnsmessage.RCodeRefused)
	}
	r.hdr.Authoritative = true
	v := d.view()
	if !d.resolve(r, v, qname, name, q.Type) {
		r.hdr.RCode = dnsmessage.RCodeNameError
	}
	if len(r.answers) == 0 {
		r.authority = []dnsRR{d.soa(v)}
	}
	return r.pack()
}

// inZone reports whether name (lowercase) is the domain or under it.
func (d *dnsResponder) inZone(name string) bool {
	rest, ok := strings.CutSuffix(name, d.domain)
	return ok && (rest == "" || strings.HasSuffix(rest, "."))
}

// resolve adds the answer to name (lowercase; qname as asked) to r, and
// reports whether the name exists.
func (d *dnsResponder) resolve(r *dnsReply, v *catalog.View, qname, name string, qtype dnsmessage.Type) bool {
	labels := strings.Split(strings.TrimSuffix(name, d.domain), ".")
	labels = labels[:len(labels)-1] // none after the last dot
	if len(labels) == 0 {
		// The zone's apex.
		if qtype == dnsmessage.TypeSOA || qtype == dnsmessage.TypeALL {
			r.answers = append(r.answers, d.soa(v))
		}
		return true
	}
	for _, l := range labels {
		if !plainLabel(l) {
			return false
		}
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
		r.answers = addrRecords(r.answers, qname, qtype, n.Addr)
		return true
	case kind == "addr" && len(labels) == 1:
		a, ok := parseHexAddr(labels[0])
		if !ok {
			return false
		}
		r.answers = addrRecords(r.answers, qname, qtype, a)
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
		d.serviceRecords(r, v, qname, qtype, instances)
		return true
	}
	return false
}

func isKind(l string) bool { return l == "node" || l == "service" || l == "addr" }

// plainLabel reports whether a label (lowercase) can name something: it
// has no byte that a name's text form escapes (RFC 1035's special
// characters, and bytes outside printable ASCII), as no catalog name
// matched one in its escaped form.
func plainLabel(l string) bool {
	for i := range len(l) {
		if c := l[i]; c <= ' ' || c > '~' || strings.IndexByte(`"'();@\`, c) >= 0 {
			return false
		}
	}
	return true
}

// addrRecords appends the A or AAAA record of a to rrs if qtype asks for
// it.
func addrRecords(rrs []dnsRR, qname string, qtype dnsmessage.Type, a netip.Addr) []dnsRR {
	switch {
	case a.Is4() && (qtype == dnsmessage.TypeA || qtype == dnsmessage.TypeALL):
		return append(rrs, dnsRR{name: qname, typ: dnsmessage.TypeA, addr: a})
	case a.Is6() && (qtype == dnsmessage.TypeAAAA || qtype == dnsmessage.TypeALL):
		return append(rrs, dnsRR{name: qname, typ: dnsmessage.TypeAAAA, addr: a})
	}
	return rrs
}

// serviceRecords answers a service lookup: SRV records with the targets'
// addresses in the additional section, or the instances' addresses (once
// each), in random order.
func (d *dnsResponder) serviceRecords(r *dnsReply, v *catalog.View, qname string, qtype dnsmessage.Type, instances []*catalog.Instance) {
	d.rand.shuffle(len(instances), func(i, j int) { instances[i], instances[j] = instances[j], instances[i] })
	if qtype == dnsmessage.TypeSRV {
		seen := map[string]bool{}
		for _, in := range instances {
			target := d.target(v, in)
			r.answers = append(r.answers, dnsRR{name: qname, typ: dnsmessage.TypeSRV, port: uint16(in.Service.Port), target: target})
			if !seen[target] {
				seen[target] = true
				r.extra = addrRecords(r.extra, target, dnsmessage.TypeALL, in.Addr())
			}
		}
		return
	}
	seen := map[netip.Addr]bool{}
	for _, in := range instances {
		if a := in.Addr(); !seen[a] {
			seen[a] = true
			r.answers = addrRecords(r.answers, qname, qtype, a)
		}
	}
}

// target is the SRV target of an instance: its node's name when the
// instance listens on its node's address and that name is a DNS label,
// else its own address in the .addr form; with the datacenter label, as
// Consul. A long --domain with a long datacenter or node name could make
// that longer than a DNS name can be (and the whole answer SERVFAIL), so
// the first of these that fits is taken: the node's name with the
// datacenter, without it (it is optional), the address with the
// datacenter, without it (the longest is 32 hex digits + ".addr." + a
// domain of at most 201 bytes).
func (d *dnsResponder) target(v *catalog.View, in *catalog.Instance) string {
	var prefixes []string
	if !in.Service.Address.IsValid() && catalog.IsDNSLabel(in.Node.Name()) {
		prefixes = append(prefixes, strings.ToLower(in.Node.Name())+".node.")
	}
	prefixes = append(prefixes, hex.EncodeToString(in.Addr().AsSlice())+".addr.")
	var name string
	for _, p := range prefixes {
		if dc := strings.ToLower(v.Datacenter); dc != "" {
			if name = p + dc + "." + d.domain; len(name) <= maxDNSNameLen {
				return name
			}
		}
		if name = p + d.domain; len(name) <= maxDNSNameLen {
			return name
		}
	}
	return name // too long: the answer is SERVFAIL
}

func parseHexAddr(s string) (netip.Addr, bool) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return netip.Addr{}, false
	}
	a, ok := netip.AddrFromSlice(b)
	return a, ok
}

// soa is the zone's SOA record; its serial is the catalog's change index,
// its negative-caching TTL the configured TTL.
func (d *dnsResponder) soa(v *catalog.View) dnsRR {
	return dnsRR{name: d.domain, typ: dnsmessage.TypeSOA, soa: &dnsSOA{ns: "ns." + d.domain, mbox: "hostmaster." + d.domain,
		serial: uint32(v.Index), refresh: 3600, retry: 600, expire: 86400, minTTL: d.ttl}}
}
