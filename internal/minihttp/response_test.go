package minihttp

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
)

const get11 = "GET / HTTP/1.1\r\nHost: h\r\n\r\n"

var textPlain = "text/plain; charset=utf-8"

// Answers as net/http's client reads them: framing, headers, and whether
// the connection stays open.
func TestAnswerFraming(t *testing.T) {
	write := func(s string) Handler {
		return HandlerFunc(func(w ResponseWriter, r *Request) { io.WriteString(w, s) })
	}
	big := strings.Repeat("b", bufferedBody+1)
	tests := []struct {
		name    string
		h       Handler
		input   string
		methods []string
		want    []answer
		// wantOpen is set if the connection stays open after the answers.
		wantOpen bool
	}{
		{"small: Content-Length", write("ok\n"), get11, nil,
			[]answer{{200, hdr("Content-Length", "3", "Content-Type", textPlain), "ok\n", "length"}}, true},
		{"empty: Content-Length 0, no type", HandlerFunc(func(ResponseWriter, *Request) {}), get11, nil,
			[]answer{{200, hdr("Content-Length", "0"), "", "length"}}, true},
		{"the largest buffered", write(big[1:]), get11, nil,
			[]answer{{200, hdr("Content-Length", "4096", "Content-Type", textPlain), big[1:], "length"}}, true},
		{"large: chunked", write(big), get11, nil,
			[]answer{{200, hdr("Content-Type", textPlain), big, "chunked"}}, true},
		{"written in pieces past the buffer: chunked", HandlerFunc(func(w ResponseWriter, r *Request) {
			for range 3 {
				io.WriteString(w, big[:2000])
			}
		}), get11, nil, []answer{{200, hdr("Content-Type", textPlain), big[:2000] + big[:2000] + big[:2000], "chunked"}}, true},
		{"flushed: chunked", HandlerFunc(func(w ResponseWriter, r *Request) {
			io.WriteString(w, "a")
			NewResponseController(w).Flush()
			io.WriteString(w, "b")
		}), get11, nil, []answer{{200, hdr("Content-Type", textPlain), "ab", "chunked"}}, true},
		{"handler's Content-Length on a large answer", HandlerFunc(func(w ResponseWriter, r *Request) {
			w.Header().Set("Content-Length", "4097")
			io.WriteString(w, big)
		}), get11, nil, []answer{{200, hdr("Content-Length", "4097", "Content-Type", textPlain), big, "length"}}, true},
		{"handler's Content-Length, flushed", HandlerFunc(func(w ResponseWriter, r *Request) {
			w.Header().Set("Content-Length", "2")
			io.WriteString(w, "a")
			NewResponseController(w).Flush()
			io.WriteString(w, "b")
		}), get11, nil, []answer{{200, hdr("Content-Length", "2", "Content-Type", textPlain), "ab", "length"}}, true},
		{"handler's malformed Content-Length dropped", HandlerFunc(func(w ResponseWriter, r *Request) {
			w.Header().Set("Content-Length", "-1")
			io.WriteString(w, "ok\n")
		}), get11, nil, []answer{{200, hdr("Content-Length", "3", "Content-Type", textPlain), "ok\n", "length"}}, true},
		{"handler's type kept", HandlerFunc(func(w ResponseWriter, r *Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, "{}")
		}), get11, nil, []answer{{200, hdr("Content-Length", "2", "Content-Type", "application/json"), "{}", "length"}}, true},
		{"status", HandlerFunc(func(w ResponseWriter, r *Request) {
			w.WriteHeader(StatusNotFound)
			w.WriteHeader(StatusOK) // superfluous: the first stands
			io.WriteString(w, "no\n")
		}), get11, nil, []answer{{404, hdr("Content-Length", "3", "Content-Type", textPlain), "no\n", "length"}}, true},
		{"status without a reason phrase", HandlerFunc(func(w ResponseWriter, r *Request) { w.WriteHeader(299) }), get11, nil,
			[]answer{{299, hdr("Content-Length", "0"), "", "length"}}, true},
		{"1xx ignored", HandlerFunc(func(w ResponseWriter, r *Request) {
			w.WriteHeader(103)
			io.WriteString(w, "ok\n")
		}), get11, nil, []answer{{200, hdr("Content-Length", "3", "Content-Type", textPlain), "ok\n", "length"}}, true},

		{"HTTP/1.0: closed after", write("ok\n"), "GET / HTTP/1.0\r\n\r\n", nil,
			[]answer{{200, hdr("Connection", "close", "Content-Length", "3", "Content-Type", textPlain), "ok\n", "length"}}, false},
		{"HTTP/1.0 keep-alive", write("ok\n"), "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", nil,
			[]answer{{200, hdr("Connection", "keep-alive", "Content-Length", "3", "Content-Type", textPlain), "ok\n", "length"}}, true},
		{"HTTP/1.0 keep-alive, large: delimited by the close", write(big), "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", nil,
			[]answer{{200, hdr("Connection", "close", "Content-Type", textPlain), big, "close"}}, false},
		{"Connection: close", write("ok\n"), "GET / HTTP/1.1\r\nHost: h\r\nConnection: x, close\r\n\r\n", nil,
			[]answer{{200, hdr("Connection", "close", "Content-Length", "3", "Content-Type", textPlain), "ok\n", "length"}}, false},
		{"pipelined", echoHandler, "GET /a HTTP/1.1\r\nHost: h\r\n\r\nPOST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nxGET /c HTTP/1.1\r\nHost: h\r\n\r\n", nil,
			[]answer{
				{200, hdr("Content-Length", "19", "Content-Type", textPlain), "GET /a host=h body=", "length"},
				{200, hdr("Content-Length", "21", "Content-Type", textPlain), "POST /b host=h body=x", "length"},
				{200, hdr("Content-Length", "19", "Content-Type", textPlain), "GET /c host=h body=", "length"},
			}, true},

		{"HEAD: no body, Content-Length kept", write("ok\n"), "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n" + get11, []string{"HEAD"},
			[]answer{
				{200, hdr("Content-Length", "3", "Content-Type", textPlain), "", "length"},
				{200, hdr("Content-Length", "3", "Content-Type", textPlain), "ok\n", "length"},
			}, true},
		{"HEAD, large", write(big), "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n" + get11, []string{"HEAD"},
			[]answer{
				{200, hdr("Content-Type", textPlain), "", "chunked"},
				{200, hdr("Content-Type", textPlain), big, "chunked"},
			}, true},
		{"HEAD, handler's Content-Length", HandlerFunc(func(w ResponseWriter, r *Request) {
			w.Header().Set("Content-Length", "100")
		}), "HEAD / HTTP/1.1\r\nHost: h\r\n\r\nHEAD / HTTP/1.1\r\nHost: h\r\n\r\n", []string{"HEAD", "HEAD"},
			[]answer{
				{200, hdr("Content-Length", "100"), "", "length"},
				{200, hdr("Content-Length", "100"), "", "length"},
			}, true},
		{"204: no body, no length", HandlerFunc(func(w ResponseWriter, r *Request) {
			w.Header().Set("Content-Length", "5")
			w.WriteHeader(StatusNoContent)
			if _, err := io.WriteString(w, "hello"); err == nil {
				t.Error("a Write to a 204 succeeded")
			}
		}), get11 + get11, nil,
			[]answer{{204, hdr(), "", "none"}, {204, hdr(), "", "none"}}, true},
		{"304: no body, no length", HandlerFunc(func(w ResponseWriter, r *Request) {
			w.Header().Set("Transfer-Encoding", "chunked")
			w.WriteHeader(StatusNotModified)
		}), get11 + get11, nil,
			[]answer{{304, hdr(), "", "none"}, {304, hdr(), "", "none"}}, true},

		{"header fields that would end the header dropped", HandlerFunc(func(w ResponseWriter, r *Request) {
			w.Header().Set("X-Cr", "a\rInjected: 1")
			w.Header().Set("X-Lf", "a\nInjected: 1")
			w.Header().Set("X-Nul", "a\x00b")
			w.Header().Set("X-Ctl", "a\x01b") // as a path's %01 unescaped
			w.Header().Add("X-Ctl", "a\x7fb")
			w.Header()["Bad Name"] = []string{"1"}
			w.Header()["Bad\r\nName"] = []string{"1"}
			w.Header().Set("X-Ok", "a\tb")
		}), get11, nil, []answer{{200, hdr("Content-Length", "0", "X-Ok", "a\tb"), "", "length"}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				got, d := serveOne(t, tt.h, tt.input, tt.methods...)
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("answers (-want +got):\n%s", diff)
				}
				if open := d == testIdleTimeout; open != tt.wantOpen || (!open && d != 0) {
					t.Errorf("the connection closed after %v; want it open: %v", d, tt.wantOpen)
				}
			})
		})
	}
}

