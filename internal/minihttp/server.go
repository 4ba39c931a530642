package minihttp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A Handler answers requests.
type Handler interface {
	ServeHTTP(ResponseWriter, *Request)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(ResponseWriter, *Request)

func (f HandlerFunc) ServeHTTP(w ResponseWriter, r *Request) { f(w, r) }

// ErrServerClosed is Serve's error after Shutdown or Close.
var ErrServerClosed = errors.New("minihttp: Server closed")

// Defaults of a Server's zero fields.
const (
	DefaultMaxHeaderBytes = 1 << 20
	// maxDiscard is how much of an unread request body the server reads
	// and drops to keep the connection open; beyond it the connection
	// closes.
	maxDiscard = 256 << 10
)

// A Server serves HTTP/1.1 on the connections of a listener. Its fields
// must be set before Serve.
type Server struct {
	Handler Handler
	// BaseContext returns the parent of every request's context; nil
	// means context.Background.
	BaseContext func(net.Listener) context.Context
	// ReadHeaderTimeout bounds the reading of a request's line and
	// headers: from the accept for a connection's first request, from its
	// first byte for the next ones. Zero means no bound.
	ReadHeaderTimeout time.Duration
	// WriteTimeout bounds the writing of each answer, from the end of
	// its request's headers; a handler may move it with
	// ResponseController.SetWriteDeadline. Zero means no bound.
	WriteTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a kept-alive
	// connection. Zero means ReadHeaderTimeout.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's line and headers. Zero means
	// DefaultMaxHeaderBytes (1 MiB).
	MaxHeaderBytes int
	// Logger receives a panic of a handler and errors accepting
	// connections; nil discards them.
	Logger *slog.Logger

	mu      sync.Mutex
	ln      net.Listener
	conns   map[*conn]struct{}
	closing atomic.Bool
	wg      sync.WaitGroup
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (s *Server) shuttingDown() bool { return s.closing.Load() }

func (s *Server) idleTimeout() time.Duration {
	if s.IdleTimeout > 0 {
		return s.IdleTimeout
	}
	return s.ReadHeaderTimeout
}

// Serve accepts connections on ln and serves each in its own goroutine
// until Shutdown or Close, when it returns ErrServerClosed; or until ln
// fails for good, when it returns that error. It closes ln.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.ln = ln
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.mu.Unlock()
	defer ln.Close()

	ctx := context.Background()
	if s.BaseContext != nil {
		ctx = s.BaseContext(ln)
	}
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like (EMFILE is neither a
			// timeout nor permanent): wait and retry, as net/http does,
			// instead of ending the server.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logger().Warn("HTTP: accept failed; retrying", "err", err, "in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		c := &conn{srv: s, nc: nc}
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve(ctx)
	}
}

// Shutdown stops accepting connections, closes the idle ones, and waits
// until the others finish their answer and close, or until ctx ends: then
// it returns ctx's error and leaves them open (Close closes them).
func (s *Server) Shutdown(ctx context.Context) error {
	s.startClosing()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		s.closeIdle()
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	s.startClosing()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	return nil
}

func (s *Server) startClosing() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Swap(true) {
		return
	}
	if s.ln != nil {
		s.ln.Close()
	}
}

func (s *Server) closeIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.idle.Load() {
			c.nc.Close()
		}
	}
}

// conn is one client connection.
type conn struct {
	srv *Server
	nc  net.Conn
	cr  *connReader
	br  *bufio.Reader
	bw  *bufio.Writer
	// idle is set while the connection waits for a request; Shutdown
	// closes idle connections.
	idle atomic.Bool
}

func (c *conn) serve(base context.Context) {
	s := c.srv
	defer func() {
		c.nc.Close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	maxHeader := s.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = DefaultMaxHeaderBytes
	}
	idleTimeout := s.idleTimeout()
	c.cr = &connReader{nc: c.nc}
	c.br = bufio.NewReaderSize(c.cr, 4<<10)
	c.bw = bufio.NewWriterSize(c.nc, 4<<10)
	remote := c.nc.RemoteAddr().String()

	for first := true; ; first = false {
		// Wait for the request's first byte, idle.
		c.idle.Store(true)
		if s.shuttingDown() {
			return
		}
		if !first && idleTimeout > 0 {
			c.nc.SetReadDeadline(time.Now().Add(idleTimeout))
		} else if s.ReadHeaderTimeout > 0 {
			c.nc.SetReadDeadline(time.Now().Add(s.ReadHeaderTimeout))
		}
		c.cr.setLimit(int64(maxHeader) + 4<<10) // the slack covers bufio's read-ahead
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		c.idle.Store(false)
		if !first && s.ReadHeaderTimeout > 0 {
			c.nc.SetReadDeadline(time.Now().Add(s.ReadHeaderTimeout))
		}
		req, err := readRequest(c.br)
		if err != nil {
			if c.refuse(err, maxHeader) {
				c.lingerClose()
			}
			return
		}
		c.cr.setLimit(-1)
		c.nc.SetReadDeadline(time.Time{})
		// Every answer starts with the server's write deadline, not with
		// one a handler set for the previous answer.
		var wd time.Time
		if s.WriteTimeout > 0 {
			wd = time.Now().Add(s.WriteTimeout)
		}
		c.nc.SetWriteDeadline(wd)
		if !c.handle(base, req, remote) {
			return
		}
	}
}

