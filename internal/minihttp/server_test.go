package minihttp

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Requests the server cannot read are answered with their status and
// Connection: close, and the connection closes.
func TestRefusedRequests(t *testing.T) {
	tests := []struct {
		name       string
		input      string
		wantStatus int
	}{
		{"malformed request line", "GET /\r\n\r\n", StatusBadRequest},
		{"missing Host", "GET / HTTP/1.1\r\n\r\n", StatusBadRequest},
		{"CL.TE", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", StatusBadRequest},
		{"gzip body", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", StatusNotImplemented},
		{"HTTP/2", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", StatusHTTPVersionNotSupported},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", StatusHTTPVersionNotSupported},
		{"head too large", "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + strings.Repeat("a", 1<<10+4<<10) + "\r\n\r\n", StatusRequestHeaderFieldsTooLarge},
		{"request line too large", "GET /" + strings.Repeat("a", 1<<10+4<<10) + " HTTP/1.1\r\nHost: h\r\n\r\n", StatusRequestHeaderFieldsTooLarge},
		{"many small fields", "GET / HTTP/1.1\r\nHost: h\r\n" + strings.Repeat("A: b\r\n", 2000) + "\r\n", StatusRequestHeaderFieldsTooLarge},
		{"unknown expectation", "GET / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", StatusExpectationFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				called := false
				_, ln := serveBubble(t, HandlerFunc(func(w ResponseWriter, r *Request) { called = true }),
					func(s *Server) { s.MaxHeaderBytes = 1 << 10 })
				out, d := exchange(t, ln, tt.input+get11)
				as := readAnswers(t, out)
				if len(as) != 1 || as[0].Status != tt.wantStatus || as[0].Header.Get("Connection") != "close" {
					t.Errorf("answers %+v, want one %d with Connection: close", as, tt.wantStatus)
				}
				if d != 0 {
					t.Errorf("the connection closed after %v, want at once", d)
				}
				if called {
					t.Error("the handler was called")
				}
			})
		})
	}
}

// A head of at most MaxHeaderBytes is read; the answer to a longer one is
// 431 (with 4 KiB of slack, as net/http has).
func TestMaxHeaderBytes(t *testing.T) {
	tests := []struct {
		name       string
		max        int
		size       int // of the whole head
		wantStatus int
	}{
		{"1 KiB of 1 KiB", 1 << 10, 1 << 10, StatusOK},
		{"1 KiB + slack of 1 KiB", 1 << 10, 1<<10 + 4<<10, StatusOK},
		{"past the slack", 1 << 10, 1<<10 + 4<<10 + 1, StatusRequestHeaderFieldsTooLarge},
		{"default: 1 MiB", 0, 1 << 20, StatusOK},
		{"default: past 1 MiB and the slack", 0, 1<<20 + 4<<10 + 1, StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, ln := serveBubble(t, okHandler, func(s *Server) { s.MaxHeaderBytes = tt.max })
				const fixed = "GET / HTTP/1.1\r\nHost: h\r\nX: \r\n\r\n"
				in := strings.Replace(fixed, "X: ", "X: "+strings.Repeat("a", tt.size-len(fixed)), 1)
				out, _ := exchange(t, ln, in)
				if as := readAnswers(t, out); len(as) != 1 || as[0].Status != tt.wantStatus {
					t.Errorf("answers %+v, want one %d", as, tt.wantStatus)
				}
			})
		})
	}
}

// Expect: 100-continue is answered on the handler's first read of the
// body; a handler that answers without reading closes the connection,
// since the client may or may not send the body.
func TestExpectContinue(t *testing.T) {
	const head = "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"
	t.Run("read", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			_, ln := serveBubble(t, echoHandler, nil)
			c := ln.dial(t)
			go io.WriteString(c, head)
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != StatusContinue {
				t.Fatalf("first answer %v, %v; want 100 Continue", resp, err)
			}
			go io.WriteString(c, "hello"+get11)
			for _, want := range []string{"POST / host=h body=hello", "GET / host=h body="} {
				resp, err = http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				if b, _ := io.ReadAll(resp.Body); string(b) != want {
					t.Errorf("answer %q, want %q", b, want)
				}
			}
		})
	})
	t.Run("not read", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			as, d := serveOne(t, okHandler, head)
			want := []answer{{200, hdr("Content-Length", "3", "Content-Type", textPlain), "ok\n", "length"}}
			if diff := cmp.Diff(want, as); diff != "" {
				t.Errorf("answers (-want +got):\n%s", diff)
			}
			if d != 0 {
				t.Errorf("the connection closed after %v, want at once", d)
			}
		})
	})
	t.Run("empty body", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			as, d := serveOne(t, echoHandler, "POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n")
			if len(as) != 1 || as[0].Body != "POST / host=h body=" || d != testIdleTimeout {
				t.Errorf("answers %+v, closed after %v", as, d)
			}
		})
	})
	// RFC 9110 §10.1.1: a server MUST ignore a 100-continue expectation
	// in an HTTP/1.0 request.
	t.Run("HTTP/1.0", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			as, _ := serveOne(t, echoHandler, "POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello")
			if len(as) != 1 || as[0].Body != "POST / host= body=hello" {
				t.Errorf("answers %+v, want the body echoed", as)
			}
		})
	})
}

