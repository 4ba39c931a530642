package main

// DNS messages on the wire, through golang.org/x/net/dns/dnsmessage (the
// standard library's resolver's parser; no crypto): reading a query, and
// writing a reply cut to the size the client takes.

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS message sizes.
const (
	dnsHeaderLen  = 12
	dnsMinUDPSize = 512 // a UDP message without EDNS0 (RFC 1035)
	// maxDNSUDPSize is the largest EDNS0 buffer we answer into: DNS Flag
	// Day 2020's 1232 bytes, which fits an IPv6 datagram on any link
	// without fragmentation and caps what a spoofed query can reflect at
	// a victim; a larger answer comes over TCP.
	maxDNSUDPSize = 1232
	dnsMaxMsgSize = 65535 // a TCP message, after its 2-byte length
	dnsOPTLen     = 11    // an OPT record without options
	dnsMinRRLen   = 16    // our smallest record: an A record named by a pointer
	maxDNSNameLen = 254   // a name in text form, with its final dot (255 bytes on the wire)
)

// plausibleCounts reports whether the section counts of query, a message
// of at least a header, are those of a query (as miekg/dns's server
// checks them): one question, at most one answer (NOTIFY) and one
// authority record (IXFR), at most two additional records (OPT and a
// signature). Nothing else is read, nor allocated, for a query with huge
// counts.
func plausibleCounts(query []byte) bool {
	count := func(i int) uint16 { return binary.BigEndian.Uint16(query[4+2*i:]) }
	return count(0) == 1 && count(1) <= 1 && count(2) <= 1 && count(3) <= 2
}

// ednsOpt is what a query's OPT record (RFC 6891) says.
type ednsOpt struct {
	present bool
	size    uint16 // the client's UDP payload size
}

var errTwoOPT = errors.New("more than one OPT record")

// readEDNS reads the rest of a query, p past its question, and returns its
// OPT record. A query with two is malformed (RFC 6891 section 6.1.1).
func readEDNS(p *dnsmessage.Parser) (ednsOpt, error) {
	var opt ednsOpt
	for _, skip := range []func() error{p.SkipAllQuestions, p.SkipAllAnswers, p.SkipAllAuthorities} {
		if err := skip(); err != nil {
			return opt, err
		}
	}
	for {
		h, err := p.AdditionalHeader()
		if err == dnsmessage.ErrSectionDone {
			return opt, nil
		}
		if err != nil {
			return opt, err
		}
		if h.Type == dnsmessage.TypeOPT {
			if opt.present {
				return opt, errTwoOPT
			}
			opt = ednsOpt{present: true, size: uint16(h.Class)}
		}
		if err := p.SkipAdditional(); err != nil {
			return opt, err
		}
	}
}

// dnsReply is a reply being made.
type dnsReply struct {
	hdr       dnsmessage.Header
	question  *dnsmessage.Question // echoed as asked; nil if it did not parse
	answers   []dnsRR
	authority []dnsRR
	extra     []dnsRR
	ttl       uint32 // of every record, in seconds
	opt       uint16 // the UDP size our OPT record announces; 0: no OPT record
	size      int    // the largest message the client takes
}

// dnsRR is a record of a reply: an A or AAAA record of addr, an SRV record
// to target:port, or the zone's SOA.
type dnsRR struct {
	name   string
	typ    dnsmessage.Type
	addr   netip.Addr
	port   uint16
	target string
	soa    *dnsSOA
}

type dnsSOA struct {
	ns, mbox                               string
	serial, refresh, retry, expire, minTTL uint32
}

// fail returns the reply with rcode and no records.
func (r *dnsReply) fail(rcode dnsmessage.RCode) []byte {
	r.clear(rcode)
	return r.pack()
}

// clear makes r a reply with rcode and no records.
func (r *dnsReply) clear(rcode dnsmessage.RCode) {
	r.hdr.RCode, r.hdr.Authoritative = rcode, false
	r.answers, r.authority, r.extra = nil, nil, nil
}

// pack returns the reply, cut when it is longer than r.size: the records
// that fit, a prefix in order (answers, authority, additional), the OPT
// record kept, and TC set if any record is left out. miekg/dns's
// Msg.Truncate keeps the same answers and authority records, but may go
// on past an additional record that does not fit to a smaller one after
// it. A reply that cannot be written (a name longer than 255 bytes) is
// SERVFAIL.
func (r *dnsReply) pack() []byte {
	msg, err := r.build()
	if err != nil {
		r.clear(dnsmessage.RCodeServerFailure)
		if msg, err = r.build(); err != nil {
			return nil // unreachable: the question was read from a message
		}
	}
	if len(msg) > r.size {
		msg = truncate(msg, r.size, r.opt != 0)
	}
	return msg
}