// A handler that writes less than the Content-Length it set: the client
// sees the answer cut short (the connection closes); one that writes more
// gets an error.
func TestHandlerContentLength(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var errMore error
		_, ln := serveBubble(t, HandlerFunc(func(w ResponseWriter, r *Request) {
			w.Header().Set("Content-Length", "5")
			if r.URL.Path == "/more" {
				_, errMore = io.WriteString(w, "toolong")
				io.WriteString(w, "12345")
				return
			}
			io.WriteString(w, "abc")
		}), nil)

		out, d := exchange(t, ln, get11+get11)
		as, err := parseAnswers(out)
		if err == nil || len(as) != 0 || d != 0 {
			t.Errorf("short answer: %d answers, %v after %v; want an unexpected EOF at once", len(as), err, d)
		}

		out, _ = exchange(t, ln, "GET /more HTTP/1.1\r\nHost: h\r\n\r\n")
		if errMore == nil {
			t.Error("writing more than the Content-Length succeeded")
		}
		want := []answer{{200, hdr("Content-Length", "5", "Content-Type", textPlain), "12345", "length"}}
		if diff := cmp.Diff(want, readAnswers(t, out)); diff != "" {
			t.Errorf("answers (-want +got):\n%s", diff)
		}
	})
}

// A panic in a handler is answered 500 if nothing was sent, closes the
// connection, is logged, and leaves the server serving.
func TestHandlerPanic(t *testing.T) {
	tests := []struct {
		name string
		h    HandlerFunc
		// want is the answer, or nil if the client must see none whole.
		want []answer
	}{
		{"before writing", func(w ResponseWriter, r *Request) { panic("boom") }, []answer{
			{500, hdr("Connection", "close", "Content-Length", "15", "Content-Type", textPlain), "internal error\n", "length"}}},
		{"after buffering", func(w ResponseWriter, r *Request) {
			w.Header().Set("X-A", "1")
			w.WriteHeader(202)
			io.WriteString(w, "partial")
			panic("boom")
		}, []answer{{500, hdr("Connection", "close", "Content-Length", "15", "Content-Type", textPlain), "internal error\n", "length"}}},
		{"after flushing a chunked answer", func(w ResponseWriter, r *Request) {
			io.WriteString(w, "partial")
			NewResponseController(w).Flush()
			panic("boom")
		}, nil},
		{"after flushing an answer of known length", func(w ResponseWriter, r *Request) {
			w.Header().Set("Content-Length", "100")
			io.WriteString(w, "partial")
			NewResponseController(w).Flush()
			panic("boom")
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var logs bytes.Buffer
				_, ln := serveBubble(t, HandlerFunc(func(w ResponseWriter, r *Request) {
					if r.URL.Path == "/panic" {
						tt.h(w, r)
					}
					io.WriteString(w, "ok\n")
				}), func(s *Server) { s.Logger = testLogger(&logs) })
				out, d := exchange(t, ln, "GET /panic HTTP/1.1\r\nHost: h\r\n\r\n"+get11)
				if d != 0 {
					t.Errorf("the connection closed after %v, want at once", d)
				}
				got, err := parseAnswers(out)
				if tt.want == nil {
					if err == nil {
						t.Errorf("the client read a whole answer:\n%s", out)
					}
				} else if diff := cmp.Diff(tt.want, got); diff != "" || err != nil {
					t.Errorf("answers (-want +got), %v:\n%s", err, diff)
				}
				if !strings.Contains(logs.String(), "boom") {
					t.Errorf("the panic was not logged: %q", logs.String())
				}
				// The server still serves.
				out, _ = exchange(t, ln, get11)
				if as := readAnswers(t, out); len(as) != 1 || as[0].Body != "ok\n" {
					t.Errorf("after the panic: %+v", as)
				}
			})
		})
	}
}

