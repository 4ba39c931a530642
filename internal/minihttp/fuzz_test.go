package minihttp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// Seeds of both fuzzers: ordinary requests and the request smuggling
// classics.
var fuzzSeeds = []string{
	"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /echo?a=b HTTP/1.1\r\nHost: h\r\nX-In: v\r\n\r\nHEAD /big HTTP/1.1\r\nHost: h\r\n\r\nGET /big HTTP/1.0\r\n\r\n",
	"POST /read HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
	"POST /read HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\nGET /flush HTTP/1.1\r\nHost: h\r\n\r\n",
	"POST /form HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\na=1&b=2",
	"POST /max HTTP/1.1\r\nHost: h\r\nContent-Length: 20\r\n\r\n01234567890123456789GET / HTTP/1.1\r\nHost: h\r\n\r\n",
	"POST /read HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
	"POST /ignore HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
	"GET /cl HTTP/1.1\r\nHost: h\r\n\r\nGET /204 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"GET /panic HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /panicflush HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /abortflush HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /abort HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /m/a/../b HTTP/1.1\r\nHost: h\r\n\r\nPOST /m/get/x HTTP/1.1\r\nHost: h\r\n\r\nGET /m/get/%2F HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET http://other/echo HTTP/1.1\r\nHost: h\r\n\r\n",
	"GET /echo/%01 HTTP/1.1\r\nHost: h\r\nX-In: \xff\r\n\r\nGET /echo/%0d%0aInjected:%201 HTTP/1.1\r\nHost: h\r\n\r\n",
	// CL.TE and TE.CL.
	"POST /read HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
	"POST /read HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
	// TE.TE: obfuscated Transfer-Encodings.
	"POST /read HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
	"POST /read HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
	"POST /read HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n",
	"POST /read HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
	"POST /read HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
	"POST /read HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 5\r\n\r\nhello",
	"POST /read HTTP/1.1\r\nHost: h\nContent-Length: 5\n\nhello",
	"POST /read HTTP/1.1\r\nHost: h\r\nContent-Length: 5\x00\r\n\r\nhello",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"POST /read HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\nx",
	"POST /read HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;" + strings.Repeat("x", 100) + "\r\na\r\n0\r\n\r\n",
	"POST /read HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n",
}

// FuzzReadRequest checks readRequest against net/http's parser: it never
// panics, and a request it reads (with its body) net/http reads the same,
// with the same body and the same bytes after it, so that no request can
// be framed one way here and another way by a proxy built on net/http.
func FuzzReadRequest(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReader(bytes.NewReader(in))
		r, err := readRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		rest, _ := io.ReadAll(br)

		hbr := bufio.NewReader(bytes.NewReader(in))
		hr, err := http.ReadRequest(hbr)
		if err != nil {
			t.Fatalf("readRequest read %q, net/http refuses it: %v", in, err)
		}
		hbody, err := io.ReadAll(hr.Body)
		if err != nil {
			t.Fatalf("readRequest read %q, net/http refuses its body: %v", in, err)
		}
		hrest, _ := io.ReadAll(hbr)
		if r.Method != hr.Method || r.URL.String() != hr.URL.String() || r.Host != hr.Host || r.ProtoMinor != hr.ProtoMinor {
			t.Errorf("request %q: read as %s %s host %q HTTP/1.%d, net/http reads %s %s host %q HTTP/1.%d", in,
				r.Method, r.URL, r.Host, r.ProtoMinor, hr.Method, hr.URL, hr.Host, hr.ProtoMinor)
		}
		if !bytes.Equal(body, hbody) || !bytes.Equal(rest, hrest) {
			t.Errorf("request %q: body %q then %q, net/http reads body %q then %q", in, body, rest, hbody, hrest)
		}
	})
}

// FuzzServeConn sends arbitrary bytes on a served connection: the server
// never panics or hangs, and what it writes back is a sequence of whole
// answers that net/http's client parses, with no header but those the
// handler and the server set (no injection), and nothing after an answer
// that says the connection closes.
func FuzzServeConn(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		synctest.Test(t, func(t *testing.T) {
			_, ln := serveBubble(t, fuzzHandler(), nil)
			out, d := exchange(t, ln, string(in))
			if d > time.Hour {
				t.Errorf("the server took %v to close the connection", d)
			}
			if err := checkAnswers(out); err != nil {
				t.Errorf("input %q: %v; the server wrote:\n%q", in, err, out)
			}
		})
	})
}

// answerFields are the header fields that fuzzHandler's answers may have.
var answerFields = map[string]bool{"Allow": true, "Connection": true, "Content-Length": true, "Content-Type": true,
	"Date": true, "Location": true, "Transfer-Encoding": true, "X-Cut": true, "X-Echo": true, "X-Method": true}

