package main

import (
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"testing"

	"github.com/miekg/dns"

	"github.com/gossipkit/chitchat-go/catalog"
)

// On an unspecified address, the answer to a query sent to 127.0.0.2
// comes from 127.0.0.2, not from 127.0.0.1 (the address the route back
// to the client picks): miekg/dns's client, on a connected socket, takes
// no answer from elsewhere.
func TestDNSAnswersFromTheAddressAsked(t *testing.T) {
	t.Parallel()
	d := newDNSResponder(func() *catalog.View { return &catalog.View{Datacenter: "dc1"} }, "consul.", 0, newLockedRand())
	for _, bind := range []string{"0.0.0.0", "::"} {
		t.Run(bind, func(t *testing.T) {
			if bind == "::" {
				if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
					t.Skip("no IPv6:", err)
				} else {
					ln.Close()
				}
			}
			ctx := testContext(t)
			port := freePorts(t, 1)
			s, err := startDNS(netip.AddrPortFrom(netip.MustParseAddr(bind), uint16(port)), d, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer s.shutdown(ctx)
			for _, server := range []string{"127.0.0.1", "127.0.0.2"} {
				if _, err := dnsQuery(ctx, net.JoinHostPort(server, strconv.Itoa(port)), "udp", "consul.", dns.TypeSOA, 0); err != nil {
					t.Errorf("asking %s: %v", server, err)
				}
			}
		})
	}
}
