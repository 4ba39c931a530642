package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gossipkit/chitchat-go/catalog"
)

// catalogOptions is the validated service-discovery part of the command
// line.
type catalogOptions struct {
	services []catalog.Service // --service and --service_file, in order
	domain   string            // lowercase, with the final dot: "consul."
	dnsAddr  netip.AddrPort    // zero: no DNS server
	dnsTTL   time.Duration     // whole seconds
}

// catalogFlags holds the raw text of the service-discovery flags.
type catalogFlags struct {
	services                listValue
	serviceFile             stringValue
	domain, dnsAddr, dnsTTL stringValue
}

// Defaults of the service-discovery flags.
const (
	defaultDomain = "consul." // so that existing Consul tooling and resolver configs work
	defaultDNSTTL = "0s"      // Consul's default: answers are not cached
	maxDNSTTL     = 24 * time.Hour
	// maxServiceFile bounds a --service_file, in bytes.
	maxServiceFile = 1 << 20
)

func newCatalogFlags() catalogFlags {
	return catalogFlags{domain: stringValue{s: defaultDomain}, dnsTTL: stringValue{s: defaultDNSTTL}}
}

func addCatalogFlags(fs *flag.FlagSet, cf *catalogFlags) {
	fs.Var(&cf.services, "service", "announce a service running on this node, as `name:port[:tag,tag]` "+
		"(such as web:8080:v1,primary); repeat for several")
	fs.Var(&cf.serviceFile, "service_file", "announce the services of this JSON `file`, in Consul's service definition "+
		`shape: {"service": {...}} or {"services": [...]} with Name, ID, Port, Tags, Meta, Address, `+
		`Check {HTTP or TCP, Interval, Timeout}`)
	fs.Var(&cf.domain, "domain", "DNS `domain` the catalog answers for, such as consul. (<node>.node.<domain>, "+
		"<service>.service.<domain>)")
	fs.Var(&cf.dnsAddr, "dns_addr", "serve the catalog over DNS (UDP and TCP) on this `ip:port`, such as 127.0.0.1:8600 (default: off)")
	fs.Var(&cf.dnsTTL, "dns_ttl", "TTL of DNS answers, a `duration` in whole seconds such as 30s")
}

// parseCatalogFlags validates the service-discovery flags.
func parseCatalogFlags(cf catalogFlags, bad func(string, ...any)) catalogOptions {
	var o catalogOptions
	for _, s := range cf.services {
		if svc, err := parseServiceFlag(s); err != nil {
			bad("--service %q: %v", s, err)
		} else {
			o.services = append(o.services, svc)
		}
	}
	if cf.serviceFile.set {
		svcs, err := readServiceFile(cf.serviceFile.s)
		if err != nil {
			bad("--service_file %s: %v", cf.serviceFile.s, err)
		}
		o.services = append(o.services, svcs...)
	}
	seen := map[string]bool{}
	for _, s := range o.services {
		if id := s.ServiceID(); seen[id] {
			bad("two services have the ID %q: give each one its own ID (the ID defaults to the name; set \"ID\" in a --service_file)", id)
		} else {
			seen[id] = true
		}
	}
	if d, err := normalizeDomain(cf.domain.s); err != nil {
		bad("--domain %q: %v", cf.domain.s, err)
	} else {
		o.domain = d
	}
	if cf.dnsAddr.set {
		o.dnsAddr = parseAddrFlag("dns_addr", cf.dnsAddr.s, bad)
	}
	if d, err := time.ParseDuration(cf.dnsTTL.s); err != nil || d < 0 || d > maxDNSTTL || d%time.Second != 0 {
		bad("--dns_ttl %q: must be a whole number of seconds between 0s and %v, such as 30s", cf.dnsTTL.s, maxDNSTTL)
	} else {
		o.dnsTTL = d
	}
	return o
}

// parseServiceFlag parses name:port[:tag,tag].
func parseServiceFlag(s string) (catalog.Service, error) {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) < 2 {
		return catalog.Service{}, errors.New("write it as name:port or name:port:tag,tag, such as web:8080:v1")
	}
	svc := catalog.Service{Name: parts[0]}
	p, err := strconv.ParseUint(parts[1], 10, 16)
	if err != nil || p == 0 {
		return catalog.Service{}, fmt.Errorf("port %q is not a number between 1 and 65535", parts[1])
	}
	svc.Port = int(p)
	if len(parts) == 3 {
		svc.Tags = strings.Split(parts[2], ",")
	}
	if err := svc.Validate(); err != nil {
		return catalog.Service{}, oneLine(err)
	}
	return svc, nil
}