// What a handler leaves of a body is read and dropped, up to 256 KiB, to
// read the next request; past that the connection closes.
func TestUnreadBody(t *testing.T) {
	chunked := func(n int) string {
		return "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n" +
			strings.Repeat("400\r\n"+strings.Repeat("x", 1024)+"\r\n", n/1024) + "0\r\n\r\n"
	}
	fixed := func(n int) string {
		return "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " + itoa(n) + "\r\n\r\n" + strings.Repeat("x", n)
	}
	tests := []struct {
		name     string
		input    string
		wantOpen bool
	}{
		{"256 KiB", fixed(256 << 10), true},
		{"256 KiB + 1", fixed(256<<10 + 1), false},
		{"chunked, 256 KiB", chunked(256 << 10), true},
		{"chunked, 257 KiB", chunked(257 << 10), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				as, d := serveOne(t, okHandler, tt.input+get11)
				wantAnswers := 1
				if tt.wantOpen {
					wantAnswers = 2
				}
				if len(as) != wantAnswers {
					t.Errorf("%d answers, want %d", len(as), wantAnswers)
				}
				if open := d == testIdleTimeout; open != tt.wantOpen {
					t.Errorf("the connection closed after %v; want it open: %v", d, tt.wantOpen)
				}
			})
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// A client that announces a body the handler does not read, and then
// sends nothing, keeps its connection no longer than IdleTimeout after the
// answer.
func TestUnreadBodyNeverSent(t *testing.T) {
	tests := []struct {
		name  string
		input string
	}{
		{"Content-Length", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n0123456789"},
		{"chunked", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				as, d := serveOne(t, okHandler, tt.input)
				if len(as) != 1 || as[0].Status != StatusOK {
					t.Errorf("answers %+v, want one 200", as)
				}
				if d != testIdleTimeout {
					t.Errorf("the connection closed after %v, want %v", d, testIdleTimeout)
				}
			})
		})
	}
}

// MaxBytesReader fails with a *MaxBytesError past its limit, and the
// connection closes after the answer.
func TestMaxBytesReader(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		wantErr  bool
		wantOpen bool
	}{
		{"under", "12345", false, true},
		{"at the limit", "1234567890", false, true},
		{"over", "12345678901", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var gotErr error
				var got []byte
				h := HandlerFunc(func(w ResponseWriter, r *Request) {
					if r.Method != MethodPost {
						return
					}
					r.Body = MaxBytesReader(w, r.Body, 10)
					got, gotErr = io.ReadAll(r.Body)
					if gotErr != nil {
						w.WriteHeader(StatusRequestEntityTooLarge)
					}
				})
				as, d := serveOne(t, h, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: "+itoa(len(tt.body))+"\r\n\r\n"+tt.body+get11)
				var mbe *MaxBytesError
				if tt.wantErr != errors.As(gotErr, &mbe) || (mbe != nil && mbe.Limit != 10) {
					t.Errorf("read error %v (%T), want a *MaxBytesError of limit 10: %v", gotErr, gotErr, tt.wantErr)
				}
				if want := tt.body[:min(len(tt.body), 10)]; string(got) != want {
					t.Errorf("read %q, want %q", got, want)
				}
				if open := d == testIdleTimeout; open != tt.wantOpen {
					t.Errorf("the connection closed after %v; want it open: %v", d, tt.wantOpen)
				}
				if tt.wantErr && (len(as) != 1 || as[0].Status != StatusRequestEntityTooLarge || as[0].Header.Get("Connection") != "close") {
					t.Errorf("answers %+v, want one 413 with Connection: close", as)
				}
			})
		})
	}
}