// checkAnswers parses out as answers: the answer to a HEAD request has the
// field X-Method: HEAD, as fuzzHandler sets it.
func checkAnswers(out string) error {
	br := bufio.NewReaderSize(strings.NewReader(out), 64<<10)
	for n := 0; ; n++ {
		if _, err := br.Peek(1); err == io.EOF {
			return nil
		}
		if err := checkHead(br); err != nil {
			return fmt.Errorf("answer %d: %w", n, err)
		}
		method := MethodGet
		if head, _ := br.Peek(br.Buffered()); bytes.Contains(head[:headLen(head)], []byte("\r\nX-Method: HEAD\r\n")) {
			method = MethodHead
		}
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			return fmt.Errorf("answer %d: %w", n, err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		// An answer the handler cut short (X-Cut) must reach the client
		// cut, unless nothing delimits it but the connection's end.
		cut := resp.Header.Get("X-Cut") != "" && method != MethodHead &&
			(resp.ContentLength >= 0 || len(resp.TransferEncoding) > 0)
		switch {
		case cut && err == nil:
			return fmt.Errorf("answer %d was cut short by its handler, and reaches the client whole", n)
		case cut && errors.Is(err, io.ErrUnexpectedEOF):
			if br.Buffered() > 0 {
				return fmt.Errorf("answer %d was cut short, and bytes follow it", n)
			}
			return nil
		case err != nil:
			return fmt.Errorf("answer %d: body: %w", n, err)
		}
		for k := range resp.Header {
			if !answerFields[k] {
				return fmt.Errorf("answer %d has a field %q", n, k)
			}
		}
		if resp.Close {
			if rest, _ := io.ReadAll(br); len(rest) > 0 {
				return fmt.Errorf("answer %d closes the connection, and %d bytes follow it", n, len(rest))
			}
		}
	}
}

// headLen is the length of b's head: up to its empty line, or all of b.
func headLen(b []byte) int {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return i + 2
	}
	return len(b)
}

// fuzzHandler behaves by the first segment of the path, in ways a demo
// handler may.
func fuzzHandler() Handler {
	mux := NewServeMux()
	mux.HandleFunc("GET /m/get/{x}", func(w ResponseWriter, r *Request) { io.WriteString(w, r.PathValue("x")) })
	mux.HandleFunc("POST /m/post/{$}", func(w ResponseWriter, r *Request) { io.WriteString(w, "posted") })
	mux.HandleFunc("/m/any/{x}/b", func(w ResponseWriter, r *Request) { io.WriteString(w, "any") })
	return HandlerFunc(func(w ResponseWriter, r *Request) {
		w.Header().Set("X-Method", r.Method)
		first, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		// As the demo's handlers that read bodies do: a client that does
		// not send the body it announced holds the handler this long.
		NewResponseController(w).SetReadDeadline(time.Now().Add(5 * time.Second))
		readBody := io.ReadAll
		switch first {
		case "m":
			mux.ServeHTTP(w, r)
		case "read":
			b, err := readBody(r.Body)
			if err != nil {
				w.WriteHeader(StatusBadRequest)
			}
			fmt.Fprintf(w, "%d bytes", len(b))
		case "max":
			if _, err := readBody(MaxBytesReader(w, r.Body, 10)); err != nil {
				w.WriteHeader(StatusRequestEntityTooLarge)
			}
		case "form":
			if err := r.ParseForm(); err != nil {
				w.WriteHeader(StatusBadRequest)
			}
			fmt.Fprintf(w, "%d fields", len(r.Form))
		case "echo":
			// A handler that puts what the client sent into its answer's
			// header: the server must not let it add fields.
			w.Header().Set("X-Echo", r.Header.Get("X-In")+r.URL.RawQuery+r.Host)
			w.Header().Add("X-Echo", r.URL.Path)
			w.Header().Set("Location", r.URL.String())
		case "big":
			w.Write(bytes.Repeat([]byte("b"), 5000))
		case "flush":
			io.WriteString(w, "a")
			NewResponseController(w).Flush()
			io.WriteString(w, "b")
		case "cl":
			w.Header().Set("X-Cut", "1")
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "short")
		case "204":
			w.WriteHeader(StatusNoContent)
		case "panic":
			io.WriteString(w, "x")
			panic("fuzz")
		case "panicflush":
			w.Header().Set("X-Cut", "1")
			io.WriteString(w, "x")
			NewResponseController(w).Flush()
			panic("fuzz")
		case "abort":
			// Nothing of an aborted answer reaches the client whole.
			w.Header().Set("X-Cut", "1")
			io.WriteString(w, "x")
			panic(ErrAbortHandler)
		case "abortflush":
			w.Header().Set("X-Cut", "1")
			io.WriteString(w, "x")
			NewResponseController(w).Flush()
			panic(ErrAbortHandler)
		default:
			io.WriteString(w, "ok")
		}
	})
}
