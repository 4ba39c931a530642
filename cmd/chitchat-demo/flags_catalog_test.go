package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/gossipkit/chitchat-go/catalog"
)

func TestCatalogFlagDefaults(t *testing.T) {
	o, err := parseNodeFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c := o.catalog; c.domain != "consul." || c.dnsAddr.IsValid() || c.dnsTTL != 0 || len(c.services) != 0 {
		t.Errorf("defaults %+v, want domain consul., no DNS, TTL 0, no service", c)
	}
}

func TestCatalogFlagsParse(t *testing.T) {
	file := writeFile(t, t.TempDir(), "services.json", `{
	  "services": [
	    {"ID": "web-1", "Name": "web", "Port": 8080, "Tags": ["v1"], "Meta": {"team": "blue"}, "Address": "10.0.0.5",
	     "Check": {"HTTP": "http://10.0.0.5:8080/health", "Interval": "10s", "Timeout": "1s"}},
	    {"name": "redis", "port": 6379, "checks": [{"tcp": "127.0.0.1:6379", "interval": "5s"}]}
	  ]
	}`)
	o, err := parseNodeFlags([]string{"--service", "api:9000", "--service=db:5432:primary,v2", "--service_file", file,
		"--domain", "Cluster.Example", "--dns_addr", "127.0.0.1:8600", "--dns_ttl", "30s"})
	if err != nil {
		t.Fatal(err)
	}
	want := catalogOptions{
		services: []catalog.Service{
			{Name: "api", Port: 9000},
			{Name: "db", Port: 5432, Tags: []string{"primary", "v2"}},
			{ID: "web-1", Name: "web", Port: 8080, Tags: []string{"v1"}, Meta: map[string]string{"team": "blue"},
				Address: netip.MustParseAddr("10.0.0.5"),
				Check:   &catalog.Check{HTTP: "http://10.0.0.5:8080/health", Interval: 10 * time.Second, Timeout: time.Second}},
			{Name: "redis", Port: 6379, Check: &catalog.Check{TCP: "127.0.0.1:6379", Interval: 5 * time.Second}},
		},
		domain:  "cluster.example.",
		dnsAddr: netip.MustParseAddrPort("127.0.0.1:8600"),
		dnsTTL:  30 * time.Second,
	}
	opts := []cmp.Option{cmp.AllowUnexported(catalogOptions{}), cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })}
	if diff := cmp.Diff(want, o.catalog, opts...); diff != "" {
		t.Errorf("options mismatch (-want +got):\n%s", diff)
	}

	one := writeFile(t, t.TempDir(), "one.json", `{"service": {"name": "solo", "port": 1}}`)
	o, err = parseNodeFlags([]string{"--service_file", one})
	if err != nil || len(o.catalog.services) != 1 || o.catalog.services[0].Name != "solo" {
		t.Errorf("single-service file: %+v, %v", o.catalog.services, err)
	}
}

// Every bad value stops the program with a message naming the flag and
// what to fix.
func TestCatalogFlagsProblems(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"service without port", []string{"--service", "web"}, []string{`--service "web": write it as name:port`}},
		{"service port", []string{"--service", "web:http"}, []string{`--service "web:http": port "http" is not a number between 1 and 65535`}},
		{"service port 0", []string{"--service", "web:0"}, []string{`port "0"`}},
		{"service name", []string{"--service", "my_web:80"}, []string{`service name "my_web"`}},
		{"empty tag", []string{"--service", "web:80:a,,b"}, []string{`--service "web:80:a,,b": tag ""`}},
		{"duplicate IDs", []string{"--service", "web:80", "--service", "web:81"}, []string{`two services have the ID "web"`}},
		{"missing file", []string{"--service_file", dir + "/nope.json"}, []string{"--service_file " + dir + "/nope.json: open"}},
		{"not JSON", []string{"--service_file", writeFile(t, dir, "a.json", "service: web")}, []string{"not a service definition", "supported fields"}},
		{"unknown field", []string{"--service_file", writeFile(t, dir, "b.json", `{"service": {"name": "web", "prot": 80}}`)},
			[]string{`unknown field "prot"`}},
		{"empty file", []string{"--service_file", writeFile(t, dir, "c.json", `{}`)}, []string{"no service in the file"}},
		{"two documents", []string{"--service_file", writeFile(t, dir, "d.json", `{"service":{"name":"a"}} {"service":{"name":"b"}}`)},
			[]string{"more than one JSON document"}},
		{"bad services", []string{"--service_file", writeFile(t, dir, "e.json", `{"services": [
			{"name": "web", "address": "web.local", "check": {"http": "/health"}},
			{"name": "db", "checks": [{"tcp": "db:1", "interval": "1s"}, {"tcp": "db:2", "interval": "1s"}]},
			{"name": "x", "port": 70000, "check": {"tcp": "x:1", "interval": "soon", "timeout": "later"}}]}`)},
			[]string{`service 1 ("web"): Address "web.local": must be an IP address; check: Interval is required`,
				`service 2 ("db"): 2 checks: at most one check per service is supported`,
				`service 3 ("x"): check: Interval "soon": not a duration`, `Timeout "later"`}},
		{"invalid check", []string{"--service_file", writeFile(t, dir, "f.json", `{"service": {"name": "web", "check": {"http": "ftp://x", "interval": "10ms"}}}`)},
			[]string{"absolute http:// or https:// URL", "interval 10ms: must be between 100ms"}},
		{"domain", []string{"--domain", "my domain"}, []string{`--domain "my domain": label "my domain"`}},
		{"root domain", []string{"--domain", "."}, []string{`--domain ".": must be a DNS name`}},
		{"dns_addr", []string{"--dns_addr", "localhost:8600"}, []string{`--dns_addr "localhost:8600": not an ip:port`}},
		{"dns_ttl", []string{"--dns_ttl", "1.5s"}, []string{`--dns_ttl "1.5s": must be a whole number of seconds`}},
		{"negative dns_ttl", []string{"--dns_ttl", "-1s"}, []string{`--dns_ttl "-1s"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseNodeFlags(tt.args)
			if err == nil {
				t.Fatalf("parseNodeFlags(%q) succeeded", tt.args)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestClusterDNSPorts(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // error substring; "" for none
		dns  uint16
	}{
		{"default", nil, "", 8600},
		{"off", []string{"--dns_base_port", "0"}, "", 0},
		{"chosen", []string{"--dns_base_port", "9600"}, "", 9600},
		{"overlaps the nodes' ports", []string{"-n", "3", "--base_port", "10000", "--dns_base_port", "10002"}, "overlap the nodes' ports 10000..10002", 0},
		{"past 65535", []string{"-n", "3", "--dns_base_port", "65534"}, "dns_base_port..dns_base_port+n-1 lie in 1..65535", 0},
		{"set by the launcher", []string{"--", "--dns_addr", "127.0.0.1:53"}, "--dns_addr cannot be passed to the nodes", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseClusterFlags(tt.args)
			if tt.want == "" {
				if err != nil || o.dnsBasePort != tt.dns {
					t.Errorf("parseClusterFlags(%q) = %d, %v; want DNS base port %d", tt.args, o.dnsBasePort, err, tt.dns)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("parseClusterFlags(%q) error %v, want one containing %q", tt.args, err, tt.want)
			}
		})
	}
}
