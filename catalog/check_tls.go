//go:build !chitchat_omit_tls

package catalog

import (
	"context"
	"crypto/tls"
	"net"
)

// tlsSupported reports whether https:// checks can run in this build.
const tlsSupported = true

// dialTLS opens the TLS connection of an https:// check, verifying the
// server's certificate for serverName against the system's roots, as
// net/http's client does.
var dialTLS = tlsDialWith(nil)

// tlsDialWith returns a dialer of TLS connections with base's settings
// (nil: the defaults) and the check's server name.
func tlsDialWith(base *tls.Config) func(ctx context.Context, addr, serverName string) (net.Conn, error) {
	return func(ctx context.Context, addr, serverName string) (net.Conn, error) {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if base != nil {
			cfg = base.Clone()
		}
		cfg.ServerName = serverName
		cfg.NextProtos = []string{"http/1.1"} // ALPN: the prober speaks HTTP/1.1 only
		d := &tls.Dialer{Config: cfg}
		return d.DialContext(ctx, "tcp", addr)
	}
}
