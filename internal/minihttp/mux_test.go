package minihttp

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// muxPatterns are registered on both a ServeMux and net/http's, whose
// routing is the reference: each handler answers its pattern and the
// values of its wildcards.
var muxPatterns = []string{
	"GET /{$}",
	"GET /a",
	"POST /a",
	"GET /a/b",
	"GET /a/{x}",
	"GET /a/{x}/c",
	"GET /a/{x}/{y}",
	"/any/{x}",
	"GET /t/{$}",
	"DELETE /d/{id}",
	"GET /v1/kv/{key}",
}

// routed is what a mux did with a request.
type routed struct {
	Status   int
	Pattern  string            // the handler that ran, if one did
	Values   map[string]string // its wildcards
	Allow    string
	Location string
}

func wildcards(pattern string) []string {
	var names []string
	for _, s := range strings.Split(pattern, "/") {
		if strings.HasPrefix(s, "{") && s != "{$}" {
			names = append(names, s[1:len(s)-1])
		}
	}
	return names
}

func routeMini(method, target string) routed {
	m := NewServeMux()
	for _, p := range muxPatterns {
		m.HandleFunc(p, func(w ResponseWriter, r *Request) {
			vals := map[string]string{}
			for _, n := range wildcards(p) {
				vals[n] = r.PathValue(n)
			}
			w.Header().Set("X-Pattern", p)
			w.Header().Set("X-Values", url.Values{"v": {cmpString(vals)}}.Encode())
		})
	}
	rec := &recorder{header: Header{}}
	m.ServeHTTP(rec, NewRequest(method, target, nil))
	return routedOf(rec.status, http.Header(rec.header))
}

func routeNet(method, target string) routed {
	m := http.NewServeMux()
	for _, p := range muxPatterns {
		m.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			vals := map[string]string{}
			for _, n := range wildcards(p) {
				vals[n] = r.PathValue(n)
			}
			w.Header().Set("X-Pattern", p)
			w.Header().Set("X-Values", url.Values{"v": {cmpString(vals)}}.Encode())
		})
	}
	rec := httptest.NewRecorder()
	m.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return routedOf(rec.Code, rec.Header())
}

func cmpString(m map[string]string) string {
	var b strings.Builder
	for _, k := range []string{"id", "key", "x", "y"} {
		if v, ok := m[k]; ok {
			b.WriteString(k + "=" + v + ";")
		}
	}
	return b.String()
}

func routedOf(status int, h http.Header) routed {
	r := routed{Status: status, Pattern: h.Get("X-Pattern"), Allow: h.Get("Allow"), Location: h.Get("Location")}
	if v, err := url.ParseQuery(h.Get("X-Values")); err == nil && v.Get("v") != "" {
		r.Values = map[string]string{}
		for _, kv := range strings.Split(strings.TrimSuffix(v.Get("v"), ";"), ";") {
			k, val, _ := strings.Cut(kv, "=")
			r.Values[k] = val
		}
	}
	if status == 0 {
		r.Status = StatusOK
	}
	if status >= 300 && status < 400 {
		r.Status = 3 // net/http answers 307, minihttp 301
	}
	return r
}

// recorder is a ResponseWriter that records the status and fields.
type recorder struct {
	status int
	header Header
	body   strings.Builder
}

func (r *recorder) Header() Header { return r.header }
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(StatusOK)
	return r.body.Write(b)
}

// ServeMux routes as net/http's ServeMux for the patterns it supports.
func TestServeMuxLikeNetHTTP(t *testing.T) {
	tests := []struct {
		method, target string
		want           routed
		// netDiffers says why net/http's mux answers otherwise; if it
		// is empty, the test checks that it answers want too.
		netDiffers string
	}{
		{"GET", "/", routed{Status: 200, Pattern: "GET /{$}"}, ""},
		{"HEAD", "/", routed{Status: 200, Pattern: "GET /{$}"}, ""},
		{"POST", "/", routed{Status: 405, Allow: "GET, HEAD"}, ""},
		{"GET", "/a", routed{Status: 200, Pattern: "GET /a"}, ""},
		{"POST", "/a", routed{Status: 200, Pattern: "POST /a"}, ""},
		{"PUT", "/a", routed{Status: 405, Allow: "GET, HEAD, POST"}, ""},
		{"GET", "/a/b", routed{Status: 200, Pattern: "GET /a/b"}, ""},
		{"GET", "/a/c", routed{Status: 200, Pattern: "GET /a/{x}", Values: map[string]string{"x": "c"}}, ""},
		{"GET", "/a/%62", routed{Status: 200, Pattern: "GET /a/b"}, ""},
		{"GET", "/a/%2F", routed{Status: 200, Pattern: "GET /a/{x}", Values: map[string]string{"x": "/"}},
			"net/http mistakes a segment that unescapes to \"/\" for a trailing slash"},
		{"GET", "/a/b%2Fc", routed{Status: 200, Pattern: "GET /a/{x}", Values: map[string]string{"x": "b/c"}}, ""},
		{"GET", "/a/%20sp%C3%A9", routed{Status: 200, Pattern: "GET /a/{x}", Values: map[string]string{"x": " spé"}}, ""},
		{"GET", "/a/b/c", routed{Status: 200, Pattern: "GET /a/{x}/c", Values: map[string]string{"x": "b"}}, ""},
		{"GET", "/a/b/d", routed{Status: 200, Pattern: "GET /a/{x}/{y}", Values: map[string]string{"x": "b", "y": "d"}}, ""},
		{"GET", "/a/", routed{Status: 404}, ""},
		{"GET", "/a/b/", routed{Status: 404}, ""},
		{"GET", "/b", routed{Status: 404}, ""},
		{"GET", "/t/", routed{Status: 200, Pattern: "GET /t/{$}"}, ""},
		{"GET", "/t", routed{Status: 404}, "net/http redirects /t to /t/ for /t/{$}"},
		{"GET", "/t/x", routed{Status: 404}, ""},
		{"PATCH", "/any/1", routed{Status: 200, Pattern: "/any/{x}", Values: map[string]string{"x": "1"}}, ""},
		{"DELETE", "/d/7", routed{Status: 200, Pattern: "DELETE /d/{id}", Values: map[string]string{"id": "7"}}, ""},
		{"GET", "/d/7", routed{Status: 405, Allow: "DELETE"}, ""},
		{"GET", "/v1/kv/a%3Fb", routed{Status: 200, Pattern: "GET /v1/kv/{key}", Values: map[string]string{"key": "a?b"}}, ""},
		{"GET", "/a//b", routed{Status: 3, Location: "/a/b"}, ""},
		{"GET", "/a/./b", routed{Status: 3, Location: "/a/b"}, ""},
		{"GET", "/a/b/../c?q=1", routed{Status: 3, Location: "/a/c?q=1"}, ""},
		{"GET", "/../a", routed{Status: 3, Location: "/a"}, ""},
		{"GET", "//a", routed{Status: 3, Location: "/a"}, ""},
		{"GET", "/t/.", routed{Status: 3, Location: "/t"}, "net/http redirects /t to /t/ for /t/{$}"},
		{"GET", "/any/%2e%2e", routed{Status: 200, Pattern: "/any/{x}", Values: map[string]string{"x": ".."}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			got := routeMini(tt.method, tt.target)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("minihttp (-want +got):\n%s", diff)
			}
			if tt.netDiffers != "" {
				return
			}
			if diff := cmp.Diff(tt.want, routeNet(tt.method, tt.target)); diff != "" {
				t.Errorf("net/http (-want +got):\n%s", diff)
			}
		})
	}
}

