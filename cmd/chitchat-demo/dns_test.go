package main

// The DNS responder over a real catalog (agents on the in-memory network,
// in virtual time), queried through its answer function: no sockets.

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/gossipkit/chitchat-go/catalog"
	"github.com/gossipkit/chitchat-go/chitchat"
)

// dnsFixture: node-0 (127.0.0.1) runs a failing cache; node-1 (127.0.0.1)
// runs web (v1, primary) and api; node-2 ([fd00::2]) runs web (v1) and db
// on an address of its own. The responder answers from node-0's catalog.
func dnsFixture(t *testing.T, ttl time.Duration) (*fixture, *dnsResponder) {
	t.Helper()
	f := newFixture(t, 3, netip.AddrPort{}, netip.AddrPort{}, netip.MustParseAddrPort("[fd00::2]:7002"))
	f.probes.set("http://web/", catalog.Result{Status: catalog.Passing})
	web := func(port int, tags ...string) catalog.Service {
		return catalog.Service{Name: "web", Port: port, Tags: tags, Check: &catalog.Check{HTTP: "http://web/", Interval: time.Second}}
	}
	f.register(0, catalog.Service{Name: "cache", Port: 6379, Check: &catalog.Check{TCP: "cache:6379", Interval: time.Second}})
	f.register(1, web(8081, "v1", "primary"))
	f.register(1, catalog.Service{Name: "api", Port: 9000})
	f.register(2, web(8082, "v1"))
	f.register(2, catalog.Service{Name: "db", Port: 5432, Address: netip.MustParseAddr("10.0.0.9")})
	f.waitView(0, "every service", func(v *catalog.View) bool {
		return len(v.Services) == 4 && len(v.Service("web").Select(nil, true)) == 2 && v.Service("cache").Instances[0].Check.Output == "unreachable"
	})
	return f, newDNSResponder(f.agents[0].View, "consul.", ttl, seededRand(1))
}

func query(name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	return m
}

// ask packs req, has d answer it, and returns the answer as miekg/dns
// reads it, and its length.
func ask(t *testing.T, d *dnsResponder, req *dns.Msg, tcp bool) (*dns.Msg, int) {
	t.Helper()
	b, err := req.Pack()
	if err != nil {
		t.Fatal(err)
	}
	out := d.answer(b, tcp)
	r := new(dns.Msg)
	if err := r.Unpack(out); err != nil {
		t.Fatalf("the answer to %v does not parse: %v", req.Question, err)
	}
	return r, len(out)
}

func TestDNSAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, d := dnsFixture(t, 0)
		const (
			noerror = dns.RcodeSuccess
			nx      = dns.RcodeNameError
			refused = dns.RcodeRefused
		)
		for _, tt := range []struct {
			name  string
			q     string
			qtype uint16
			rcode int
			want  []string // answers, as rrData
			extra []string
		}{
			{"node A", "node-1.node.consul.", dns.TypeA, noerror, []string{"127.0.0.1"}, nil},
			{"node AAAA", "node-2.node.consul.", dns.TypeAAAA, noerror, []string{"fd00::2"}, nil},
			{"node ANY", "node-2.node.consul.", dns.TypeANY, noerror, []string{"fd00::2"}, nil},
			{"node without A: NODATA", "node-2.node.consul.", dns.TypeA, noerror, []string{}, nil},
			{"node, other case", "NODE-1.Node.CONSUL.", dns.TypeA, noerror, []string{"127.0.0.1"}, nil},
			{"node with datacenter", "node-1.node.dc1.consul.", dns.TypeA, noerror, []string{"127.0.0.1"}, nil},
			{"unknown node", "nobody.node.consul.", dns.TypeA, nx, []string{}, nil},
			{"unknown datacenter", "node-1.node.dc2.consul.", dns.TypeA, nx, []string{}, nil},
			{"service A: IPv4 instances, failing ones left out", "web.service.consul.", dns.TypeA, noerror, []string{"127.0.0.1"}, nil},
			{"service AAAA", "web.service.consul.", dns.TypeAAAA, noerror, []string{"fd00::2"}, nil},
			{"service ANY", "web.service.consul.", dns.TypeANY, noerror, []string{"127.0.0.1", "fd00::2"}, nil},
			{"service SRV", "web.service.consul.", dns.TypeSRV, noerror,
				[]string{"8081 node-1.node.dc1.consul.", "8082 node-2.node.dc1.consul."}, []string{"127.0.0.1", "fd00::2"}},
			{"RFC 2782 SRV", "_web._tcp.service.consul.", dns.TypeSRV, noerror,
				[]string{"8081 node-1.node.dc1.consul.", "8082 node-2.node.dc1.consul."}, []string{"127.0.0.1", "fd00::2"}},
			{"tag", "primary.web.service.consul.", dns.TypeSRV, noerror, []string{"8081 node-1.node.dc1.consul."}, []string{"127.0.0.1"}},
			{"tag, RFC 2782", "_web._v1.service.dc1.consul.", dns.TypeSRV, noerror,
				[]string{"8081 node-1.node.dc1.consul.", "8082 node-2.node.dc1.consul."}, []string{"127.0.0.1", "fd00::2"}},
			{"unknown tag", "v2.web.service.consul.", dns.TypeA, nx, []string{}, nil},
			{"service address: .addr target", "db.service.consul.", dns.TypeSRV, noerror, []string{"5432 0a000009.addr.dc1.consul."}, []string{"10.0.0.9"}},
			{".addr name", "0a000009.addr.dc1.consul.", dns.TypeA, noerror, []string{"10.0.0.9"}, nil},
			{"bad .addr name", "zz.addr.consul.", dns.TypeA, nx, []string{}, nil},
			{"only failing instances", "cache.service.consul.", dns.TypeA, nx, []string{}, nil},
			{"service without TXT: NODATA", "api.service.consul.", dns.TypeTXT, noerror, []string{}, nil},
			{"unknown service", "nope.service.consul.", dns.TypeA, nx, []string{}, nil},
			{"no service name", "service.consul.", dns.TypeA, nx, []string{}, nil},
			{"apex SOA", "consul.", dns.TypeSOA, noerror, []string{"consul.\t0\tIN\tSOA\tns.consul. hostmaster.consul. %d 3600 600 86400 0"}, nil},
			{"outside the domain", "example.com.", dns.TypeA, refused, []string{}, nil},
			{"a domain ending like ours", "notconsul.", dns.TypeA, refused, []string{}, nil},
		} {
			// No t.Run inside a synctest bubble: the name goes in the messages.
			r, _ := ask(t, d, query(tt.q, tt.qtype), false)
			want := slices.Clone(tt.want)
			for i, w := range want {
				if strings.Contains(w, "%d") {
					want[i] = fmt.Sprintf(w, d.view().Index)
				}
			}
			if r.Rcode != tt.rcode || !cmp.Equal(want, rrData(r.Answer)) {
				t.Errorf("%s: %s %s = %s %v, want %s %v", tt.name, tt.q, dns.TypeToString[tt.qtype],
					dns.RcodeToString[r.Rcode], rrData(r.Answer), dns.RcodeToString[tt.rcode], want)
			}
			if tt.extra != nil && !cmp.Equal(tt.extra, rrData(r.Extra)) {
				t.Errorf("%s: additional section %v, want %v", tt.name, rrData(r.Extra), tt.extra)
			}
			// NXDOMAIN and NODATA carry the zone's SOA; REFUSED nothing.
			wantSOA := tt.rcode != refused && len(tt.want) == 0
			if gotSOA := len(r.Ns) == 1 && r.Ns[0].Header().Rrtype == dns.TypeSOA; gotSOA != wantSOA {
				t.Errorf("%s: authority section %v, want an SOA: %v", tt.name, r.Ns, wantSOA)
			}
			if r.Authoritative != (tt.rcode != refused) || r.RecursionAvailable || r.Truncated {
				t.Errorf("%s: flags aa=%v ra=%v tc=%v, want aa only for our zone, never ra or tc", tt.name, r.Authoritative, r.RecursionAvailable, r.Truncated)
			}
		}
		for _, tt := range []struct {
			name  string
			req   *dns.Msg
			rcode int
		}{
			{"two questions", func() *dns.Msg {
				m := query("web.service.consul.", dns.TypeA)
				m.Question = append(m.Question, m.Question[0])
				return m
			}(), dns.RcodeFormatError},
			{"no question", func() *dns.Msg { m := query("web.service.consul.", dns.TypeA); m.Question = nil; return m }(), dns.RcodeFormatError},
			{"not a query", func() *dns.Msg { m := query("web.service.consul.", dns.TypeA); m.Opcode = dns.OpcodeUpdate; return m }(), dns.RcodeNotImplemented},
			{"class CHAOS", func() *dns.Msg {
				m := query("web.service.consul.", dns.TypeA)
				m.Question[0].Qclass = dns.ClassCHAOS
				return m
			}(), dns.RcodeRefused},
		} {
			if r, _ := ask(t, d, tt.req, false); r.Rcode != tt.rcode {
				t.Errorf("%s: rcode %s, want %s", tt.name, dns.RcodeToString[r.Rcode], dns.RcodeToString[tt.rcode])
			}
		}
	})
}

// The configured TTL is on every record, and is the SOA's negative TTL.
func TestDNSTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, d := dnsFixture(t, 30*time.Second)
		r, _ := ask(t, d, query("web.service.consul.", dns.TypeSRV), false)
		for _, rr := range append(r.Answer, r.Extra...) {
			if rr.Header().Ttl != 30 {
				t.Errorf("TTL of %v = %d, want 30", rr, rr.Header().Ttl)
			}
		}
		r, _ = ask(t, d, query("nope.service.consul.", dns.TypeA), false)
		if soa := r.Ns[0].(*dns.SOA); soa.Hdr.Ttl != 30 || soa.Minttl != 30 {
			t.Errorf("SOA %v: want TTL and minimum 30", soa)
		}
	})
}

