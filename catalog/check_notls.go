//go:build chitchat_omit_tls

package catalog

import (
	"context"
	"net"
)

// A build with -tags chitchat_omit_tls leaves crypto/tls out (with it
// 0.7 to 1.5 MB of every process's resident memory): https:// checks are
// refused by Check.Validate.
const tlsSupported = false

var dialTLS func(ctx context.Context, addr, serverName string) (net.Conn, error)
