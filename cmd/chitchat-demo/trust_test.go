package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// mutationCase is a call of a mutation endpoint and the state it leaves.
type mutationCase struct {
	name   string
	method string
	path   string // with the query for GET
	body   string // for POST
	ctype  string // for POST
	check  func(t *testing.T, srv *chitchat.Server) bool
}

// everyMutation calls every state-changing endpoint, in each of its forms:
// both paths, GET with a query, POST with a form and with JSON.
func everyMutation() []mutationCase {
	has := func(key, value string, status chitchat.Status) func(*testing.T, *chitchat.Server) bool {
		return func(t *testing.T, srv *chitchat.Server) bool {
			ns, _ := srv.NodeState(srv.Self())
			for k, v := range ns.AllKeyValues() {
				if k == key {
					return v.Value == value && v.Status == status
				}
			}
			return false
		}
	}
	var cases []mutationCase
	for _, slash := range []string{"/", ""} {
		cases = append(cases,
			mutationCase{"GET /set_kv" + slash, "GET", "/set_kv" + slash + "?key=k&value=v", "", "", has("k", "v", chitchat.StatusSet)},
			mutationCase{"POST form /set_kv" + slash, "POST", "/set_kv" + slash, "key=k&value=v", "application/x-www-form-urlencoded", has("k", "v", chitchat.StatusSet)},
			mutationCase{"POST JSON /set_kv" + slash, "POST", "/set_kv" + slash, `{"key":"k","value":"v"}`, "application/json", has("k", "v", chitchat.StatusSet)},
			mutationCase{"GET /mark_for_deletion" + slash, "GET", "/mark_for_deletion" + slash + "?key=old", "", "", has("old", "", chitchat.StatusDeleted)},
			mutationCase{"POST form /mark_for_deletion" + slash, "POST", "/mark_for_deletion" + slash, "key=old", "application/x-www-form-urlencoded", has("old", "", chitchat.StatusDeleted)},
			mutationCase{"POST JSON /mark_for_deletion" + slash, "POST", "/mark_for_deletion" + slash, `{"key":"old"}`, "application/json; charset=utf-8", has("old", "", chitchat.StatusDeleted)},
			mutationCase{"GET /delete_after_ttl" + slash, "GET", "/delete_after_ttl" + slash + "?key=old", "", "", has("old", "x", chitchat.StatusDeleteAfterTTL)},
			mutationCase{"POST form /delete_after_ttl" + slash, "POST", "/delete_after_ttl" + slash, "key=old", "application/x-www-form-urlencoded", has("old", "x", chitchat.StatusDeleteAfterTTL)},
			mutationCase{"POST JSON /delete_after_ttl" + slash, "POST", "/delete_after_ttl" + slash, `{"key":"old"}`, "application/json", has("old", "x", chitchat.StatusDeleteAfterTTL)},
		)
	}
	return cases
}