// ReadHeaderTimeout bounds a request's head from its first byte (from the
// accept for the first request), IdleTimeout the wait for the next one.
func TestReadTimeouts(t *testing.T) {
	tests := []struct {
		name     string
		idle     time.Duration
		sendHead bool          // a whole request first
		pause    time.Duration // then silence
		partial  bool          // then the start of a request
		want     time.Duration // from the start to the server's close
	}{
		{"nothing sent", testIdleTimeout, false, 0, false, testReadHeaderTimeout},
		{"first head cut", testIdleTimeout, false, 0, true, testReadHeaderTimeout},
		{"idle after an answer", testIdleTimeout, true, 0, false, testIdleTimeout},
		{"second head started before the idle timeout", testIdleTimeout, true, 5 * time.Second, true, 5*time.Second + testReadHeaderTimeout},
		{"IdleTimeout zero: ReadHeaderTimeout", 0, true, 0, false, testReadHeaderTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				_, ln := serveBubble(t, okHandler, func(s *Server) { s.IdleTimeout = tt.idle })
				c := ln.dial(t)
				start := time.Now()
				br := bufio.NewReader(c)
				if tt.sendHead {
					go io.WriteString(c, get11)
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						t.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
				}
				time.Sleep(tt.pause) // the client's silence
				if tt.partial {
					go io.WriteString(c, "GET / HTTP/1.1\r\n")
				}
				if n, _ := io.Copy(io.Discard, br); n != 0 {
					t.Errorf("the server wrote %d bytes", n)
				}
				if d := time.Since(start); d != tt.want {
					t.Errorf("closed after %v, want %v", d, tt.want)
				}
			})
		})
	}
}

// WriteTimeout bounds each answer from the end of its request's head: a
// deadline a handler set for the previous answer does not carry over.
func TestWriteTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const writeTimeout = 5 * time.Second
		type failure struct {
			err   error
			after time.Duration
		}
		stuck := make(chan failure, 1)
		_, ln := serveBubble(t, HandlerFunc(func(w ResponseWriter, r *Request) {
			switch r.URL.Path {
			case "/short":
				NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Second))
			case "/stuck":
				start := time.Now()
				big := make([]byte, 64<<10)
				var err error
				for err == nil {
					_, err = w.Write(big)
				}
				stuck <- failure{err, time.Since(start)}
			}
			io.WriteString(w, "ok\n")
		}), func(s *Server) { s.WriteTimeout = writeTimeout; s.IdleTimeout = time.Hour })
		c := ln.dial(t)
		br := bufio.NewReader(c)
		for _, path := range []string{"/short", "/after"} {
			go io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: h\r\n\r\n")
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			io.Copy(io.Discard, resp.Body)
			time.Sleep(10 * time.Second) // past both the handler's deadline and WriteTimeout
		}
		// A client that reads nothing: the handler's write fails at the
		// write timeout.
		go io.WriteString(c, "GET /stuck HTTP/1.1\r\nHost: h\r\n\r\n")
		if f := <-stuck; !errors.Is(f.err, os.ErrDeadlineExceeded) || f.after != writeTimeout {
			t.Errorf("the stuck write failed after %v with %v, want %v and a deadline error", f.after, f.err, writeTimeout)
		}
	})
}

// ResponseController.SetReadDeadline bounds the reading of the body.
func TestSetReadDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var readErr error
		var after time.Duration
		h := HandlerFunc(func(w ResponseWriter, r *Request) {
			start := time.Now()
			NewResponseController(w).SetReadDeadline(start.Add(2 * time.Second))
			_, readErr = io.ReadAll(r.Body)
			after = time.Since(start)
		})
		_, ln := serveBubble(t, h, nil)
		c := ln.dial(t)
		go io.WriteString(c, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n12345")
		io.Copy(io.Discard, c)
		if !errors.Is(readErr, os.ErrDeadlineExceeded) || after != 2*time.Second {
			t.Errorf("the body read failed after %v with %v, want 2s and a deadline error", after, readErr)
		}
	})
}

// The context of a request without a body ends when the client goes away;
// a byte of the next request that arrives meanwhile is kept for it.
func TestBackgroundRead(t *testing.T) {
	t.Run("client gone", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cancelled := make(chan time.Duration, 1)
			_, ln := serveBubble(t, HandlerFunc(func(w ResponseWriter, r *Request) {
				start := time.Now()
				<-r.Context().Done()
				cancelled <- time.Since(start)
			}), nil)
			c := ln.dial(t)
			go io.WriteString(c, get11)
			synctest.Wait()
			time.Sleep(time.Second)
			c.Close()
			if d := <-cancelled; d != time.Second {
				t.Errorf("the context ended after %v, want 1s (when the client closed)", d)
			}
		})
	})
	t.Run("next request's first byte", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			release := make(chan struct{})
			var ctxErrs []error
			_, ln := serveBubble(t, HandlerFunc(func(w ResponseWriter, r *Request) {
				if r.URL.Path == "/wait" {
					<-release
				}
				ctxErrs = append(ctxErrs, r.Context().Err())
				io.WriteString(w, r.URL.Path)
			}), nil)
			c := ln.dial(t)
			br := bufio.NewReader(c)
			io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: h\r\n\r\n")
			io.WriteString(c, "G") // read by the background read: the pipe's write returns
			close(release)
			go io.WriteString(c, "ET /next HTTP/1.1\r\nHost: h\r\n\r\n")
			for _, want := range []string{"/wait", "/next"} {
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatal(err)
				}
				if b, _ := io.ReadAll(resp.Body); string(b) != want {
					t.Errorf("answer %q, want %q", b, want)
				}
			}
			if diff := cmp.Diff([]error{nil, nil}, ctxErrs, cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
				t.Errorf("context errors (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("ends with the handler", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ctxs := make(chan context.Context, 1)
			type key struct{}
			_, ln := serveBubble(t, HandlerFunc(func(w ResponseWriter, r *Request) { ctxs <- r.Context() }),
				func(s *Server) {
					s.BaseContext = func(net.Listener) context.Context { return context.WithValue(context.Background(), key{}, "base") }
				})
			exchange(t, ln, get11)
			ctx := <-ctxs
			if ctx.Err() == nil || ctx.Value(key{}) != "base" {
				t.Errorf("after the handler: context error %v, value %v; want canceled, base", ctx.Err(), ctx.Value(key{}))
			}
		})
	})
}

