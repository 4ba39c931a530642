package catalog

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// Service is a service a node runs, as it announces it in gossip.
type Service struct {
	// ID identifies the service on its node: 1 to 128 letters, digits and
	// "-_.:" characters. Empty means Name (Consul's default).
	ID string
	// Name is what clients look the service up by (case-insensitive): 1 to
	// 63 letters, digits and dashes, starting with a letter or a digit, so
	// that it is a DNS label.
	Name string
	// Port is the service's port, 0 to 65535 (0: none).
	Port int
	// Tags are free-form labels, at most 64 of at most 255 bytes each; only
	// tags that are DNS labels can be looked up over DNS.
	Tags []string
	// Meta is free-form metadata: at most 64 pairs, keys of 1 to 128
	// letters, digits, "-" and "_", values of at most 512 bytes (Consul's
	// limits).
	Meta map[string]string
	// Address is where the service listens; the zero Addr means the node's
	// gossip address.
	Address netip.Addr
	// Check is the service's health check, run by its owner; nil means the
	// service is healthy as long as its node is live.
	Check *Check
}

// Check is a health check: an HTTP GET or a TCP connect, every Interval,
// each attempt bounded by Timeout. An HTTP check passes on a 2xx status,
// warns on 429 and fails otherwise; a TCP check passes when the connection
// opens (Consul's rules).
type Check struct {
	// HTTP is the absolute http:// or https:// URL to GET; exactly one of
	// HTTP and TCP is set.
	HTTP string
	// TCP is the host:port to connect to.
	TCP string
	// Interval is the time between the starts of two attempts; at least
	// MinCheckInterval.
	Interval time.Duration
	// Timeout bounds one attempt; 0 means min(10s, Interval). At most
	// MaxCheckTimeout.
	Timeout time.Duration
}

// Limits of a service definition. Gossip entries beyond them are skipped.
const (
	MaxIDLen          = 128
	MaxNameLen        = 63
	MaxTags           = 64
	MaxTagLen         = 255
	MaxMetaPairs      = 64
	MaxMetaKeyLen     = 128
	MaxMetaValueLen   = 512
	MaxCheckTargetLen = 512
	MinCheckInterval  = 100 * time.Millisecond
	MaxCheckInterval  = 24 * time.Hour
	MaxCheckTimeout   = 5 * time.Minute
	// DefaultCheckTimeout is the timeout of a check that sets none (Consul's
	// default), shortened to the interval.
	DefaultCheckTimeout = 10 * time.Second
)

// ServiceID returns s.ID, or s.Name when the ID is empty.
func (s Service) ServiceID() string {
	if s.ID == "" {
		return s.Name
	}
	return s.ID
}