// Of two patterns that match, the one with more literal segments wins,
// whatever the order of registration; at equal counts, one with a method.
func TestServeMuxPrecedence(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		method   string
		target   string
		want     string
	}{
		{"literal before wildcard", []string{"GET /a/{x}", "GET /a/b"}, "GET", "/a/b", "GET /a/b"},
		{"literal before wildcard, other order", []string{"GET /a/b", "GET /a/{x}"}, "GET", "/a/b", "GET /a/b"},
		{"more literals", []string{"GET /{x}/b/{y}", "GET /a/{x}/{y}", "GET /a/b/{y}"}, "GET", "/a/b/c", "GET /a/b/{y}"},
		{"method before none", []string{"/a", "GET /a"}, "GET", "/a", "GET /a"},
		{"method before none, other order", []string{"GET /a", "/a"}, "GET", "/a", "GET /a"},
		{"HEAD before GET for HEAD", []string{"GET /a", "HEAD /a"}, "HEAD", "/a", "HEAD /a"},
		{"GET for HEAD", []string{"GET /a", "POST /a"}, "HEAD", "/a", "GET /a"},
		{"GET for HEAD before none", []string{"/a", "GET /a"}, "HEAD", "/a", "GET /a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewServeMux()
			var got string
			for _, p := range tt.patterns {
				m.HandleFunc(p, func(ResponseWriter, *Request) { got = p })
			}
			m.ServeHTTP(&recorder{header: Header{}}, NewRequest(tt.method, tt.target, nil))
			if got != tt.want {
				t.Errorf("routed to %q, want %q", got, tt.want)
			}
		})
	}
}

// The answers of the mux itself, as a client reads them.
func TestServeMuxAnswers(t *testing.T) {
	m := NewServeMux()
	m.HandleFunc("GET /a", func(ResponseWriter, *Request) {})
	tests := []struct {
		method, target string
		want           answer
	}{
		{"GET", "/b", answer{404, hdr("Content-Type", textPlain), "404 page not found\n", ""}},
		{"POST", "/a", answer{405, hdr("Allow", "GET, HEAD", "Content-Type", textPlain), "Method Not Allowed\n", ""}},
		{"GET", "/x/../a?b=c%20d", answer{301, hdr("Location", "/a?b=c%20d"), "", ""}},
		{"GET", "/x/../a/b%2Fc", answer{301, hdr("Location", "/a/b%2Fc"), "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			rec := &recorder{header: Header{}}
			m.ServeHTTP(rec, NewRequest(tt.method, tt.target, nil))
			// The mux's own fields, status and body; framing is the
			// server's (TestAnswerFraming).
			got := answer{rec.status, http.Header(rec.header), rec.body.String(), ""}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
		})
	}
}

// Patterns the mux cannot serve, or serves already, panic at registration.
func TestServeMuxRegistrationPanics(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
	}{
		{"twice", []string{"GET /a", "GET /a"}},
		{"twice, other wildcard names", []string{"GET /a/{x}", "GET /a/{y}"}},
		{"twice without method", []string{"/a/{$}", "/a/{$}"}},
		{"no slash", []string{"a"}},
		{"host", []string{"example.com/a"}},
		{"subtree", []string{"/a/"}},
		{"root subtree", []string{"/"}},
		{"empty segment", []string{"/a//b"}},
		{"empty wildcard", []string{"/{}"}},
		{"{$} inside", []string{"/{$}/a"}},
		{"unclosed wildcard", []string{"/{x"}},
		{"wildcard in a segment", []string{"/a{x}"}},
		{"multi-segment wildcard", []string{"/{x...}"}},
		{"bad method", []string{"G(T /a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("registering %q did not panic", tt.patterns)
				}
			}()
			m := NewServeMux()
			for _, p := range tt.patterns {
				m.HandleFunc(p, func(ResponseWriter, *Request) {})
			}
		})
	}
}