// build writes the reply, whole but for records that cannot fit r.size:
// each takes dnsMinRRLen bytes or more.
func (r *dnsReply) build() ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, dnsMinUDPSize), r.hdr)
	b.EnableCompression()
	var errs []error
	try := func(err error) { errs = append(errs, err) }
	try(b.StartQuestions())
	if r.question != nil {
		try(b.Question(*r.question))
	}
	room := r.size/dnsMinRRLen + 1
	for _, section := range []struct {
		start func() error
		rrs   []dnsRR
	}{{b.StartAnswers, r.answers}, {b.StartAuthorities, r.authority}, {b.StartAdditionals, r.extra}} {
		try(section.start())
		n := min(len(section.rrs), room)
		for _, rr := range section.rrs[:n] {
			try(r.add(&b, rr))
		}
		room -= n
	}
	if r.opt != 0 {
		var h dnsmessage.ResourceHeader
		try(h.SetEDNS0(int(r.opt), dnsmessage.RCodeSuccess, false))
		try(b.OPTResource(h, dnsmessage.OPTResource{}))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return b.Finish()
}

// add writes rr.
func (r *dnsReply) add(b *dnsmessage.Builder, rr dnsRR) error {
	name, err := dnsmessage.NewName(rr.name)
	if err != nil {
		return err
	}
	h := dnsmessage.ResourceHeader{Name: name, Class: dnsmessage.ClassINET, TTL: r.ttl}
	switch rr.typ {
	case dnsmessage.TypeA:
		return b.AResource(h, dnsmessage.AResource{A: rr.addr.As4()})
	case dnsmessage.TypeAAAA:
		return b.AAAAResource(h, dnsmessage.AAAAResource{AAAA: rr.addr.As16()})
	case dnsmessage.TypeSRV:
		target, err := dnsmessage.NewName(rr.target)
		if err != nil {
			return err
		}
		return b.SRVResource(h, dnsmessage.SRVResource{Priority: 1, Weight: 1, Port: rr.port, Target: target})
	default:
		s := rr.soa
		ns, err1 := dnsmessage.NewName(s.ns)
		mbox, err2 := dnsmessage.NewName(s.mbox)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		return b.SOAResource(h, dnsmessage.SOAResource{NS: ns, MBox: mbox, Serial: s.serial,
			Refresh: s.refresh, Retry: s.retry, Expire: s.expire, MinTTL: s.minTTL})
	}
}

// truncate cuts msg, a reply with one question longer than size, after
// its last record that fits with the OPT record (msg's last, if opt) put
// back after it, and sets TC. msg was written by build: it is well formed.
func truncate(msg []byte, size int, opt bool) []byte {
	var optRR []byte
	if opt {
		optRR = slices.Clone(msg[len(msg)-dnsOPTLen:])
		size -= dnsOPTLen
	}
	var counts, kept [3]int
	for i := range counts {
		counts[i] = int(binary.BigEndian.Uint16(msg[6+2*i:]))
	}
	if opt {
		counts[2]--
	}
	cut := skipName(msg, dnsHeaderLen) + 4 // the question always fits
records:
	for i := range counts {
		for range counts[i] {
			end := skipName(msg, cut) + 10 // type, class, TTL, length
			end += int(binary.BigEndian.Uint16(msg[end-2:]))
			if end > size {
				break records
			}
			cut, kept[i] = end, kept[i]+1
		}
	}
	msg = append(msg[:cut], optRR...)
	msg[2] |= 0x02 // TC
	for i, n := range kept {
		binary.BigEndian.PutUint16(msg[6+2*i:], uint16(n))
	}
	if opt {
		binary.BigEndian.PutUint16(msg[10:], uint16(kept[2]+1))
	}
	return msg
}

// skipName returns the offset past the name at off in msg, a message
// written by build.
func skipName(msg []byte, off int) int {
	for {
		switch c := msg[off]; {
		case c == 0:
			return off + 1
		case c >= 0xC0: // a pointer ends the name
			return off + 2
		default:
			off += 1 + int(c)
		}
	}
}

// lowerASCII returns s with ASCII letters in lowercase, and every other
// byte as it is: a name's labels may hold any byte but '.'.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
