package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dnsQuery sends one query for name and qtype to server over net ("udp" or
// "tcp"), with EDNS0 when bufsize > 0.
func dnsQuery(ctx context.Context, server, network, name string, qtype uint16, bufsize uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	if bufsize > 0 {
		m.SetEdns0(bufsize, false)
	}
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.ExchangeContext(ctx, m, server)
	if err != nil {
		return nil, fmt.Errorf("%s %s %s: %w", network, name, dns.TypeToString[qtype], err)
	}
	return r, nil
}

// dnsAnswers queries server over UDP and returns the answers' data, sorted:
// the address of A and AAAA records, "port target" of SRV records.
func dnsAnswers(ctx context.Context, t *testing.T, server, name string, qtype uint16) []string {
	t.Helper()
	r, err := dnsQuery(ctx, server, "udp", name, qtype, 0)
	if err != nil {
		t.Fatal(err)
	}
	return rrData(r.Answer)
}

func rrData(rrs []dns.RR) []string {
	out := []string{}
	for _, rr := range rrs {
		switch rr := rr.(type) {
		case *dns.A:
			out = append(out, rr.A.String())
		case *dns.AAAA:
			out = append(out, rr.AAAA.String())
		case *dns.SRV:
			out = append(out, fmt.Sprintf("%d %s", rr.Port, rr.Target))
		default:
			out = append(out, rr.String())
		}
	}
	slices.Sort(out)
	return out
}

// seededRand returns a lockedRand with a fixed seed.
func seededRand(seed uint64) *lockedRand {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return &lockedRand{r: rand.New(rand.NewChaCha8(s))}
}
