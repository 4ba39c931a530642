package main

// DNS messages on the wire: malformed queries, EDNS0, truncation (with
// miekg/dns's Msg.Truncate as the oracle), and a fuzz test of the query →
// answer path. miekg/dns is the independent client here.

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/miekg/dns"
	"golang.org/x/net/dns/dnsmessage"

	"github.com/gossipkit/chitchat-go/catalog"
)

// dnsManyFixture is dnsFixture with many instances: big (60 on node-1's
// address), and many (100 on IPv4 addresses of their own on node-1, 100
// on IPv6 ones on node-2).
func dnsManyFixture(t *testing.T) (*fixture, *dnsResponder) {
	t.Helper()
	f, d := dnsFixture(t, 0)
	for i := range 100 {
		if i < 60 {
			f.register(1, catalog.Service{ID: fmt.Sprintf("big-%d", i), Name: "big", Port: 10000 + i})
		}
		f.register(1, catalog.Service{ID: fmt.Sprintf("many4-%d", i), Name: "many", Port: 20000 + i,
			Address: netip.AddrFrom4([4]byte{10, 1, 0, byte(i)})})
		f.register(2, catalog.Service{ID: fmt.Sprintf("many6-%d", i), Name: "many", Port: 30000 + i,
			Address: netip.AddrFrom16([16]byte{0: 0xfd, 1: 1, 15: byte(i)})})
	}
	f.waitView(0, "big and many", func(v *catalog.View) bool {
		return len(v.Service("big").Select(nil, true)) == 60 && len(v.Service("many").Select(nil, true)) == 200
	})
	return f, d
}