// Shutdown closes idle connections at once and waits for active ones to
// finish their answer, which says Connection: close.
func TestShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		started := make(chan struct{})
		s, ln := serveBubble(t, HandlerFunc(func(w ResponseWriter, r *Request) {
			if r.URL.Path == "/wait" {
				close(started)
				<-release
			}
			io.WriteString(w, "ok\n")
		}), nil)
		idle := ln.dial(t)
		go io.WriteString(idle, get11)
		idleDone := make(chan time.Duration)
		go func() {
			start := time.Now()
			b, _ := io.ReadAll(idle)
			if as := readAnswers(t, string(b)); len(as) != 1 {
				t.Errorf("the idle connection: %d answers", len(as))
			}
			idleDone <- time.Since(start)
		}()
		active := ln.dial(t)
		go io.WriteString(active, "GET /wait HTTP/1.1\r\nHost: h\r\n\r\n")
		activeOut := make(chan string)
		go func() {
			b, _ := io.ReadAll(active)
			activeOut <- string(b)
		}()
		<-started
		synctest.Wait()

		start := time.Now()
		shutdown := make(chan error)
		go func() { shutdown <- s.Shutdown(context.Background()) }()
		synctest.Wait()
		if d := <-idleDone; d != 0 {
			t.Errorf("the idle connection closed after %v, want at once", d)
		}
		select {
		case err := <-shutdown:
			t.Fatalf("Shutdown returned %v while a handler runs", err)
		default:
		}
		time.Sleep(time.Second)
		close(release)
		as := readAnswers(t, <-activeOut)
		if len(as) != 1 || as[0].Header.Get("Connection") != "close" {
			t.Errorf("the active connection's answers: %+v, want one with Connection: close", as)
		}
		if err := <-shutdown; err != nil || time.Since(start) != time.Second {
			t.Errorf("Shutdown = %v after %v, want nil after 1s", err, time.Since(start))
		}
		if err := s.Serve(newPipeListener()); err != ErrServerClosed {
			t.Errorf("Serve after Shutdown = %v, want ErrServerClosed", err)
		}
	})
}

// Shutdown gives up when its context ends; Close then closes the active
// connections.
func TestShutdownTimeoutAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		writeErr := make(chan error, 1)
		s, ln := serveBubble(t, HandlerFunc(func(w ResponseWriter, r *Request) {
			<-release
			_, err := io.WriteString(w, strings.Repeat("x", 10000))
			writeErr <- err
		}), nil)
		c := ln.dial(t)
		go io.WriteString(c, get11)
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		if err := s.Shutdown(ctx); err != context.DeadlineExceeded || time.Since(start) != 2*time.Second {
			t.Errorf("Shutdown = %v after %v, want DeadlineExceeded after 2s", err, time.Since(start))
		}
		s.Close()
		if n, _ := io.Copy(io.Discard, c); n != 0 {
			t.Errorf("read %d bytes after Close", n)
		}
		close(release)
		if <-writeErr == nil {
			t.Error("the handler wrote to a closed connection without an error")
		}
	})
}

// A failed accept that is not a closed listener (EMFILE: neither a timeout
// nor permanent) is waited out: Serve goes on after the backoff.
func TestServeSurvivesAcceptErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, ln := serveBubble(t, HandlerFunc(func(w ResponseWriter, r *Request) {}), nil)
		ln.FailAccept(&net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE})
		synctest.Wait()
		out, _ := exchange(t, ln, "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
		if as := readAnswers(t, out); len(as) != 1 || as[0].Status != StatusOK {
			t.Errorf("answers %+v after an EMFILE, want one 200", as)
		}
	})
}