// serviceFile is Consul's service definition file: one service or a list.
// Field names match case-insensitively, as in Consul.
type serviceFile struct {
	Service  *serviceDef
	Services []serviceDef
}

type serviceDef struct {
	ID      string
	Name    string
	Port    int
	Tags    []string
	Meta    map[string]string
	Address string
	Check   *checkDef
	Checks  []checkDef
}

type checkDef struct {
	HTTP, TCP         string
	Interval, Timeout string
}

const serviceFileFields = `supported fields: "service" or "services", each with Name, ID, Port, Tags, Meta, Address, ` +
	`and Check (or a one-element Checks) with HTTP or TCP, Interval and Timeout`

// readServiceFile reads and validates a service definition file.
func readServiceFile(path string) ([]catalog.Service, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxServiceFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxServiceFile {
		return nil, fmt.Errorf("larger than %d bytes", maxServiceFile)
	}
	return parseServiceFile(b)
}

func parseServiceFile(b []byte) ([]catalog.Service, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	var doc serviceFile
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not a service definition: %v (%s)", err, serviceFileFields)
	}
	if dec.More() {
		return nil, errors.New("more than one JSON document: put several services in {\"services\": [...]}")
	}
	defs := doc.Services
	if doc.Service != nil {
		defs = append([]serviceDef{*doc.Service}, defs...)
	}
	if len(defs) == 0 {
		return nil, fmt.Errorf("no service in the file (%s)", serviceFileFields)
	}
	var out []catalog.Service
	var errs []error
	for i, d := range defs {
		svc, err := d.service()
		if err != nil {
			name := d.ID
			if name == "" {
				name = d.Name
			}
			errs = append(errs, fmt.Errorf("service %d (%q): %v", i+1, name, oneLine(err)))
			continue
		}
		out = append(out, svc)
	}
	return out, errors.Join(errs...)
}

func (d serviceDef) service() (catalog.Service, error) {
	svc := catalog.Service{ID: d.ID, Name: d.Name, Port: d.Port, Tags: d.Tags, Meta: d.Meta}
	var errs []error
	if d.Address != "" {
		a, err := netip.ParseAddr(d.Address)
		if err != nil {
			errs = append(errs, fmt.Errorf("Address %q: must be an IP address", d.Address))
		}
		svc.Address = a.Unmap()
	}
	checks := d.Checks
	if d.Check != nil {
		checks = append([]checkDef{*d.Check}, checks...)
	}
	switch len(checks) {
	case 0:
	case 1:
		c, err := checks[0].check()
		errs = append(errs, err)
		svc.Check = c
	default:
		errs = append(errs, fmt.Errorf("%d checks: at most one check per service is supported", len(checks)))
	}
	if err := errors.Join(errs...); err != nil {
		return svc, err
	}
	return svc, svc.Validate()
}

func (d checkDef) check() (*catalog.Check, error) {
	c := &catalog.Check{HTTP: d.HTTP, TCP: d.TCP}
	var errs []error
	if d.Interval == "" {
		errs = append(errs, errors.New("check: Interval is required, such as \"10s\""))
	} else if v, err := time.ParseDuration(d.Interval); err != nil {
		errs = append(errs, fmt.Errorf("check: Interval %q: not a duration such as \"10s\"", d.Interval))
	} else {
		c.Interval = v
	}
	if d.Timeout != "" {
		if v, err := time.ParseDuration(d.Timeout); err != nil {
			errs = append(errs, fmt.Errorf("check: Timeout %q: not a duration such as \"1s\"", d.Timeout))
		} else {
			c.Timeout = v
		}
	}
	return c, errors.Join(errs...)
}

// oneLine joins the problems of an errors.Join on one line.
func oneLine(err error) error {
	if err == nil {
		return nil
	}
	return errors.New(strings.ReplaceAll(err.Error(), "\n", "; "))
}

// normalizeDomain lowercases d and adds the final dot; d must be a DNS
// name of labels of letters, digits, '-' and '_'.
func normalizeDomain(d string) (string, error) {
	d = strings.ToLower(strings.TrimSuffix(d, "."))
	if d == "" || len(d) > 200 {
		return "", errors.New("must be a DNS name such as consul. or cluster.example.")
	}
	for l := range strings.SplitSeq(d, ".") {
		if !catalog.IsDNSLabel(l) {
			return "", fmt.Errorf("label %q: must be 1 to 63 letters, digits, '-' or '_'", l)
		}
	}
	return d + ".", nil
}
