//go:build !chitchat_omit_tls

package catalog

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"
)

// tlsSupported reports whether https:// checks can run in this build.
const tlsSupported = true

// dialTLS opens the TLS connection of an https:// check, verifying the
// server's certificate for serverName against the system's roots, as
// net/http's client does.
var dialTLS = tlsDialWith(nil)

// tlsHandshakeTimeout bounds the TLS handshake of an https:// check
// whatever the check's timeout, as the net/http Transport of the old probe
// bounded it (TLSHandshakeTimeout): a server that accepts connections and
// stalls its handshake fails its check after 10 s.
var tlsHandshakeTimeout = 10 * time.Second

var errTLSHandshakeTimeout = errors.New("TLS handshake timeout")

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
		var d net.Dialer
		raw, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		hctx, cancel := context.WithTimeout(ctx, tlsHandshakeTimeout)
		defer cancel()
		c := tls.Client(raw, cfg)
		if err := c.HandshakeContext(hctx); err != nil {
			raw.Close()
			if ctx.Err() == nil && hctx.Err() != nil {
				return nil, errTLSHandshakeTimeout
			}
			return nil, err
		}
		return c, nil
	}
}
