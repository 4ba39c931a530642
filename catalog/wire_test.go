package catalog

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func TestServiceRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		svc  Service
		want string // the gossip value
	}{
		{"minimal", Service{ID: "web", Name: "web"}, `{"name":"web"}`},
		{"everything", Service{ID: "web-1", Name: "web", Port: 8080, Tags: []string{"v1", "primary"},
			Meta: map[string]string{"version": "1.2"}, Address: netip.MustParseAddr("10.0.0.7"),
			Check: &Check{HTTP: "http://127.0.0.1:8080/health", Interval: 10 * time.Second, Timeout: time.Second}},
			`{"name":"web","port":8080,"tags":["v1","primary"],"meta":{"version":"1.2"},"addr":"10.0.0.7",` +
				`"check":{"http":"http://127.0.0.1:8080/health","interval_ms":10000,"timeout_ms":1000}}`},
		{"tcp check, IPv6", Service{ID: "db", Name: "db", Port: 5432, Address: netip.MustParseAddr("fd00::1"),
			Check: &Check{TCP: "[fd00::1]:5432", Interval: 500 * time.Millisecond}},
			`{"name":"db","port":5432,"addr":"fd00::1","check":{"tcp":"[fd00::1]:5432","interval_ms":500}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := encodeService(tt.svc)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("encodeService = %s\nwant %s", got, tt.want)
			}
			back, err := decodeService(tt.svc.ID, got)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.svc, back, cmpAddr); diff != "" {
				t.Errorf("decodeService(encodeService(s)) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// Every bad gossip entry is an error naming the problem, never a panic.
func TestDecodeServiceRejects(t *testing.T) {
	tests := []struct {
		name, id, value string
		wantErr         string
	}{
		{"not JSON", "web", `nope`, "not a service entry"},
		{"JSON array", "web", `[1,2]`, "not a service entry"},
		{"no name", "web", `{"port":80}`, "service name"},
		{"name not a DNS label", "web", `{"name":"we b"}`, "service name"},
		{"name too long", "web", `{"name":"` + strings.Repeat("a", 64) + `"}`, "service name"},
		{"name starts with a dash", "web", `{"name":"-web"}`, "service name"},
		{"port too large", "web", `{"name":"web","port":65536}`, "port 65536"},
		{"negative port", "web", `{"name":"web","port":-1}`, "port -1"},
		{"fractional port", "web", `{"name":"web","port":1.5}`, "not a service entry"},
		{"port as string", "web", `{"name":"web","port":"80"}`, "not a service entry"},
		{"bad ID", "we/b", `{"name":"web"}`, "service ID"},
		{"empty ID", "", `{"name":"web"}`, "service ID"},
		{"bad address", "web", `{"name":"web","addr":"example.com"}`, "not an IP address"},
		{"unspecified address", "web", `{"name":"web","addr":"0.0.0.0"}`, "routable"},
		{"too many tags", "web", `{"name":"web","tags":[` + strings.Repeat(`"t",`, 64) + `"t"]}`, "65 tags"},
		{"control character in tag", "web", `{"name":"web","tags":["a\nb"]}`, "control characters"},
		{"empty tag", "web", `{"name":"web","tags":[""]}`, "tag"},
		{"bad meta key", "web", `{"name":"web","meta":{"a b":"c"}}`, "meta key"},
		{"meta value too long", "web", `{"name":"web","meta":{"k":"` + strings.Repeat("v", 513) + `"}}`, "meta value"},
		{"check without target", "web", `{"name":"web","check":{"interval_ms":1000}}`, "give an HTTP URL or a TCP"},
		{"check with both targets", "web", `{"name":"web","check":{"http":"http://a/","tcp":"a:1","interval_ms":1000}}`, "not both"},
		{"check URL not absolute", "web", `{"name":"web","check":{"http":"/health","interval_ms":1000}}`, "absolute"},
		{"check scheme", "web", `{"name":"web","check":{"http":"file:///etc/passwd","interval_ms":1000}}`, "absolute"},
		{"check TCP without port", "web", `{"name":"web","check":{"tcp":"db","interval_ms":1000}}`, "host:port"},
		{"check interval too short", "web", `{"name":"web","check":{"tcp":"db:1","interval_ms":10}}`, "interval"},
		{"check interval overflows", "web", `{"name":"web","check":{"tcp":"db:1","interval_ms":9223372036854775807}}`, "out of range"},
		{"value too large", "web", `{"name":"web","meta":{"k":"` + strings.Repeat("v", MaxValueLen) + `"}}`, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeService(tt.id, tt.value)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("decodeService(%q, %q) = %v, want an error containing %q", tt.id, tt.value, err, tt.wantErr)
			}
		})
	}
}

// A writer may add fields: readers ignore them.
func TestDecodeServiceIgnoresUnknownFields(t *testing.T) {
	s, err := decodeService("web", `{"name":"web","port":80,"weights":{"passing":3}}`)
	if err != nil || s.Name != "web" || s.Port != 80 {
		t.Errorf("decodeService = %+v, %v; want web:80", s, err)
	}
}

func TestResultRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   Result
		want Result
	}{
		{"passing", Result{Passing, "HTTP GET http://x/: 200 OK"}, Result{Passing, "HTTP GET http://x/: 200 OK"}},
		{"no output", Result{Critical, ""}, Result{Critical, ""}},
		{"long output is cut on a rune boundary", Result{Warning, strings.Repeat("é", 200)}, Result{Warning, strings.Repeat("é", 128)}},
		{"line breaks become spaces", Result{Critical, "a\nb\r\tc"}, Result{Critical, "a b  c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeResult(encodeResult(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("round trip = %+v, want %+v", got, tt.want)
			}
		})
	}
	for _, bad := range []string{`x`, `{"status":"ok"}`, `{}`, `{"status":"passing","output":"` + strings.Repeat("o", MaxOutputLen+1) + `"}`} {
		if r, err := decodeResult(bad); err == nil {
			t.Errorf("decodeResult(%q) = %+v, want an error", bad, r)
		}
	}
}

// Whatever a peer gossips, decoding never panics, and what decodes
// encodes back to an entry that decodes the same.
func FuzzDecodeService(f *testing.F) {
	f.Add("web", `{"name":"web","port":8080,"tags":["a"],"meta":{"k":"v"},"addr":"10.0.0.1","check":{"http":"http://a/","interval_ms":1000}}`)
	f.Add("db", `{"name":"db","check":{"tcp":"a:1","interval_ms":100,"timeout_ms":50}}`)
	f.Add("x", `{"name":"x","port":1e3}`)
	f.Add("x", `{"name":"x","addr":"fe80::1%eth0"}`)
	f.Fuzz(func(t *testing.T, id, value string) {
		s, err := decodeService(id, value)
		if err != nil {
			return
		}
		v, err := encodeService(s)
		if err != nil {
			t.Fatalf("a decoded service does not encode: %v (%+v)", err, s)
		}
		back, err := decodeService(id, v)
		if err != nil {
			t.Fatalf("re-encoded service %s does not decode: %v", v, err)
		}
		if diff := cmp.Diff(s, back, cmpAddr); diff != "" {
			t.Fatalf("round trip mismatch (-first +second):\n%s", diff)
		}
	})
}

func FuzzDecodeResult(f *testing.F) {
	f.Add(`{"status":"passing","output":"ok"}`)
	f.Add(`{"status":"critical"}`)
	f.Fuzz(func(t *testing.T, value string) {
		r, err := decodeResult(value)
		if err != nil {
			return
		}
		if back, err := decodeResult(encodeResult(r)); err != nil || back != r {
			t.Fatalf("round trip of %+v = %+v, %v", r, back, err)
		}
	})
}