// Validate reports every problem of s, joined with errors.Join.
func (s Service) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if s.ID != "" {
		if err := ValidateID(s.ID); err != nil {
			errs = append(errs, err)
		}
	}
	if err := ValidateName(s.Name); err != nil {
		errs = append(errs, err)
	}
	if s.Port < 0 || s.Port > 65535 {
		bad("port %d: must be between 0 and 65535", s.Port)
	}
	if len(s.Tags) > MaxTags {
		bad("%d tags: at most %d", len(s.Tags), MaxTags)
	}
	for _, t := range s.Tags {
		if err := validText("tag", t, 1, MaxTagLen); err != nil {
			errs = append(errs, err)
		}
	}
	if len(s.Meta) > MaxMetaPairs {
		bad("%d meta pairs: at most %d", len(s.Meta), MaxMetaPairs)
	}
	for k, v := range s.Meta {
		if len(k) == 0 || len(k) > MaxMetaKeyLen || !allChars(k, isWordChar) {
			bad("meta key %q: must be 1 to %d letters, digits, '-' or '_'", k, MaxMetaKeyLen)
		}
		if err := validText("meta value of "+strconv.Quote(k), v, 0, MaxMetaValueLen); err != nil {
			errs = append(errs, err)
		}
	}
	if s.Address.IsValid() && (s.Address.IsUnspecified() || s.Address.Zone() != "") {
		bad("address %v: must be a routable IP address without zone", s.Address)
	}
	if s.Check != nil {
		if err := s.Check.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("check: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Validate reports every problem of c, joined with errors.Join.
func (c Check) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	switch {
	case c.HTTP == "" && c.TCP == "":
		bad("give an HTTP URL or a TCP host:port to check")
	case c.HTTP != "" && c.TCP != "":
		bad("give an HTTP URL or a TCP host:port, not both")
	case c.HTTP != "":
		u, err := url.Parse(c.HTTP)
		if len(c.HTTP) > MaxCheckTargetLen || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("HTTP %q: must be an absolute http:// or https:// URL of at most %d bytes", c.HTTP, MaxCheckTargetLen)
		} else if u.Scheme == "https" && !tlsSupported {
			bad("HTTP %q: https:// checks need TLS, which this build leaves out (-tags chitchat_omit_tls): "+
				"use an http:// URL or a build without that tag", c.HTTP)
		}
	default:
		host, port, err := net.SplitHostPort(c.TCP)
		p, perr := strconv.ParseUint(port, 10, 16)
		if len(c.TCP) > MaxCheckTargetLen || err != nil || host == "" || perr != nil || p == 0 {
			bad("TCP %q: must be host:port, such as 127.0.0.1:6379", c.TCP)
		}
	}
	if c.Interval < MinCheckInterval || c.Interval > MaxCheckInterval {
		bad("interval %v: must be between %v and %v", c.Interval, MinCheckInterval, MaxCheckInterval)
	}
	if c.Timeout < 0 || c.Timeout > MaxCheckTimeout {
		bad("timeout %v: must be between 0 (default) and %v", c.Timeout, MaxCheckTimeout)
	}
	return errors.Join(errs...)
}

// timeout returns the timeout of one attempt.
func (c Check) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return min(DefaultCheckTimeout, c.Interval)
}

// Type is Consul's name of the check's kind: "http" or "tcp".
func (c Check) Type() string {
	if c.HTTP != "" {
		return "http"
	}
	return "tcp"
}

// ValidateName reports whether name is a valid service name.
func ValidateName(name string) error {
	if !isLabel(name) {
		return fmt.Errorf("service name %q: must be 1 to %d letters, digits or '-', starting with a letter or digit", name, MaxNameLen)
	}
	return nil
}

// ValidateID reports whether id is a valid service ID.
func ValidateID(id string) error {
	if len(id) == 0 || len(id) > MaxIDLen || !allChars(id, isIDChar) {
		return fmt.Errorf("service ID %q: must be 1 to %d letters, digits, '-', '_', '.' or ':'", id, MaxIDLen)
	}
	return nil
}

// isLabel reports whether s is a service name: a DNS label of letters,
// digits and dashes, starting with a letter or a digit.
func isLabel(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen || s[0] == '-' {
		return false
	}
	return allChars(s, func(c byte) bool { return isAlnum(c) || c == '-' })
}

// IsDNSLabel reports whether s can be a label of a DNS name the catalog
// answers: 1 to 63 letters, digits, '-' or '_'. Node names and tags that
// are not cannot be looked up over DNS.
func IsDNSLabel(s string) bool {
	return len(s) > 0 && len(s) <= 63 && allChars(s, isWordChar)
}

func validText(what, s string, minLen, maxLen int) error {
	if len(s) < minLen || len(s) > maxLen || !utf8.ValidString(s) {
		return fmt.Errorf("%s %q: must be %d to %d bytes of UTF-8", what, s, minLen, maxLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%s %q: must not contain control characters", what, s)
		}
	}
	return nil
}

func allChars(s string, ok func(byte) bool) bool {
	for i := range len(s) {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isWordChar(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }

func isIDChar(c byte) bool { return isWordChar(c) || c == '.' || c == ':' }
