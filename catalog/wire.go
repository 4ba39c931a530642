package catalog

// The gossip encoding. A node announces each service under a key of its
// own, and the result of the service's check under another:
//
//	service:<id>  {"name":"web","port":8080,"tags":["v1"],"meta":{"k":"v"},"addr":"10.0.0.1",
//	               "check":{"http":"http://127.0.0.1:8080/health","interval_ms":10000,"timeout_ms":1000}}
//	health:<id>   {"status":"passing","output":"HTTP GET http://127.0.0.1:8080/health: 200 OK"}
//
// Values are compact JSON; fields left out are empty. Readers ignore fields
// they do not know (a newer writer may add some) and skip, and count, any
// entry that is malformed or breaks a limit of Service.Validate.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"
)

// Key prefixes of the catalog's entries in a node's key-value state.
const (
	ServiceKeyPrefix = "service:"
	HealthKeyPrefix  = "health:"
)

// MaxValueLen bounds the encoded value of a service entry, in bytes.
const MaxValueLen = 4096

// MaxOutputLen bounds the output of a check result, in bytes; longer
// outputs are cut.
const MaxOutputLen = 256

// Status is a health status, spelled as Consul spells it.
type Status string

// The health statuses.
const (
	Passing  Status = "passing"
	Warning  Status = "warning"
	Critical Status = "critical"
)

func (s Status) valid() bool { return s == Passing || s == Warning || s == Critical }

// Result is the outcome of one health check attempt.
type Result struct {
	Status Status
	// Output says why, in one line (at most MaxOutputLen bytes).
	Output string
}

type wireService struct {
	Name  string            `json:"name"`
	Port  int               `json:"port,omitempty"`
	Tags  []string          `json:"tags,omitempty"`
	Meta  map[string]string `json:"meta,omitempty"`
	Addr  string            `json:"addr,omitempty"`
	Check *wireCheck        `json:"check,omitempty"`
}

type wireCheck struct {
	HTTP       string `json:"http,omitempty"`
	TCP        string `json:"tcp,omitempty"`
	IntervalMS int64  `json:"interval_ms"`
	TimeoutMS  int64  `json:"timeout_ms,omitempty"`
}

type wireResult struct {
	Status Status `json:"status"`
	Output string `json:"output,omitempty"`
}

// errValueTooLarge is the error of a value longer than MaxValueLen.
var errValueTooLarge = fmt.Errorf("value longer than %d bytes", MaxValueLen)

// encodeService returns the gossip value of s, which must be valid.
func encodeService(s Service) (string, error) {
	w := wireService{Name: s.Name, Port: s.Port, Tags: s.Tags, Meta: s.Meta}
	if s.Address.IsValid() {
		w.Addr = s.Address.String()
	}
	if c := s.Check; c != nil {
		w.Check = &wireCheck{HTTP: redactURL(c.HTTP), TCP: c.TCP, IntervalMS: c.Interval.Milliseconds(), TimeoutMS: c.Timeout.Milliseconds()}
	}
	b, err := json.Marshal(w)
	if err != nil {
		return "", err
	}
	if len(b) > MaxValueLen {
		return "", errValueTooLarge
	}
	return string(b), nil
}

// decodeService parses and validates the entry service:<id> = value.
func decodeService(id, value string) (Service, error) {
	if len(value) > MaxValueLen {
		return Service{}, errValueTooLarge
	}
	if err := ValidateID(id); err != nil {
		return Service{}, err
	}
	var w wireService
	if err := json.Unmarshal([]byte(value), &w); err != nil {
		return Service{}, fmt.Errorf("not a service entry: %w", err)
	}
	s := Service{ID: id, Name: w.Name, Port: w.Port, Tags: w.Tags, Meta: w.Meta}
	if len(s.Tags) == 0 {
		s.Tags = nil
	}
	if len(s.Meta) == 0 {
		s.Meta = nil
	}
	var errs []error
	if w.Addr != "" {
		a, err := netip.ParseAddr(w.Addr)
		if err != nil {
			errs = append(errs, fmt.Errorf("address %q: not an IP address", w.Addr))
		}
		s.Address = a
	}
	if c := w.Check; c != nil {
		// Bound the milliseconds before converting, so that they cannot
		// overflow a Duration into something valid.
		const maxMS = int64(MaxCheckInterval / time.Millisecond)
		if c.IntervalMS < 0 || c.IntervalMS > maxMS || c.TimeoutMS < 0 || c.TimeoutMS > maxMS {
			errs = append(errs, errors.New("check: interval or timeout out of range"))
		}
		s.Check = &Check{HTTP: c.HTTP, TCP: c.TCP,
			Interval: time.Duration(c.IntervalMS) * time.Millisecond, Timeout: time.Duration(c.TimeoutMS) * time.Millisecond}
	}
	if err := errors.Join(append(errs, s.Validate())...); err != nil {
		return Service{}, err
	}
	return s, nil
}

// encodeResult returns the gossip value of r, its output cut to
// MaxOutputLen bytes.
func encodeResult(r Result) string {
	b, _ := json.Marshal(wireResult{Status: r.Status, Output: cut(r.Output, MaxOutputLen)})
	return string(b)
}

// decodeResult parses and validates a health entry.
func decodeResult(value string) (Result, error) {
	if len(value) > MaxValueLen {
		return Result{}, errValueTooLarge
	}
	var w wireResult
	if err := json.Unmarshal([]byte(value), &w); err != nil {
		return Result{}, fmt.Errorf("not a health entry: %w", err)
	}
	if !w.Status.valid() {
		return Result{}, fmt.Errorf("health status %q: must be passing, warning or critical", w.Status)
	}
	if len(w.Output) > MaxOutputLen || !utf8.ValidString(w.Output) {
		return Result{}, fmt.Errorf("health output: must be at most %d bytes of UTF-8", MaxOutputLen)
	}
	return Result{Status: w.Status, Output: w.Output}, nil
}

// cut shortens s to at most n bytes, on a rune boundary, and replaces line
// breaks by spaces.
func cut(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
