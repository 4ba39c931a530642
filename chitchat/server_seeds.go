package chitchat

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// seedResolver turns Config.Seeds into addresses: literals as they are,
// host names through DNS, every address a name resolves to.
type seedResolver struct {
	static []netip.AddrPort
	names  []string // host:port needing DNS
	r      Resolver
}

func newSeedResolver(seeds []string, r Resolver) *seedResolver {
	if r == nil {
		r = net.DefaultResolver
	}
	static, names := parseSeeds(seeds)
	return &seedResolver{static: static, names: names, r: r}
}

// resolve returns the literal seeds and what the names resolve to now; a
// name that fails to resolve contributes nothing (and is logged).
func (s *seedResolver) resolve(ctx context.Context, logf func(msg string, args ...any)) []netip.AddrPort {
	out := append([]netip.AddrPort(nil), s.static...)
	for _, name := range s.names {
		addrs, err := lookupSeed(ctx, s.r, name)
		if err != nil {
			logf("failed to lookup host", "seed", name, "err", err)
			continue
		}
		out = append(out, addrs...)
	}
	return out
}

// checkSeed reports whether s is a host:port with a numeric port.
func checkSeed(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

func lookupSeed(ctx context.Context, r Resolver, hostport string) ([]netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("port %q: %w", portStr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		out = append(out, netip.AddrPortFrom(ip.Unmap().WithZone(""), uint16(port)))
	}
	return out, nil
}