// A large answer is cut to the client's UDP buffer with TC set (512 bytes,
// or the EDNS0 size) and comes whole over TCP; its order is random.
func TestDNSTruncationAndOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f, d := dnsFixture(t, 0)
		const n = 60
		for i := range n {
			f.register(1, catalog.Service{ID: fmt.Sprintf("big-%d", i), Name: "big", Port: 10000 + i})
		}
		f.waitView(0, "60 instances of big", func(v *catalog.View) bool { return len(v.Service("big").Select(nil, true)) == n })

		edns := func(size uint16) *dns.Msg {
			m := query("big.service.consul.", dns.TypeSRV)
			m.SetEdns0(size, false)
			return m
		}
		for _, tt := range []struct {
			name     string
			req      *dns.Msg
			tcp      bool
			maxBytes int
			whole    bool
		}{
			{"UDP, no EDNS0", query("big.service.consul.", dns.TypeSRV), false, 512, false},
			{"UDP, EDNS0 1232", edns(1232), false, 1232, false},
			{"UDP, EDNS0 4096: capped at 1232", edns(4096), false, 1232, false},
			{"UDP, EDNS0 65000: capped at 1232", edns(65000), false, 1232, false},
			{"TCP", query("big.service.consul.", dns.TypeSRV), true, dns.MaxMsgSize, true},
		} {
			r, size := ask(t, d, tt.req, tt.tcp)
			t.Logf("%s: %d answers in %d bytes, tc=%v", tt.name, len(r.Answer), size, r.Truncated)
			if size > tt.maxBytes {
				t.Errorf("%s: %d bytes, want at most %d", tt.name, size, tt.maxBytes)
			}
			if whole := len(r.Answer) == n; whole != tt.whole || r.Truncated == tt.whole || (!tt.whole && len(r.Answer) == 0) {
				t.Errorf("%s: %d answers of %d, tc=%v; want whole=%v with TC set iff cut (and some answers when cut)",
					tt.name, len(r.Answer), n, r.Truncated, tt.whole)
			}
		}

		firsts := map[string]bool{}
		for range 20 {
			r, _ := ask(t, d, query("big.service.consul.", dns.TypeSRV), true)
			firsts[rrData(r.Answer[:1])[0]] = true
		}
		if len(firsts) < 10 {
			t.Errorf("20 answers started with %d distinct records, want a random order", len(firsts))
		}
	})
}

// SRV targets are names a client can ask for, even with the longest
// domain and datacenter the flags accept: with the datacenter label when
// it fits in a DNS name's 255 bytes, else without (it is optional), else
// in the shorter .addr form.
func TestDNSLongTargets(t *testing.T) {
	domain, err := normalizeDomain(strings.Repeat(strings.Repeat("d", 49)+".", 4)) // 200 bytes, the most the flag takes
	if err != nil {
		t.Fatal(err)
	}
	longNode := &catalog.Instance{Node: &catalog.Node{ID: chitchat.NodeID{Name: strings.Repeat("n", 63)},
		Addr: netip.MustParseAddr("fd00::7"), Live: true}, Service: catalog.Service{Name: "long", Port: 1}}
	synctest.Test(t, func(t *testing.T) {
		f, _ := dnsFixture(t, 0)
		for _, dc := range []string{"dc1", strings.Repeat("c", 63)} {
			v := *f.agents[0].View()
			v.Datacenter = dc
			d := newDNSResponder(func() *catalog.View { return &v }, domain, 0, seededRand(1))
			resolves := func(target string, want netip.Addr) {
				t.Helper()
				qtype := dns.TypeA
				if want.Is6() {
					qtype = dns.TypeAAAA
				}
				r, _ := ask(t, d, query(target, qtype), true)
				if r.Rcode != dns.RcodeSuccess || !cmp.Equal(rrData(r.Answer), []string{want.String()}) {
					t.Errorf("datacenter %d bytes: target %s (%d bytes): %s %v, want %v",
						len(dc), target, len(target), dns.RcodeToString[r.Rcode], rrData(r.Answer), want)
				}
			}
			for _, service := range []string{"web", "db"} {
				r, _ := ask(t, d, query(service+".service."+domain, dns.TypeSRV), true)
				if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
					t.Errorf("datacenter %d bytes: %s SRV: %s with %d answers, want NOERROR with answers",
						len(dc), service, dns.RcodeToString[r.Rcode], len(r.Answer))
					continue
				}
				for _, rr := range r.Answer {
					target := rr.(*dns.SRV).Target
					in := v.Service(service).Select(nil, true)
					i := slices.IndexFunc(in, func(in *catalog.Instance) bool { return int(in.Service.Port) == int(rr.(*dns.SRV).Port) })
					resolves(target, in[i].Addr())
				}
			}
			target := d.target(&v, longNode)
			if len(target) > 254 {
				t.Errorf("datacenter %d bytes: a 63-byte node's target %s is %d bytes long, longer than a DNS name", len(dc), target, len(target))
			} else {
				resolves(target, longNode.Addr())
			}
		}
	})
}