// A handler that panics with ErrAbortHandler ends its connection: the
// client gets no whole answer, and nothing is logged.
func TestErrAbortHandler(t *testing.T) {
	tests := []struct {
		name string
		h    HandlerFunc
	}{
		{"before writing", func(w ResponseWriter, r *Request) { panic(ErrAbortHandler) }},
		{"after buffering", func(w ResponseWriter, r *Request) {
			io.WriteString(w, "partial")
			panic(ErrAbortHandler)
		}},
		{"after flushing", func(w ResponseWriter, r *Request) {
			io.WriteString(w, "partial")
			NewResponseController(w).Flush()
			panic(ErrAbortHandler)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var logs bytes.Buffer
				_, ln := serveBubble(t, tt.h, func(s *Server) { s.Logger = testLogger(&logs) })
				out, d := exchange(t, ln, get11+get11)
				if d != 0 {
					t.Errorf("the connection closed after %v, want at once", d)
				}
				if as, _ := parseAnswers(out); len(as) > 0 {
					t.Errorf("the client read %d whole answers:\n%s", len(as), out)
				}
				if logs.Len() > 0 {
					t.Errorf("logged: %s", logs.String())
				}
			})
		})
	}
}

// A handler that writes after its status allows no body, or that sets
// headers after the status, changes nothing of the answer's framing.
func TestHeadersAfterStatus(t *testing.T) {
	tests := []struct {
		name string
		h    HandlerFunc
		want []answer
	}{
		{"Content-Length set after Write", func(w ResponseWriter, r *Request) {
			io.WriteString(w, strings.Repeat("x", bufferedBody+1))
			w.Header().Set("Content-Length", "1")
		}, []answer{{200, hdr("Content-Type", textPlain), strings.Repeat("x", bufferedBody+1), "chunked"}}},
		{"Transfer-Encoding set by the handler", func(w ResponseWriter, r *Request) {
			w.Header().Set("Transfer-Encoding", "chunked")
			io.WriteString(w, "ok\n")
		}, []answer{{200, hdr("Content-Length", "3", "Content-Type", textPlain), "ok\n", "length"}}},
		{"Content-Length set after WriteHeader, large answer", func(w ResponseWriter, r *Request) {
			w.WriteHeader(StatusOK)
			w.Header().Set("Content-Length", "4097")
			io.WriteString(w, strings.Repeat("x", bufferedBody+1))
		}, []answer{{200, hdr("Content-Type", textPlain), strings.Repeat("x", bufferedBody+1), "chunked"}}},
		{"field set after WriteHeader", func(w ResponseWriter, r *Request) {
			w.WriteHeader(StatusOK)
			w.Header().Set("X-Late", "1")
		}, []answer{{200, hdr("Content-Length", "0"), "", "length"}}},
		{"header set after WriteHeader", func(w ResponseWriter, r *Request) {
			w.WriteHeader(StatusOK)
			w.Header().Set("Content-Length", "1")
			io.WriteString(w, "ok\n")
		}, []answer{{200, hdr("Content-Length", "3", "Content-Type", textPlain), "ok\n", "length"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				got, _ := serveOne(t, tt.h, get11+get11)
				want := append(tt.want, tt.want...)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("answers (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// An answer's fields go out in sorted order, as net/http writes them, so
// that the same answer is the same bytes.
func TestHeaderFieldsSorted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ln := serveBubble(t, HandlerFunc(func(w ResponseWriter, r *Request) {
			for _, k := range []string{"Zulu", "Alpha", "Mike", "Bravo", "Yankee"} {
				w.Header().Set(k, "1")
			}
		}), nil)
		out, _ := exchange(t, ln, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		head, _, _ := strings.Cut(out, "\r\n\r\n")
		lines := strings.Split(head, "\r\n")[1:] // after the status line
		var names []string
		for _, l := range lines {
			name, _, _ := strings.Cut(l, ":")
			names = append(names, name)
		}
		if !slices.IsSorted(names) || len(names) < 8 {
			t.Errorf("fields %q, want them all in sorted order", names)
		}
	})
}
