//go:build chitchat_omit_tls

package catalog

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A build without TLS refuses https:// checks when they are configured,
// and the probe fails them with the same reason if one comes anyway.
func TestHTTPSCheckRefusedWithoutTLS(t *testing.T) {
	err := (Check{HTTP: "https://127.0.0.1:8443/health", Interval: time.Second}).Validate()
	if err == nil || !strings.Contains(err.Error(), "chitchat_omit_tls") {
		t.Errorf("Validate(https check) = %v, want an error naming the build tag", err)
	}
	got := HTTPTCPProbe(context.Background(), Check{HTTP: "https://127.0.0.1:8443/health"})
	if got.Status != Critical || !strings.Contains(got.Output, "chitchat_omit_tls") {
		t.Errorf("HTTPTCPProbe(https) = %+v, want critical naming the build tag", got)
	}
}