// refuse answers a request that could not be read, if the error is one to
// answer, and the connection then closes. It reports whether it answered.
func (c *conn) refuse(err error, maxHeader int) bool {
	var re *requestError
	status, msg := 0, ""
	switch {
	case c.cr.hitLimit():
		// First: textproto takes a line cut by the limit for a whole one,
		// which may then read as malformed.
		status, msg = StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("request line and headers exceed %d bytes", maxHeader)
	case errors.As(err, &re):
		status, msg = re.status, re.msg
	default:
		return false // EOF, a timeout or a reset: nobody to answer
	}
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c.bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		status, StatusText(status), len(msg)+1, msg+"\n")
	return c.bw.Flush() == nil
}

// lingerTimeout bounds lingerClose.
const lingerTimeout = 500 * time.Millisecond

// lingerClose readies the close of a connection whose client may still be
// sending (a body the server did not read, a request it refused): closing
// a TCP connection with unread input resets it, and the client may lose
// the answer before it reads it. It sends a FIN instead, then reads and
// drops what comes until the client closes or lingerTimeout passes (RFC
// 9112 §9.6; net/http half-closes too, then sleeps instead of reading).
func (c *conn) lingerClose() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.Copy(io.Discard, c.nc)
}

// bodyDone reports whether a request's body was read to its end.
func bodyDone(body io.Reader) bool {
	switch b := body.(type) {
	case *expectContinue:
		return bodyDone(b.ReadCloser)
	case *fixedReader:
		return b.n == 0
	case *chunkedReader:
		return b.done
	}
	return true
}

// handle runs the handler of req and finishes its answer. It reports
// whether the connection can carry another request.
func (c *conn) handle(base context.Context, req *Request, remote string) (keepAlive bool) {
	ctx, cancel := context.WithCancel(base)
	defer cancel()
	req.ctx = ctx
	req.RemoteAddr = remote
	w := &response{c: c, req: req, header: Header{}, contentLength: -1, head: req.Method == MethodHead}
	if connectionHas(req.Header, "close") || (req.ProtoMinor == 0 && !connectionHas(req.Header, "keep-alive")) {
		w.closeAfter = true
	}
	if e := req.Header.Get("Expect"); e != "" {
		if !strings.EqualFold(e, "100-continue") {
			w.WriteHeader(StatusExpectationFailed)
			w.closeAfter = true
			if w.finish() == nil && !bodyDone(req.Body) {
				c.lingerClose()
			}
			return false
		}
		// RFC 9110 §10.1.1: a 100-continue in an HTTP/1.0 request is
		// ignored.
		if req.ContentLength != 0 && req.ProtoMinor == 1 {
			w.expectCont = true
			req.Body = &expectContinue{w: w, ReadCloser: req.Body}
		}
	}
	body := req.Body

	// A request without a body leaves the connection to the server while
	// the handler runs: a read that ends tells that the client went away
	// (and cancels ctx), a byte that arrives is the next request's.
	bgRead := req.ContentLength == 0
	if bgRead {
		c.cr.startBackgroundRead(cancel)
	}
	c.runHandler(w, req)
	if bgRead {
		c.cr.abortPendingRead()
	}
	if err := w.finish(); err != nil {
		return false // the answer is cut short: nothing to linger for
	}
	// The client may or may not send a body it announced with
	// 100-continue and was not asked for: its next bytes cannot be told
	// apart from a request.
	keepAlive = !w.closeAfter && !(w.expectCont && !w.continueSent)
	// Drop what the handler left of the body, if it is short, to read the
	// next request after it. The handler is done: the client has the idle
	// time to send the rest.
	if keepAlive && req.ContentLength != 0 {
		var d time.Time
		if idle := c.srv.idleTimeout(); idle > 0 {
			d = time.Now().Add(idle)
		}
		c.nc.SetReadDeadline(d)
		if n, err := io.CopyN(io.Discard, body, maxDiscard+1); err != io.EOF || n > maxDiscard {
			keepAlive = false
		}
	}
	if !keepAlive && !bodyDone(body) {
		c.lingerClose()
	}
	return keepAlive
}

