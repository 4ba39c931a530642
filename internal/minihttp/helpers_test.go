package minihttp

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gossipkit/chitchat-go/internal/pipenet"
)

// Test timeouts of the servers that serveBubble starts: distinct, so that
// a test can tell which one closed a connection by its virtual duration.
const (
	testReadHeaderTimeout = 3 * time.Second
	testIdleTimeout       = 7 * time.Second
)

// pipeListener serves a Server inside a synctest bubble (pipenet); dial
// closes the client's end when the test ends.
type pipeListener struct{ *pipenet.Listener }

func newPipeListener() *pipeListener {
	return &pipeListener{pipenet.Listen(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80})}
}

func (l *pipeListener) dial(t testing.TB) net.Conn {
	c := l.Dial()
	t.Cleanup(func() { c.Close() })
	return c
}

// serveBubble serves h on a pipeListener until the test ends, with the
// test timeouts; configure may change the server before it starts. It must
// run inside a synctest bubble.
func serveBubble(t testing.TB, h Handler, configure func(*Server)) (*Server, *pipeListener) {
	t.Helper()
	s := &Server{Handler: h, ReadHeaderTimeout: testReadHeaderTimeout, IdleTimeout: testIdleTimeout}
	if configure != nil {
		configure(s)
	}
	ln := newPipeListener()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ln)
	}()
	t.Cleanup(func() {
		s.Close()
		<-done
		s.wg.Wait()
	})
	return s, ln
}

// exchange sends input on a new connection (from a goroutine: pipe writes
// block until the server reads) and returns everything the server wrote
// until it closed the connection, and how long that took (virtual time).
// A kept-alive connection closes after testIdleTimeout.
func exchange(t testing.TB, ln *pipeListener, input string) (string, time.Duration) {
	t.Helper()
	c := ln.dial(t)
	go func() {
		io.WriteString(c, input)
	}()
	start := time.Now()
	out, _ := io.ReadAll(c)
	return string(out), time.Since(start)
}

// answer is one answer as net/http's client parsed it.
type answer struct {
	Status int
	Header http.Header
	Body   string
	// Framing is how the body was delimited: "length", "chunked", "close"
	// or "none".
	Framing string
}

// readAnswers parses out as the answers to requests whose methods are
// methods, in order, with http.ReadResponse: the independent oracle. It
// skips 100 Continue answers, and fails the test if out has bytes that are
// not a whole answer.
func readAnswers(t testing.TB, out string, methods ...string) []answer {
	t.Helper()
	as, err := parseAnswers(out, methods...)
	if err != nil {
		t.Fatalf("%v; the server wrote:\n%s", err, out)
	}
	return as
}

// parseAnswers is readAnswers that returns the error instead of failing
// the test. A method past the end of methods is GET.
func parseAnswers(out string, methods ...string) ([]answer, error) {
	br := bufio.NewReaderSize(strings.NewReader(out), 64<<10)
	var as []answer
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return as, nil
		}
		if err := checkHead(br); err != nil {
			return as, &answerError{len(as), err}
		}
		method := MethodGet
		if len(as) < len(methods) {
			method = methods[len(as)]
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return as, &answerError{len(as), err}
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return as, &answerError{len(as), err}
		}
		if resp.StatusCode == StatusContinue {
			continue
		}
		a := answer{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
		switch {
		case len(resp.TransferEncoding) > 0:
			a.Framing = "chunked"
		case resp.Header.Get("Content-Length") != "":
			a.Framing = "length"
		case resp.Close && len(body) > 0:
			a.Framing = "close"
		default:
			a.Framing = "none"
		}
		// Fields that change with every run.
		a.Header.Del("Date")
		if resp.Close && resp.Header.Get("Connection") == "" {
			// http.ReadResponse removes this one.
			a.Header.Set("Connection", "close")
		}
		as = append(as, a)
	}
}

// checkHead checks what http.ReadResponse forgives in the head of the
// answer br starts with: both Content-Length and Transfer-Encoding.
func checkHead(br *bufio.Reader) error {
	b, _ := br.Peek(br.Buffered())
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		b = b[:i+2]
	}
	h := bytes.ToLower(b)
	if bytes.Contains(h, []byte("\r\ncontent-length:")) && bytes.Contains(h, []byte("\r\ntransfer-encoding:")) {
		return fmt.Errorf("both Content-Length and Transfer-Encoding in %q", b)
	}
	return nil
}

type answerError struct {
	n   int
	err error
}

func (e *answerError) Error() string {
	return fmt.Sprintf("answer %d cannot be parsed: %v", e.n, e.err)
}

// Handlers shared by the tests.
var (
	okHandler = HandlerFunc(func(w ResponseWriter, r *Request) { io.WriteString(w, "ok\n") })
	// echoHandler answers the request's method, target, Host and body.
	echoHandler = HandlerFunc(func(w ResponseWriter, r *Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(StatusBadRequest)
			io.WriteString(w, "body: "+err.Error())
			return
		}
		io.WriteString(w, r.Method+" "+r.URL.String()+" host="+r.Host+" body="+string(b))
	})
)

// req builds a raw request: the request line, then the header lines, each
// ended by CRLF, then the empty line and body.
func req(line string, headers []string, body string) string {
	var b bytes.Buffer
	b.WriteString(line + "\r\n")
	for _, h := range headers {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n" + body)
	return b.String()
}

// serveOne serves h in a fresh bubble-local server, sends input on one
// connection and returns the answers (for the methods, as readAnswers) and
// how long the server kept the connection open after input: 0 if it closed
// it after its answers, testIdleTimeout if it kept it alive. It must run
// inside a synctest bubble.
func serveOne(t *testing.T, h Handler, input string, methods ...string) ([]answer, time.Duration) {
	t.Helper()
	_, ln := serveBubble(t, h, nil)
	out, d := exchange(t, ln, input)
	return readAnswers(t, out, methods...), d
}

// hdr builds an http.Header of key, value pairs.
func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

// testLogger logs text to w.
func testLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