// do sends a mutation with the extra headers (Host is set as the request's
// host) and returns the status and body.
func (m mutationCase) do(t *testing.T, base string, header map[string]string) (int, string) {
	t.Helper()
	var body io.Reader
	if m.method == http.MethodPost {
		body = strings.NewReader(m.body)
	}
	req, err := http.NewRequest(m.method, base+m.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if m.ctype != "" {
		req.Header.Set("Content-Type", m.ctype)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A web page's requests, as a browser sends them, are refused at every
// mutating endpoint, and leave the state as it was; the same request from
// a script (no browser headers) succeeds, and so does one from /ui itself
// (same-origin).
func TestBrowserShapedMutationsRefused(t *testing.T) {
	for _, m := range everyMutation() {
		t.Run(m.name, func(t *testing.T) {
			srv, ts := testNode(t)
			self := strings.TrimPrefix(ts.URL, "http://")
			port := self[strings.LastIndex(self, ":")+1:]
			attacks := []struct {
				name   string
				header map[string]string
				want   int
			}{
				{"cross-site", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://attacker.example"}, http.StatusForbidden},
				{"same-site", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://other.localhost:" + port}, http.StatusForbidden},
				{"foreign Origin only", map[string]string{"Origin": "http://attacker.example"}, http.StatusForbidden},
				{"Origin null", map[string]string{"Origin": "null"}, http.StatusForbidden},
				{"Origin on another port", map[string]string{"Origin": "http://127.0.0.1:1"}, http.StatusForbidden},
				{"same-origin request with a foreign Origin", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://attacker.example"}, http.StatusForbidden},
				{"DNS rebinding (foreign Host)", map[string]string{"Host": "attacker.example:" + port, "Sec-Fetch-Site": "same-origin", "Origin": "http://attacker.example:" + port}, http.StatusMisdirectedRequest},
				{"foreign Host from a script", map[string]string{"Host": "attacker.example"}, http.StatusMisdirectedRequest},
			}
			for _, a := range attacks {
				srv.Set("old", "x") // what deletions delete
				srv.Delete("k")
				before, _ := srv.NodeState(srv.Self())
				code, body := m.do(t, ts.URL, a.header)
				var e errorDoc
				if code != a.want || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
					t.Errorf("%s: %d %s, want %d with a JSON error", a.name, code, body, a.want)
				}
				if m.check(t, srv) {
					t.Errorf("%s: the request was refused (%d) but changed the state", a.name, code)
				}
				if after, _ := srv.NodeState(srv.Self()); after.MaxVersion() != before.MaxVersion() {
					t.Errorf("%s: max version went from %d to %d", a.name, before.MaxVersion(), after.MaxVersion())
				}
			}
			for _, ok := range []struct {
				name   string
				header map[string]string
			}{
				{"script (curl)", nil},
				{"/ui (same-origin)", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": ts.URL}},
				{"typed in the address bar", map[string]string{"Sec-Fetch-Site": "none"}},
				{"localhost", map[string]string{"Host": "localhost:" + port}},
			} {
				srv.Set("old", "x")
				srv.Delete("k")
				if code, body := m.do(t, ts.URL, ok.header); code != http.StatusOK || body != `{"status":true}` {
					t.Errorf("%s: %d %s, want 200 {\"status\":true}", ok.name, code, body)
				}
				if !m.check(t, srv) {
					t.Errorf("%s: answered 200 but the state did not change", ok.name)
				}
			}
		})
	}
}

// A foreign Host is refused for reads too (DNS rebinding would let a page
// read the cluster's state); cross-site reads are served (the browser
// does not let the page see the answer).
func TestForeignHostRefusedForReads(t *testing.T) {
	_, ts := testNode(t)
	for _, path := range []string{"/", "/events", "/ui", "/metrics", "/healthz", "/v1/agent/members", "/v1/keyring", "/overlay/peers"} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+path, nil)
		req.Host = "attacker.example"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("GET %s with Host attacker.example = %d, want 421", path, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/healthz", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("a cross-site read of /healthz = %v %v, want 200", resp.StatusCode, err)
	}
}

func TestHostPolicy(t *testing.T) {
	listen := netip.MustParseAddrPort("127.0.0.1:10000")
	public := netip.MustParseAddrPort("192.0.2.7:10000")
	ifaces := func() ([]net.Addr, error) {
		return []net.Addr{&net.IPNet{IP: net.ParseIP("198.51.100.3"), Mask: net.CIDRMask(24, 32)}}, nil
	}
	tests := []struct {
		name    string
		listen  netip.AddrPort
		allowed []string
		host    string
		want    bool
	}{
		{"listen address", listen, nil, "127.0.0.1:10000", true},
		{"listen address, port forwarded", listen, nil, "127.0.0.1:8080", true},
		{"public address", listen, nil, "192.0.2.7:10000", true},
		{"other loopback", listen, nil, "127.0.0.2:10000", true},
		{"IPv6 loopback", listen, nil, "[::1]:10000", true},
		{"localhost", listen, nil, "localhost:10000", true},
		{"localhost, upper case, no port", listen, nil, "LocalHost", true},
		{"sub.localhost", listen, nil, "ui.localhost:10000", true},
		{"no Host (HTTP/1.0)", listen, nil, "", true},
		{"foreign name", listen, nil, "attacker.example:10000", false},
		{"name that resolves to loopback", listen, nil, "127.0.0.1.nip.io:10000", false},
		{"localhost lookalike", listen, nil, "localhost.attacker.example", false},
		{"foreign IP", listen, nil, "198.51.100.3:10000", false},
		{"interface IP with a wildcard listen address", netip.MustParseAddrPort("0.0.0.0:10000"), nil, "198.51.100.3:10000", true},
		{"foreign IP with a wildcard listen address", netip.MustParseAddrPort("0.0.0.0:10000"), nil, "203.0.113.9:10000", false},
		{"allowed name", listen, []string{"node1.example"}, "NODE1.example:443", true},
		{"allowed IP", listen, []string{"[2001:db8::5]"}, "[2001:db8::5]:10000", true},
		{"name not allowed", listen, []string{"node1.example"}, "node2.example", false},
		{"any host", listen, []string{"*"}, "attacker.example", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newHostPolicy(tt.listen, public, tt.allowed)
			p.interfaceAddrs = ifaces
			if got := p.allows(tt.host); got != tt.want {
				t.Errorf("allows(%q) = %v, want %v", tt.host, got, tt.want)
			}
		})
	}
}

// Reserved keys can be neither set nor deleted, in any form, whoever asks.
func TestReservedKeysRefused(t *testing.T) {
	srv, ts := testNode(t)
	for _, key := range []string{"worker:1", chitchat.LeftKey, "__chitchat.anything", "service:web", "health:web"} {
		srv.Set(key, "owned") // as its owner would, through the library
		for _, m := range []mutationCase{
			{method: "GET", path: "/set_kv/?value=x&key=" + url.QueryEscape(key)},
			{method: "GET", path: "/mark_for_deletion?key=" + url.QueryEscape(key)},
			{method: "GET", path: "/delete_after_ttl/?key=" + url.QueryEscape(key)},
			{method: "POST", path: "/set_kv", ctype: "application/json", body: `{"key":"` + key + `","value":"x"}`},
			{method: "POST", path: "/mark_for_deletion/", ctype: "application/x-www-form-urlencoded", body: "key=" + url.QueryEscape(key)},
		} {
			code, body := m.do(t, ts.URL, nil)
			if code != http.StatusForbidden || !strings.Contains(body, "is reserved") {
				t.Errorf("%s %s %s = %d %s, want 403 naming the key reserved", m.method, m.path, m.body, code, body)
			}
		}
		if v, ok := srv.Get(key); !ok || v != "owned" {
			t.Errorf("%s = %q, %v after refused mutations, want \"owned\"", key, v, ok)
		}
	}
	// The one list: every prefix is refused, and the library's internal
	// keys fall under one of them.
	if _, _, ok := reservedPrefix(chitchat.LeftKey); !ok || !isInternalKey(chitchat.LeftKey) {
		t.Errorf("chitchat.LeftKey %q is not under a reserved prefix", chitchat.LeftKey)
	}
}

// POST bodies: the same semantics as GET's query; bad bodies get a clear
// 4xx.
func TestMutationBodies(t *testing.T) {
	srv, ts := testNode(t)
	tests := []struct {
		name, ctype, body string
		want              int
		wantErr           string
	}{
		{"JSON", "application/json", `{"key":"a","value":"1"}`, http.StatusOK, ""},
		{"form", "application/x-www-form-urlencoded", "key=b&value=2%203", http.StatusOK, ""},
		{"JSON, empty value", "application/json", `{"key":"c","value":""}`, http.StatusOK, ""},
		{"JSON missing value", "application/json", `{"key":"a"}`, http.StatusBadRequest, "missing query parameter(s): value"},
		{"JSON not an object of strings", "application/json", `{"key":"a","value":1}`, http.StatusBadRequest, "not a JSON object of strings"},
		{"JSON broken", "application/json", `{"key":`, http.StatusBadRequest, "not a JSON object"},
		{"two JSON values", "application/json", `{"key":"a","value":"1"} {}`, http.StatusBadRequest, "more than one JSON value"},
		{"too large", "application/json", `{"key":"a","value":"` + strings.Repeat("x", maxBodyBytes) + `"}`, http.StatusRequestEntityTooLarge, "larger than"},
		{"unsupported type", "text/plain", "key=a&value=1", http.StatusUnsupportedMediaType, "Content-Type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := mutationCase{method: "POST", path: "/set_kv/", ctype: tt.ctype, body: tt.body}.do(t, ts.URL, nil)
			if code != tt.want || !strings.Contains(body, tt.wantErr) {
				t.Errorf("POST %s = %d %s, want %d %q", tt.body[:min(len(tt.body), 40)], code, body, tt.want, tt.wantErr)
			}
		})
	}
	got := map[string]string{}
	for _, k := range []string{"a", "b", "c"} {
		if v, ok := srv.Get(k); ok {
			got[k] = v
		}
	}
	if diff := cmp.Diff(map[string]string{"a": "1", "b": "2 3", "c": ""}, got); diff != "" {
		t.Errorf("keys mismatch (-want +got):\n%s", diff)
	}
}
