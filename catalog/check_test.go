package catalog

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The default probe against real servers on loopback (one attempt each).
func TestHTTPTCPProbe(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusNoContent)
		case "/busy":
			w.WriteHeader(http.StatusTooManyRequests)
		case "/slow":
			<-r.Context().Done()
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer hs.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// A port that was just free: nothing listens there.
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	tests := []struct {
		name       string
		check      Check
		want       Status
		wantOutput string
	}{
		{"2xx passes", Check{HTTP: hs.URL + "/ok"}, Passing, "HTTP GET " + hs.URL + "/ok: 204 No Content"},
		{"429 warns", Check{HTTP: hs.URL + "/busy"}, Warning, "HTTP GET " + hs.URL + "/busy: 429 Too Many Requests"},
		{"5xx fails", Check{HTTP: hs.URL + "/down"}, Critical, "HTTP GET " + hs.URL + "/down: 503 Service Unavailable"},
		{"timeout fails", Check{HTTP: hs.URL + "/slow", Timeout: 50 * time.Millisecond}, Critical, "HTTP GET " + hs.URL + "/slow: context deadline exceeded"},
		{"refused fails", Check{HTTP: "http://" + closedAddr + "/"}, Critical, "HTTP GET http://" + closedAddr + "/: connect: connection refused"},
		{"TCP open passes", Check{TCP: ln.Addr().String()}, Passing, "TCP connect " + ln.Addr().String() + ": Success"},
		{"TCP refused fails", Check{TCP: closedAddr}, Critical, "TCP connect " + closedAddr + ": connect: connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check.Interval = time.Second
			ctx, cancel := context.WithTimeout(context.Background(), tt.check.timeout())
			defer cancel()
			got := HTTPTCPProbe(ctx, tt.check)
			if got.Status != tt.want || !strings.HasSuffix(got.Output, tt.wantOutput) {
				t.Errorf("HTTPTCPProbe = %+v, want %s with output ending in %q", got, tt.want, tt.wantOutput)
			}
		})
	}
}
