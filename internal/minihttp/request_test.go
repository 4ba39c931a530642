package minihttp

import (
	"bufio"
	"errors"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// parsed is what a test compares of a request readRequest returned.
type parsed struct {
	Method        string
	Target        string // URL.String()
	Path          string
	Host          string
	Proto         string
	ProtoMinor    int
	ContentLength int64
	Header        Header
	Body          string
	// Rest is what the reader holds after the body: the next request.
	Rest string
}

// readAll reads one request from in, its body, and what follows it. The
// status is that of the requestError readRequest or the body returned, 0
// if none, -1 for another error (which closes the connection unanswered).
func readAll(in string) (parsed, int, error) {
	br := bufio.NewReader(strings.NewReader(in))
	r, err := readRequest(br)
	if err != nil {
		return parsed{}, statusOf(err), err
	}
	p := parsed{Method: r.Method, Target: r.URL.String(), Path: r.URL.Path, Host: r.Host, Proto: r.Proto,
		ProtoMinor: r.ProtoMinor, ContentLength: r.ContentLength, Header: r.Header}
	body, err := io.ReadAll(r.Body)
	p.Body = string(body)
	if err != nil {
		return p, statusOf(err), err
	}
	rest, _ := io.ReadAll(br)
	p.Rest = string(rest)
	return p, 0, nil
}

func statusOf(err error) int {
	var re *requestError
	if errors.As(err, &re) {
		return re.status
	}
	return -1
}

func TestReadRequestLine(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		want       parsed
		wantStatus int
	}{
		{"origin form", "GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\n\r\n",
			parsed{Method: "GET", Target: "/a/b?c=d", Path: "/a/b", Host: "example.com", Proto: "HTTP/1.1", ProtoMinor: 1, Header: Header{}}, 0},
		{"absolute form: its authority wins over Host", "GET http://target:8080/p?q=1 HTTP/1.1\r\nHost: other\r\n\r\n",
			parsed{Method: "GET", Target: "http://target:8080/p?q=1", Path: "/p", Host: "target:8080", Proto: "HTTP/1.1", ProtoMinor: 1, Header: Header{}}, 0},
		{"absolute form https", "GET https://h/ HTTP/1.1\r\nHost: h\r\n\r\n",
			parsed{Method: "GET", Target: "https://h/", Path: "/", Host: "h", Proto: "HTTP/1.1", ProtoMinor: 1, Header: Header{}}, 0},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n",
			parsed{Method: "GET", Target: "/", Path: "/", Proto: "HTTP/1.0", Header: Header{}}, 0},
		{"HTTP/1.0 with Host", "GET / HTTP/1.0\r\nHost: h\r\n\r\n",
			parsed{Method: "GET", Target: "/", Path: "/", Host: "h", Proto: "HTTP/1.0", Header: Header{}}, 0},
		{"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n",
			parsed{Method: "GET", Target: "/", Path: "/", Proto: "HTTP/1.1", ProtoMinor: 1, Header: Header{}}, 0},
		{"any token is a method", "PROPFIND /x HTTP/1.1\r\nHost: h\r\n\r\n",
			parsed{Method: "PROPFIND", Target: "/x", Path: "/x", Host: "h", Proto: "HTTP/1.1", ProtoMinor: 1, Header: Header{}}, 0},
		{"escaped path", "GET /a%2Fb/c HTTP/1.1\r\nHost: h\r\n\r\n",
			parsed{Method: "GET", Target: "/a%2Fb/c", Path: "/a/b/c", Host: "h", Proto: "HTTP/1.1", ProtoMinor: 1, Header: Header{}}, 0},
		{"bare LF ends lines, as net/http reads them", "GET / HTTP/1.1\nHost: h\nX-A: 1\n\n",
			parsed{Method: "GET", Target: "/", Path: "/", Host: "h", Proto: "HTTP/1.1", ProtoMinor: 1, Header: Header{"X-A": {"1"}}}, 0},
		{"spaces and tabs around a value", "GET / HTTP/1.1\r\nHost:\t h \t\r\nX-A:  a b \r\nx-b: é\r\n\r\n",
			parsed{Method: "GET", Target: "/", Path: "/", Host: "h", Proto: "HTTP/1.1", ProtoMinor: 1, Header: Header{"X-A": {"a b"}, "X-B": {"é"}}}, 0},
		{"256 fields", "GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X-A: 1\r\n", 255) + "\r\n",
			parsed{Method: "GET", Target: "/", Path: "/", Host: "h", Proto: "HTTP/1.1", ProtoMinor: 1, Header: Header{"X-A": slices.Repeat([]string{"1"}, 255)}}, 0},

		{"HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", parsed{}, StatusBadRequest},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", parsed{}, StatusBadRequest},
		{"two equal Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", parsed{}, StatusBadRequest},
		{"Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", parsed{}, StatusBadRequest},
		{"Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", parsed{}, StatusBadRequest},
		{"Host with a quote", "GET / HTTP/1.1\r\nHost: a\"b\r\n\r\n", parsed{}, StatusBadRequest},
		{"method not a token", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", parsed{}, StatusBadRequest},
		{"two spaces", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", parsed{}, StatusBadRequest},
		{"no version", "GET /\r\nHost: h\r\n\r\n", parsed{}, StatusBadRequest},
		{"words after the version", "GET / HTTP/1.1 x\r\nHost: h\r\n\r\n", parsed{}, StatusBadRequest},
		{"empty line", "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", parsed{}, StatusBadRequest},
		{"HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", parsed{}, StatusHTTPVersionNotSupported},
		{"HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", parsed{}, StatusHTTPVersionNotSupported},
		{"not HTTP", "GET / FOO/1.1\r\nHost: h\r\n\r\n", parsed{}, StatusBadRequest},
		{"lowercase version", "GET / http/1.1\r\nHost: h\r\n\r\n", parsed{}, StatusBadRequest},
		{"asterisk form", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", parsed{}, StatusBadRequest},
		{"authority form", "CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", parsed{}, StatusBadRequest},
		{"relative target", "GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", parsed{}, StatusBadRequest},
		{"control byte in target", "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n", parsed{}, StatusBadRequest},
		{"DEL in target", "GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", parsed{}, StatusBadRequest},
		{"bad escape in target", "GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", parsed{}, StatusBadRequest},
		{"absolute form with a bad host", "GET http://a%0d%0ab/ HTTP/1.1\r\nHost: h\r\n\r\n", parsed{}, StatusBadRequest},
		{"space before the colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", parsed{}, StatusBadRequest},
		{"space before the colon of any field", "GET / HTTP/1.1\r\nHost: h\r\nX-A : 1\r\n\r\n", parsed{}, StatusBadRequest},
		{"tab before the colon", "GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", parsed{}, StatusBadRequest},
		{"257 fields", "GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("X-A: 1\r\n", 256) + "\r\n", parsed{}, StatusRequestHeaderFieldsTooLarge},
		{"obs-fold (RFC 9112 §5.2 lets a server refuse it)", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n", parsed{}, StatusBadRequest},
		{"obs-fold with a colon", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b: c\r\n\r\n", parsed{}, StatusBadRequest},
		{"CR before CRLF", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\r\n\r\n", parsed{}, StatusBadRequest},
		{"DEL in a value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7f\r\n\r\n", parsed{}, StatusBadRequest},
		{"first header folded", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", parsed{}, StatusBadRequest},
		{"NUL in a value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x00b\r\n\r\n", parsed{}, StatusBadRequest},
		{"CR in a value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", parsed{}, StatusBadRequest},
		{"control byte in a value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x1bb\r\n\r\n", parsed{}, StatusBadRequest},
		{"name not a token", "GET / HTTP/1.1\r\nHost: h\r\nX(A: 1\r\n\r\n", parsed{}, StatusBadRequest},
		{"no colon", "GET / HTTP/1.1\r\nHost: h\r\nX-A\r\n\r\n", parsed{}, StatusBadRequest},
		{"empty name", "GET / HTTP/1.1\r\nHost: h\r\n: 1\r\n\r\n", parsed{}, StatusBadRequest},

		{"cut in the request line", "GET / HT", parsed{}, StatusBadRequest},
		{"cut in the headers", "GET / HTTP/1.1\r\nHost: h\r\n", parsed{}, -1},
		{"nothing", "", parsed{}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, status, err := readAll(tt.in)
			if status != tt.wantStatus {
				t.Fatalf("status %d (%v), want %d", status, err, tt.wantStatus)
			}
			if status != 0 {
				return
			}
			if tt.want.Body == "" && got.Body == "" {
				got.Body = ""
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
		})
	}
}

// Body framing: Content-Length and chunked, and every combination that two
// parsers could frame differently (the smuggling classics) refused.
func TestReadRequestBody(t *testing.T) {
	const next = "GET /next HTTP/1.1\r\nHost: h\r\n\r\n"
	head := func(headers ...string) string {
		return req("POST /p HTTP/1.1", append([]string{"Host: h"}, headers...), "")
	}
	tests := []struct {
		name       string
		in         string
		wantCL     int64
		wantBody   string
		wantStatus int
	}{
		{"no framing: no body", head() + next, 0, "", 0},
		{"Content-Length", head("Content-Length: 5") + "hello" + next, 5, "hello", 0},
		{"Content-Length 0", head("Content-Length: 0") + next, 0, "", 0},
		{"Content-Length with leading zeros", head("Content-Length: 005") + "hello" + next, 5, "hello", 0},
		{"Content-Length twice, equal", head("Content-Length: 5", "Content-Length: 5") + "hello" + next, 5, "hello", 0},
		{"Content-Length twice, different", head("Content-Length: 5", "Content-Length: 6") + "hello!" + next, 0, "", StatusBadRequest},
		{"Content-Length list", head("Content-Length: 5, 5") + "hello" + next, 0, "", StatusBadRequest},
		{"Content-Length signed", head("Content-Length: +5") + "hello" + next, 0, "", StatusBadRequest},
		{"Content-Length negative", head("Content-Length: -1") + next, 0, "", StatusBadRequest},
		{"Content-Length hex", head("Content-Length: 0x5") + "hello" + next, 0, "", StatusBadRequest},
		{"Content-Length empty", head("Content-Length:") + next, 0, "", StatusBadRequest},
		{"Content-Length of 19 digits", head("Content-Length: 1000000000000000000") + next, 0, "", StatusBadRequest},
		{"Content-Length too large for int64", head("Content-Length: 99999999999999999999") + next, 0, "", StatusBadRequest},
		{"Content-Length cut short", head("Content-Length: 10") + "hello", 10, "hello", -1},
		{"CL.TE", head("Content-Length: 4", "Transfer-Encoding: chunked") + "0\r\n\r\n" + next, 0, "", StatusBadRequest},
		{"TE.CL", head("Transfer-Encoding: chunked", "Content-Length: 40") + "0\r\n\r\n" + next, 0, "", StatusBadRequest},
		{"TE gzip", head("Transfer-Encoding: gzip") + next, 0, "", StatusNotImplemented},
		{"TE identity", head("Transfer-Encoding: identity") + next, 0, "", StatusNotImplemented},
		{"TE gzip, chunked", head("Transfer-Encoding: gzip, chunked") + "0\r\n\r\n" + next, 0, "", StatusNotImplemented},
		{"TE chunked, chunked", head("Transfer-Encoding: chunked, chunked") + "0\r\n\r\n" + next, 0, "", StatusNotImplemented},
		{"TE twice", head("Transfer-Encoding: chunked", "Transfer-Encoding: chunked") + "0\r\n\r\n" + next, 0, "", StatusNotImplemented},
		{"TE with a trailing comma", head("Transfer-Encoding: chunked,") + "0\r\n\r\n" + next, 0, "", StatusNotImplemented},
		{"TE obs-folded", "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + next, 0, "", StatusBadRequest},
		{"TE in HTTP/1.0", req("POST /p HTTP/1.0", []string{"Transfer-Encoding: chunked"}, "0\r\n\r\n") + next, 0, "", StatusBadRequest},
		{"TE with a space before the colon", head("Transfer-Encoding : chunked") + "0\r\n\r\n" + next, 0, "", StatusBadRequest},
		{"CL with a space before the colon", head("Content-Length : 5") + "hello" + next, 0, "", StatusBadRequest},
		{"TE with a vertical tab", head("Transfer-Encoding: \x0bchunked") + "0\r\n\r\n" + next, 0, "", StatusBadRequest},

		{"chunked", head("Transfer-Encoding: chunked") + "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n" + next, -1, "hello world", 0},
		{"chunked, any case", head("Transfer-Encoding: Chunked") + "5\r\nhello\r\n0\r\n\r\n" + next, -1, "hello", 0},
		{"chunked, hex digits of both cases", head("Transfer-Encoding: chunked") + "a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n" + next, -1, "01234567890123456789", 0},
		{"chunked, leading zeros", head("Transfer-Encoding: chunked") + "0005\r\nhello\r\n000\r\n\r\n" + next, -1, "hello", 0},
		{"chunked, extensions", head("Transfer-Encoding: chunked") + "5;a=b;c=\"d\"\r\nhello\r\n0;e\r\n\r\n" + next, -1, "hello", 0},
		{"chunked, spaces before an extension", head("Transfer-Encoding: chunked") + "5 \t;a\r\nhello\r\n0\r\n\r\n" + next, -1, "hello", 0},
		{"chunked, trailers dropped", head("Transfer-Encoding: chunked") + "5\r\nhello\r\n0\r\nX-T: 1\r\nX-U: 2\r\n\r\n" + next, -1, "hello", 0},
		{"chunked, empty", head("Transfer-Encoding: chunked") + "0\r\n\r\n" + next, -1, "", 0},
		{"chunked, size not hex", head("Transfer-Encoding: chunked") + "g\r\nhello\r\n0\r\n\r\n", -1, "", StatusBadRequest},
		{"chunked, size 0x", head("Transfer-Encoding: chunked") + "0x5\r\nhello\r\n0\r\n\r\n", -1, "", StatusBadRequest},
		{"chunked, size signed", head("Transfer-Encoding: chunked") + "+5\r\nhello\r\n0\r\n\r\n", -1, "", StatusBadRequest},
		{"chunked, size negative", head("Transfer-Encoding: chunked") + "-5\r\nhello\r\n0\r\n\r\n", -1, "", StatusBadRequest},
		{"chunked, size with an underscore", head("Transfer-Encoding: chunked") + "0_5\r\nhello\r\n0\r\n\r\n", -1, "", StatusBadRequest},
		{"chunked, size after a space", head("Transfer-Encoding: chunked") + " 5\r\nhello\r\n0\r\n\r\n", -1, "", StatusBadRequest},
		{"chunked, size missing", head("Transfer-Encoding: chunked") + "\r\nhello\r\n0\r\n\r\n", -1, "", StatusBadRequest},
		{"chunked, size line ended by LF", head("Transfer-Encoding: chunked") + "5\nhello\r\n0\r\n\r\n", -1, "", StatusBadRequest},
		{"chunked, data ended by LF", head("Transfer-Encoding: chunked") + "5\r\nhello\n0\r\n\r\n", -1, "hello", StatusBadRequest},
		{"chunked, data longer than its size", head("Transfer-Encoding: chunked") + "5\r\nhello!\r\n0\r\n\r\n", -1, "hello", StatusBadRequest},
		{"chunked, no CRLF after the data", head("Transfer-Encoding: chunked") + "5\r\nhello0\r\n\r\n", -1, "hello", StatusBadRequest},
		{"chunked, last chunk ended by LF", head("Transfer-Encoding: chunked") + "0\n\n" + next, -1, "", StatusBadRequest},
		{"chunked, trailer ended by LF", head("Transfer-Encoding: chunked") + "0\r\nX-T: 1\n\r\n" + next, -1, "", StatusBadRequest},
		{"chunked, 16 hex digits", head("Transfer-Encoding: chunked") + "ffffffffffffffff\r\n", -1, "", StatusBadRequest},
		{"chunked, 17 hex digits", head("Transfer-Encoding: chunked") + "10000000000000000\r\nx", -1, "", StatusBadRequest},
		{"chunked, size line over 4 KiB", head("Transfer-Encoding: chunked") + "5;" + strings.Repeat("a", 5000) + "\r\nhello\r\n0\r\n\r\n", -1, "", StatusBadRequest},
		{"chunked, trailer over 4 KiB", head("Transfer-Encoding: chunked") + "0\r\nX-T: " + strings.Repeat("a", 5000) + "\r\n\r\n", -1, "", StatusBadRequest},
		{"chunked, trailer not a field", head("Transfer-Encoding: chunked") + "0\r\n0\r\n\r\n" + next, -1, "", StatusBadRequest},
		{"chunked, trailer with a space before the colon", head("Transfer-Encoding: chunked") + "0\r\nX-T : 1\r\n\r\n" + next, -1, "", StatusBadRequest},
		{"chunked, trailer folded", head("Transfer-Encoding: chunked") + "0\r\nX-T: 1\r\n 2\r\n\r\n" + next, -1, "", StatusBadRequest},
		{"chunked, trailer with a control byte", head("Transfer-Encoding: chunked") + "0\r\nX-T: \x01\r\n\r\n" + next, -1, "", StatusBadRequest},
		{"chunked, huge size cut short", head("Transfer-Encoding: chunked") + "fffffffffffffff\r\nhello", -1, "hello", -1},
		{"chunked, cut before the last chunk", head("Transfer-Encoding: chunked") + "5\r\nhello\r\n", -1, "hello", -1},
		{"chunked, cut in the trailers", head("Transfer-Encoding: chunked") + "0\r\nX-T: 1\r\n", -1, "", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, status, err := readAll(tt.in)
			if status != tt.wantStatus {
				t.Fatalf("status %d (%v), want %d", status, err, tt.wantStatus)
			}
			if got.Body != tt.wantBody {
				t.Errorf("body %q, want %q", got.Body, tt.wantBody)
			}
			if status != 0 {
				return
			}
			if got.ContentLength != tt.wantCL {
				t.Errorf("ContentLength %d, want %d", got.ContentLength, tt.wantCL)
			}
			if got.Rest != next {
				t.Errorf("after the body: %q, want the next request %q", got.Rest, next)
			}
		})
	}
}

// A body that ended keeps answering EOF; reading it in small pieces gives
// the same bytes.
func TestBodyReadersInPieces(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"Content-Length", req("POST / HTTP/1.1", []string{"Host: h", "Content-Length: 11"}, "hello world"), "hello world"},
		{"chunked", req("POST / HTTP/1.1", []string{"Host: h", "Transfer-Encoding: chunked"}, "5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"), "hello world"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := readRequest(bufio.NewReader(strings.NewReader(tt.in)))
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			buf := make([]byte, 2)
			for {
				n, err := r.Body.Read(buf)
				got = append(got, buf[:n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if string(got) != tt.want {
				t.Errorf("body %q, want %q", got, tt.want)
			}
			if n, err := r.Body.Read(buf); n != 0 || err != io.EOF {
				t.Errorf("a read after the end = %d, %v; want 0, EOF", n, err)
			}
		})
	}
}

func TestParseForm(t *testing.T) {
	tests := []struct {
		name        string
		method      string
		target      string
		contentType string
		body        string
		wantForm    map[string][]string
		wantPost    map[string][]string
		wantErr     bool
	}{
		{"query only", "GET", "/?a=1&b=2&a=3", "", "", map[string][]string{"a": {"1", "3"}, "b": {"2"}}, map[string][]string{}, false},
		{"url-encoded body first, then the query", "POST", "/?a=q", "application/x-www-form-urlencoded", "a=b&c=d",
			map[string][]string{"a": {"b", "q"}, "c": {"d"}}, map[string][]string{"a": {"b"}, "c": {"d"}}, false},
		{"content type with parameters", "POST", "/", "application/x-www-form-urlencoded; charset=utf-8", "a=1",
			map[string][]string{"a": {"1"}}, map[string][]string{"a": {"1"}}, false},
		{"other content type: body left alone", "POST", "/", "text/plain", "a=1", map[string][]string{}, map[string][]string{}, false},
		{"GET body not read", "GET", "/", "application/x-www-form-urlencoded", "a=1", map[string][]string{}, map[string][]string{}, false},
		{"bad query", "GET", "/?a=%zz", "", "", map[string][]string{}, map[string][]string{}, true},
		{"bad body", "POST", "/", "application/x-www-form-urlencoded", "a=%zz", map[string][]string{}, map[string][]string{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			if tt.contentType != "" {
				r.Header.Set("Content-Type", tt.contentType)
			}
			err := r.ParseForm()
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseForm() = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.wantForm, map[string][]string(r.Form)); diff != "" {
				t.Errorf("Form (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantPost, map[string][]string(r.PostForm)); diff != "" {
				t.Errorf("PostForm (-want +got):\n%s", diff)
			}
		})
	}
}

// ParseForm reads at most 10 MB of url-encoded body.
func TestParseFormBodyLimit(t *testing.T) {
	r := NewRequest("POST", "/", strings.NewReader("a="+strings.Repeat("x", maxFormBytes)))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if err := r.ParseForm(); err == nil {
		t.Fatal("ParseForm of a body over 10 MB succeeded")
	}
}

func TestParseMultipartForm(t *testing.T) {
	const body = "--XX\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n" +
		"--XX\r\nContent-Disposition: form-data; name=\"f\"; filename=\"f.txt\"\r\n\r\nfile body\r\n--XX--\r\n"
	tests := []struct {
		name        string
		method      string
		contentType string
		wantErr     error
	}{
		{"multipart", "POST", "multipart/form-data; boundary=XX", nil},
		{"no boundary", "POST", "multipart/form-data", ErrNotMultipart},
		{"text", "POST", "text/plain", ErrNotMultipart},
		{"GET", "GET", "multipart/form-data; boundary=XX", ErrNotMultipart},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRequest(tt.method, "/?q=1", strings.NewReader(body))
			r.Header.Set("Content-Type", tt.contentType)
			err := r.ParseMultipartForm(1 << 10)
			if err != tt.wantErr {
				t.Fatalf("ParseMultipartForm() = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if diff := cmp.Diff(map[string][]string{"a": {"1"}, "q": {"1"}}, map[string][]string(r.Form)); diff != "" {
				t.Errorf("Form (-want +got):\n%s", diff)
			}
			if fh := r.MultipartForm.File["f"]; len(fh) != 1 || fh[0].Filename != "f.txt" || fh[0].Size != int64(len("file body")) {
				t.Errorf("file part = %+v", fh)
			}
		})
	}
}

// A chunked body's framing costs at most 16 KiB more than its data pays
// for (as net/http's): tiny chunks with long extensions, or endless
// trailers, make the server read much more than a body's limit.
func TestChunkedOverhead(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantLen int
		wantErr bool
	}{
		{"one-byte chunks", strings.Repeat("1\r\nx\r\n", 100000) + "0\r\n\r\n", 100000, false},
		{"one-byte chunks with short extensions", strings.Repeat("1;a=b\r\nx\r\n", 100000) + "0\r\n\r\n", 100000, false},
		{"large chunks with 4 KiB extensions", strings.Repeat("2000;"+strings.Repeat("e", 4000)+"\r\n"+strings.Repeat("x", 0x2000)+"\r\n", 100) + "0\r\n\r\n", 100 * 0x2000, false},
		{"one-byte chunks with 1 KiB extensions", strings.Repeat("1;"+strings.Repeat("e", 1000)+"\r\nx\r\n", 100) + "0\r\n\r\n", 0, true},
		{"16 KiB of trailers", "0\r\n" + strings.Repeat("X-T: "+strings.Repeat("t", 1000)+"\r\n", 16) + "\r\n", 0, false},
		{"trailers past 16 KiB", "0\r\n" + strings.Repeat("X-T: "+strings.Repeat("t", 1000)+"\r\n", 17) + "\r\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := readRequest(bufio.NewReader(strings.NewReader(
				req("POST / HTTP/1.1", []string{"Host: h", "Transfer-Encoding: chunked"}, tt.body))))
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, r.Body)
			if tt.wantErr {
				if statusOf(err) != StatusBadRequest {
					t.Errorf("read %d bytes, then %v; want a 400", n, err)
				}
				return
			}
			if err != nil || n != int64(tt.wantLen) {
				t.Errorf("read %d bytes, then %v; want %d and EOF", n, err, tt.wantLen)
			}
		})
	}
}

// A head of many small fields costs about its size in memory, not many
// times it: a 256 KiB head of four-byte fields made textproto allocate
// 5 to 7 MiB, in a process meant to stay under 9 MiB resident.
func TestHeadMemory(t *testing.T) {
	tests := []struct {
		name string
		line func(i int) string
	}{
		{"one name", func(int) string { return "a:\r\n" }},
		{"distinct names", func(i int) string { return strconv.FormatInt(int64(i), 36) + ":\r\n" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString("GET / HTTP/1.1\r\nHost: h\r\n")
			for i := 0; b.Len() < 256<<10; i++ {
				b.WriteString(tt.line(i))
			}
			b.WriteString("\r\n")
			in := b.String()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := readRequest(bufio.NewReader(strings.NewReader(in)))
			runtime.ReadMemStats(&after)
			if statusOf(err) != StatusRequestHeaderFieldsTooLarge {
				t.Errorf("readRequest = %v, want a 431", err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
				t.Errorf("reading a %d KiB head allocated %d KiB", len(in)>>10, n>>10)
			}
		})
	}
}