// runHandler calls the handler, turning a panic into a 500 if nothing was
// sent yet (net/http sends nothing) and a closed connection, as net/http
// does.
func (c *conn) runHandler(w *response, req *Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == ErrAbortHandler {
				w.fail(errAborted)
				return
			}
			c.srv.logger().Error("HTTP: handler panicked", "method", req.Method, "path", req.URL.Path,
				"remote", req.RemoteAddr, "panic", p, "stack", string(debug.Stack()))
			if w.wrote {
				// The client must see the answer cut short.
				w.fail(errPanicked)
				return
			}
			w.header = Header{}
			w.status, w.body, w.contentLength = 0, nil, -1
			w.WriteHeader(StatusInternalServerError)
			w.body = append(w.body, "internal error\n"...)
			w.closeAfter = true
		}
	}()
	c.srv.Handler.ServeHTTP(w, req)
}

// ErrAbortHandler, panicked by a handler, ends its answer and the
// connection without logging.
var ErrAbortHandler = errors.New("minihttp: abort Handler")

var (
	errAborted  = errors.New("minihttp: handler aborted")
	errPanicked = errors.New("minihttp: handler panicked")
)

// connectionHas reports whether the Connection header lists option.
func connectionHas(h Header, option string) bool {
	for _, v := range h.Values("Connection") {
		for _, o := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(o), option) {
				return true
			}
		}
	}
	return false
}

// connReader reads the connection for bufio: at most limit bytes (the
// bound on a request's head), and with the one byte a background read
// took first.
type connReader struct {
	nc net.Conn

	mu      sync.Mutex
	limit   int64 // bytes left before the head is too large; -1: none
	hit     bool  // the limit was reached
	hasByte bool
	byteBuf [1]byte
	bgDone  chan struct{} // non-nil while a background read runs
}

func (cr *connReader) setLimit(n int64) {
	cr.mu.Lock()
	cr.limit, cr.hit = n, false
	cr.mu.Unlock()
}

func (cr *connReader) hitLimit() bool {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return cr.hit
}

func (cr *connReader) Read(p []byte) (int, error) {
	cr.mu.Lock()
	if cr.bgDone != nil {
		cr.mu.Unlock()
		panic("minihttp: read during a background read")
	}
	if cr.limit == 0 {
		cr.hit = true
		cr.mu.Unlock()
		return 0, errHeaderTooLarge
	}
	if cr.limit > 0 && int64(len(p)) > cr.limit {
		p = p[:cr.limit]
	}
	if cr.hasByte && len(p) > 0 {
		p[0] = cr.byteBuf[0]
		cr.hasByte = false
		if cr.limit > 0 {
			cr.limit--
		}
		cr.mu.Unlock()
		return 1, nil
	}
	cr.mu.Unlock()
	n, err := cr.nc.Read(p)
	cr.mu.Lock()
	if cr.limit > 0 {
		cr.limit -= int64(n)
	}
	cr.mu.Unlock()
	return n, err
}

var errHeaderTooLarge = errors.New("minihttp: request head too large")

// startBackgroundRead reads one byte while a handler runs: if the read
// fails (the client closed or reset the connection), cancel is called.
func (cr *connReader) startBackgroundRead(cancel context.CancelFunc) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.hasByte {
		return // the next request has begun: the client is there
	}
	done := make(chan struct{})
	cr.bgDone = done
	go func() {
		defer close(done)
		n, err := cr.nc.Read(cr.byteBuf[:])
		cr.mu.Lock()
		if n == 1 {
			cr.hasByte = true
		}
		aborted := cr.bgDone == nil
		cr.mu.Unlock()
		var ne net.Error
		if err != nil && !(aborted && errors.As(err, &ne) && ne.Timeout()) {
			cancel()
		}
	}()
}

// abortPendingRead ends the background read, if one runs, and waits for
// it.
func (cr *connReader) abortPendingRead() {
	cr.mu.Lock()
	done := cr.bgDone
	cr.bgDone = nil
	cr.mu.Unlock()
	if done == nil {
		return
	}
	cr.nc.SetReadDeadline(aLongTimeAgo)
	<-done
	cr.nc.SetReadDeadline(time.Time{})
}

var aLongTimeAgo = time.Unix(1, 0)