// rawQuery is a query for name and qtype as miekg/dns packs it, with an
// OPT record of size if size >= 0.
func rawQuery(t testing.TB, name string, qtype uint16, size int) []byte {
	t.Helper()
	m := query(name, qtype)
	if size >= 0 {
		m.SetEdns0(uint16(size), false)
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// header is a DNS header: id 0x1234, RD, then bits and the four counts.
func header(bits uint16, counts ...uint16) []byte {
	b := binary.BigEndian.AppendUint16(nil, 0x1234)
	b = binary.BigEndian.AppendUint16(b, bits|0x0100)
	for _, c := range counts {
		b = binary.BigEndian.AppendUint16(b, c)
	}
	return b
}

// A careful server drops what cannot be answered safely, and answers
// FORMERR (NOTIMP for other opcodes) to what does not parse, without
// reading or allocating beyond what the counts allow.
func TestDNSMalformedQueries(t *testing.T) {
	d := newDNSResponder(func() *catalog.View { return &catalog.View{Datacenter: "dc1"} }, "consul.", 0, seededRand(1))
	question := []byte("\x06consul\x00\x00\x06\x00\x01") // consul. SOA
	opt := []byte("\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00")
	long := header(0, 1, 0, 0, 0)
	for range 5 {
		long = append(long, "\x3fxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"...)
	}
	long = append(long, "\x00\x00\x01\x00\x01"...)
	const (
		noerror = dns.RcodeSuccess
		formerr = dns.RcodeFormatError
		notimp  = dns.RcodeNotImplemented
	)
	for _, tt := range []struct {
		name     string
		query    []byte
		drop     bool
		rcode    int
		question bool // echoed
		opt      bool // an OPT record in the answer
	}{
		{name: "empty", query: nil, drop: true},
		{name: "shorter than a header", query: header(0, 1, 0, 0)[:11], drop: true},
		{name: "a reply", query: append(header(0x8000, 1, 0, 0, 0), question...), drop: true},
		{name: "opcode UPDATE", query: append(header(5<<11, 1, 0, 0, 0), question...), rcode: notimp},
		{name: "opcode NOTIFY", query: append(header(4<<11, 1, 0, 0, 0), question...), rcode: notimp},
		{name: "no question", query: header(0, 0, 0, 0, 0), rcode: formerr},
		{name: "two questions", query: append(append(header(0, 2, 0, 0, 0), question...), question...), rcode: formerr},
		{name: "huge counts", query: append(header(0, 1, 0xffff, 0xffff, 0xffff), question...), rcode: formerr},
		{name: "three additional records", query: append(header(0, 1, 0, 0, 3), question...), rcode: formerr},
		{name: "a header without its question", query: header(0, 1, 0, 0, 0), rcode: formerr},
		{name: "question cut short", query: append(header(0, 1, 0, 0, 0), question[:10]...), rcode: formerr},
		{name: "compression loop", query: append(header(0, 1, 0, 0, 0), "\xc0\x0c\x00\x01\x00\x01"...), rcode: formerr},
		{name: "pointer past the end", query: append(header(0, 1, 0, 0, 0), "\xc0\xff\x00\x01\x00\x01"...), rcode: formerr},
		{name: "reserved label type", query: append(header(0, 1, 0, 0, 0), "\x41x\x00\x00\x01\x00\x01"...), rcode: formerr},
		{name: "name longer than 255 bytes", query: long, rcode: formerr},
		{name: "a dot in a label", query: append(header(0, 1, 0, 0, 0), "\x07www.con\x00\x00\x01\x00\x01"...), rcode: formerr},
		{name: "additional record cut short", query: append(append(header(0, 1, 0, 0, 1), question...), opt[:5]...), rcode: formerr, question: true},
		{name: "two OPT records (RFC 6891)", query: slices.Concat(header(0, 1, 0, 0, 2), question, opt, opt), rcode: formerr, question: true},
		{name: "an answer record in the query", query: slices.Concat(header(0, 1, 1, 0, 1), question, opt, opt), rcode: noerror, question: true, opt: true},
		{name: "bytes after the query", query: slices.Concat(header(0, 1, 0, 0, 1), question, opt, []byte("junk")), rcode: noerror, question: true, opt: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := d.answer(tt.query, false)
			if tt.drop {
				if b != nil {
					t.Fatalf("answer %x, want none", b)
				}
				return
			}
			var p dnsmessage.Parser
			if _, err := p.Start(b); err != nil {
				t.Fatalf("dnsmessage cannot read the answer: %v", err)
			}
			r := new(dns.Msg)
			if err := r.Unpack(b); err != nil {
				t.Fatalf("miekg/dns cannot read the answer %x: %v", b, err)
			}
			if r.Id != 0x1234 || !r.Response || !r.RecursionDesired || r.Opcode != int(tt.query[2]>>3&0xf) {
				t.Errorf("header %+v: want the query's ID, opcode and RD, with QR", r.MsgHdr)
			}
			if r.Rcode != tt.rcode || (len(r.Question) == 1) != tt.question || (r.IsEdns0() != nil) != tt.opt {
				t.Errorf("answer %s with %d questions, OPT %v; want %s, question echoed: %v, OPT: %v",
					dns.RcodeToString[r.Rcode], len(r.Question), r.IsEdns0(), dns.RcodeToString[tt.rcode], tt.question, tt.opt)
			}
			if tt.rcode != noerror && (r.Authoritative || len(r.Answer)+len(r.Ns) > 0) {
				t.Errorf("an error with aa=%v, %d answers, %d authority records; want none", r.Authoritative, len(r.Answer), len(r.Ns))
			}
		})
	}
}

// The answer's OPT record announces the client's size, clamped to
// 512..1232, as do REFUSED answers; without EDNS0, no OPT record.
func TestDNSEDNS0(t *testing.T) {
	d := newDNSResponder(func() *catalog.View { return &catalog.View{Datacenter: "dc1"} }, "consul.", 0, seededRand(1))
	for _, tt := range []struct {
		name  string
		qname string
		size  int // -1: no OPT record
		tcp   bool
		want  int // 0: no OPT record
	}{
		{"no EDNS0", "consul.", -1, false, 0},
		{"size 0", "consul.", 0, false, 512},
		{"size 100", "consul.", 100, false, 512},
		{"size 1232", "consul.", 1232, false, 1232},
		{"size 1400", "consul.", 1400, false, 1232},
		{"size 4096", "consul.", 4096, false, 1232},
		{"size 65000", "consul.", 65000, false, 1232},
		{"over TCP", "consul.", 1232, true, 1232},
		{"REFUSED", "example.com.", 1232, false, 1232},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := new(dns.Msg)
			if err := r.Unpack(d.answer(rawQuery(t, tt.qname, dns.TypeSOA, tt.size), tt.tcp)); err != nil {
				t.Fatal(err)
			}
			got := 0
			if opt := r.IsEdns0(); opt != nil {
				got = int(opt.UDPSize())
				if opt.Version() != 0 || opt.Do() || len(opt.Option) > 0 || opt.ExtendedRcode() != 0 {
					t.Errorf("OPT %v: want version 0, no DO, no options", opt)
				}
			}
			if got != tt.want {
				t.Errorf("OPT size %d, want %d (0: none)", got, tt.want)
			}
		})
	}
}

