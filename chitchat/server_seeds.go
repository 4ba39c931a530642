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

// splitSeed splits a seed into its host and its port, which must be a
// number. Config.Validate checks seeds with it.
func splitSeed(s string) (host string, port uint16, err error) {
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("port %q is not a number from 0 to 65535", portStr)
	}
	return host, uint16(p), nil
}

func lookupSeed(ctx context.Context, r Resolver, hostport string) ([]netip.AddrPort, error) {
	host, port, err := splitSeed(hostport)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		out = append(out, netip.AddrPortFrom(ip.Unmap().WithZone(""), port))
	}
	return out, nil
}