// A UDP answer keeps the records that fit, as miekg/dns's Msg.Truncate
// kept them from the whole answer: the answers and authority records in
// order, the OPT record, TC when any record is left out. The additional
// records may be fewer (a prefix of miekg/dns's): miekg/dns compressed an
// address record's name into the SRV target before it, which dnsmessage
// does not, and went on past an additional record that did not fit.
func TestDNSTruncateAsMiekg(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, _ := dnsManyFixture(t)
		for _, q := range []struct {
			name  string
			qtype uint16
		}{{"big.service.consul.", dns.TypeSRV}, {"many.service.consul.", dns.TypeA}, {"many.service.consul.", dns.TypeAAAA},
			{"many.service.consul.", dns.TypeANY}, {"many.service.consul.", dns.TypeSRV}, {"Big.Service.Consul.", dns.TypeSRV}} {
			for _, size := range []int{-1, 512, 700, 1000, 1232, 1400, 2000, 3000, 4096} {
				// Two responders with one seed answer in one order.
				udp, whole := newDNSResponder(f.agents[0].View, "consul.", 0, seededRand(uint64(size))),
					newDNSResponder(f.agents[0].View, "consul.", 0, seededRand(uint64(size)))
				req := rawQuery(t, q.name, q.qtype, size)
				got, want := new(dns.Msg), new(dns.Msg)
				b := udp.answer(req, false)
				if err := got.Unpack(b); err != nil {
					t.Fatal(err)
				}
				if err := want.Unpack(whole.answer(req, true)); err != nil {
					t.Fatal(err)
				}
				limit := min(max(size, 512), maxDNSUDPSize) // the buffer asked for, within what we answer into
				want.Truncate(limit)
				desc := fmt.Sprintf("%s %s, size %d", q.name, dns.TypeToString[q.qtype], size)
				if len(b) > limit {
					t.Errorf("%s: %d bytes, want at most %d", desc, len(b), limit)
				}
				if !cmp.Equal(got.Answer, want.Answer, cmpopts.EquateEmpty()) || !cmp.Equal(got.Ns, want.Ns, cmpopts.EquateEmpty()) {
					t.Errorf("%s: %d answers, %d authority records; miekg/dns kept %d and %d", desc, len(got.Answer), len(got.Ns), len(want.Answer), len(want.Ns))
				}
				gotExtra, wantExtra := withoutOPT(got.Extra), withoutOPT(want.Extra)
				if len(gotExtra) > len(wantExtra) || !cmp.Equal(gotExtra, wantExtra[:len(gotExtra)], cmpopts.EquateEmpty()) {
					t.Errorf("%s: additional records %v, want a prefix of %v", desc, gotExtra, wantExtra)
				}
				if len(gotExtra) < len(wantExtra) {
					t.Logf("%s: %d of the %d additional records miekg/dns kept", desc, len(gotExtra), len(wantExtra))
				}
				if got.Truncated != (want.Truncated || len(gotExtra) < len(wantExtra)) || !cmp.Equal(got.IsEdns0(), want.IsEdns0()) {
					t.Errorf("%s: tc=%v, OPT %v; miekg/dns: tc=%v, OPT %v, %d of %d additional records",
						desc, got.Truncated, got.IsEdns0(), want.Truncated, want.IsEdns0(), len(gotExtra), len(wantExtra))
				}
				if len(got.Answer) == 0 {
					t.Errorf("%s: no answers", desc)
				}
			}
		}
	})
}

func withoutOPT(rrs []dns.RR) []dns.RR {
	return slices.DeleteFunc(slices.Clone(rrs), func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeOPT })
}

// fuzzView is dnsManyFixture's catalog, made once per process: a View is
// immutable.
var fuzzView struct {
	once sync.Once
	v    *catalog.View
}

// The query → answer path never panics, drops only what is shorter than a
// header or a reply, and answers what miekg/dns and dnsmessage both read,
// with the query's ID and question, within the size the client takes.
func FuzzDNSAnswer(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
	}{{"node-1.node.consul.", dns.TypeA}, {"node-2.node.dc1.consul.", dns.TypeAAAA}, {"big.service.consul.", dns.TypeSRV},
		{"many.service.consul.", dns.TypeANY}, {"_web._v1.service.consul.", dns.TypeSRV}, {"0a000009.addr.dc1.consul.", dns.TypeA},
		{"consul.", dns.TypeSOA}, {"nope.service.consul.", dns.TypeA}, {"example.com.", dns.TypeA}} {
		for _, size := range []int{-1, 0, 1232, 4096} {
			f.Add(rawQuery(f, q.name, q.qtype, size), false)
		}
		f.Add(rawQuery(f, q.name, q.qtype, -1), true)
	}
	f.Add(append(header(0, 1, 0, 0, 0), "\xc0\x0c\x00\x01\x00\x01"...), false)
	f.Add(header(0, 1, 0xffff, 0xffff, 0xffff), false)
	f.Fuzz(func(t *testing.T, query []byte, tcp bool) {
		fuzzView.once.Do(func() {
			synctest.Test(t, func(t *testing.T) {
				f, _ := dnsManyFixture(t)
				fuzzView.v = f.agents[0].View()
			})
		})
		if fuzzView.v == nil {
			t.Fatal("no catalog")
		}
		d := newDNSResponder(func() *catalog.View { return fuzzView.v }, "consul.", 0, seededRand(1))
		b := d.answer(query, tcp)
		if len(query) < dnsHeaderLen || query[2]&0x80 != 0 {
			if b != nil {
				t.Fatalf("answer %x to %x, want none", b, query)
			}
			return
		}
		if b == nil {
			t.Fatalf("no answer to %x", query)
		}
		var m dnsmessage.Message
		if err := m.Unpack(b); err != nil {
			t.Fatalf("dnsmessage cannot read the answer %x to %x: %v", b, query, err)
		}
		r := new(dns.Msg)
		if err := r.Unpack(b); err != nil {
			t.Fatalf("miekg/dns cannot read the answer %x to %x: %v", b, query, err)
		}
		limit := 512
		if opt := r.IsEdns0(); opt != nil {
			limit = int(opt.UDPSize())
			if limit < 512 || limit > maxDNSUDPSize {
				t.Fatalf("OPT size %d, want 512 to %d", limit, maxDNSUDPSize)
			}
		}
		if tcp {
			limit = dnsMaxMsgSize
		}
		if len(b) > limit || (tcp && r.Truncated) {
			t.Fatalf("answer of %d bytes, tc=%v over TCP=%v; want at most %d", len(b), r.Truncated, tcp, limit)
		}
		if r.Id != binary.BigEndian.Uint16(query) || len(r.Question) > 1 {
			t.Fatalf("answer ID %d with %d questions to query ID %d", r.Id, len(r.Question), binary.BigEndian.Uint16(query))
		}
		if len(r.Question) == 1 {
			var p dnsmessage.Parser
			p.Start(query)
			if q, err := p.Question(); err != nil || q != m.Questions[0] {
				t.Fatalf("question %v echoed as %v (%v)", q, m.Questions[0], err)
			}
		}
		if tcp {
			return
		}
		// The UDP answer is the whole answer (the one over TCP, in the
		// same random order), or a prefix of it with TC set: no record
		// left out without TC, none changed or moved.
		whole := new(dns.Msg)
		if err := whole.Unpack(newDNSResponder(func() *catalog.View { return fuzzView.v }, "consul.", 0, seededRand(1)).answer(query, true)); err != nil {
			t.Fatalf("miekg/dns cannot read the TCP answer to %x: %v", query, err)
		}
		got := slices.Concat(r.Answer, r.Ns, withoutOPT(r.Extra))
		want := slices.Concat(whole.Answer, whole.Ns, withoutOPT(whole.Extra))
		if r.Rcode != whole.Rcode || len(got) > len(want) || !cmp.Equal(got, want[:len(got)], cmpopts.EquateEmpty()) ||
			(len(got) < len(want)) != r.Truncated || len(r.Answer) > len(whole.Answer) ||
			(len(r.Answer) < len(whole.Answer) && len(r.Ns)+len(withoutOPT(r.Extra)) > 0) {
			t.Fatalf("UDP answer to %x: %s, tc=%v, %d answers, %d authority, %d additional records; whole: %s, %d, %d, %d",
				query, dns.RcodeToString[r.Rcode], r.Truncated, len(r.Answer), len(r.Ns), len(withoutOPT(r.Extra)),
				dns.RcodeToString[whole.Rcode], len(whole.Answer), len(whole.Ns), len(withoutOPT(whole.Extra)))
		}
	})
}
