package minihttp

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"time"
)

// A ResponseWriter is how a handler answers: headers, then a status, then
// the body. As with net/http, the first Write sends a 200 if WriteHeader
// was not called, and header fields changed after WriteHeader (or the
// first Write) are ignored. The server frames the answer: a handler's
// Transfer-Encoding is dropped, its Content-Length kept if valid.
type ResponseWriter interface {
	Header() Header
	Write([]byte) (int, error)
	WriteHeader(status int)
}

// response is the ResponseWriter of one request on a connection.
//
// An answer the handler writes in one go, up to the size of bw's buffer,
// goes out with a Content-Length: it is framed at the end. A longer one, or
// one flushed before the handler returns, goes out chunked (HTTP/1.1) or
// delimited by closing the connection (HTTP/1.0), unless the handler set
// Content-Length itself.
type response struct {
	c      *conn
	req    *Request
	header Header // the handler's, until WriteHeader
	// sent is a copy of header made by WriteHeader: the fields that go
	// out, whatever the handler changes afterwards (as with net/http).
	sent   Header
	status int  // 0 until WriteHeader
	wrote  bool // status line and headers written to bw
	// body buffers what the handler wrote before the head is sent, up to
	// bufferedBody bytes.
	body []byte
	// contentLength is the Content-Length the handler set, or -1.
	contentLength int64
	written       int64 // body bytes written, after the head
	chunked       bool
	closeAfter    bool // the connection closes after this answer
	head          bool // a HEAD request: no body goes out
	err           error
	// continueSent is set once "100 Continue" went out.
	continueSent bool
	expectCont   bool
	finished     bool
}

// bufferedBody is the largest answer framed by Content-Length without the
// handler setting it.
const bufferedBody = 4 << 10

func (w *response) Header() Header { return w.header }

func (w *response) WriteHeader(status int) {
	if w.status != 0 {
		return // net/http logs "superfluous WriteHeader"; the first one stands
	}
	if status < 100 || status > 999 {
		panic(fmt.Sprintf("minihttp: invalid WriteHeader code %d", status))
	}
	if status < 200 {
		// 1xx informational answers are not supported by this server (the
		// demo sends none); ignoring one keeps the real answer possible.
		return
	}
	w.status = status
	w.sent = make(Header, len(w.header))
	for k, vs := range w.header {
		w.sent[k] = slices.Clone(vs)
	}
	// The server frames the answer: by the handler's Content-Length if it
	// is valid, never by a Transfer-Encoding of the handler's.
	w.sent.Del("Transfer-Encoding")
	if cl := w.sent.Values("Content-Length"); len(cl) > 0 {
		if n, err := parseContentLength(cl); err == nil {
			w.contentLength = n
			w.sent.Set("Content-Length", strconv.FormatInt(n, 10))
		} else {
			w.sent.Del("Content-Length")
		}
	}
}

func (w *response) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.status == 0 {
		w.WriteHeader(StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, errors.New("minihttp: the status of this answer allows no body")
	}
	if w.contentLength >= 0 && w.written+int64(len(w.body))+int64(len(p)) > w.contentLength {
		return 0, errors.New("minihttp: wrote more than the declared Content-Length")
	}
	if !w.wrote {
		if len(w.body)+len(p) <= bufferedBody {
			w.body = append(w.body, p...)
			return len(p), nil
		}
		if err := w.writeHead(false); err != nil {
			return 0, err
		}
	}
	return w.writeBody(p)
}

// writeBody writes p after the head, framed as decided by writeHead.
func (w *response) writeBody(p []byte) (int, error) {
	if w.head || len(p) == 0 {
		w.written += int64(len(p))
		return len(p), nil
	}
	bw := w.c.bw
	if w.chunked {
		fmt.Fprintf(bw, "%x\r\n", len(p))
	}
	n, err := bw.Write(p)
	if err == nil && w.chunked {
		_, err = bw.WriteString("\r\n")
	}
	w.written += int64(n)
	if err != nil {
		w.fail(err)
	}
	return n, err
}

func (w *response) fail(err error) {
	if w.err == nil {
		w.err = err
	}
	w.closeAfter = true
}

// writeHead writes the status line and headers, with what was buffered of
// the body. final is set when the handler has returned, so that the whole
// body is known.
func (w *response) writeHead(final bool) error {
	if w.wrote {
		return w.err
	}
	w.wrote = true
	if w.status == 0 {
		w.WriteHeader(StatusOK)
	}
	h := w.sent
	if !bodyAllowed(w.status) {
		h.Del("Content-Length")
		h.Del("Transfer-Encoding")
		w.body = nil
	} else {
		switch {
		case w.contentLength >= 0:
		case final:
			w.contentLength = int64(len(w.body))
			h.Set("Content-Length", strconv.Itoa(len(w.body)))
		case w.req.ProtoMinor == 1:
			w.chunked = true
			h.Set("Transfer-Encoding", "chunked")
		default:
			w.closeAfter = true // HTTP/1.0: the end of the body is the end of the connection
		}
		if _, ok := h["Content-Type"]; !ok && (len(w.body) > 0 || !final) {
			h.Set("Content-Type", "text/plain; charset=utf-8")
		}
	}
	if w.closeAfter || w.c.srv.shuttingDown() {
		w.closeAfter = true
		h.Set("Connection", "close")
	} else if w.req.ProtoMinor == 0 {
		h.Set("Connection", "keep-alive")
	}
	h.Set("Date", time.Now().UTC().Format(TimeFormat))

	bw := w.c.bw
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(w.status))
	bw.WriteByte(' ')
	bw.WriteString(StatusText(w.status))
	bw.WriteString("\r\n")
	writeHeader(bw, h)
	bw.WriteString("\r\n")
	body := w.body
	w.body = nil
	if _, err := w.writeBody(body); err != nil {
		return err
	}
	return nil
}

// TimeFormat is the format of the Date header (RFC 9110 §5.6.7).
const TimeFormat = "Mon, 02 Jan 2006 15:04:05 GMT"

// writeHeader writes h's fields, dropping any whose name is not a token or
// whose value has a control byte but tab: a CR or LF would end the header
// early, and any other makes clients refuse the answer. A handler may well
// put what a client sent into a field (a path's "%01" unescaped).
func writeHeader(bw *bufio.Writer, h Header) {
	// In sorted order, as net/http writes them: the same answer is the
	// same bytes, whatever the map's order.
	for _, k := range slices.Sorted(maps.Keys(h)) {
		if !isToken(k) {
			continue
		}
		for _, v := range h[k] {
			if !validFieldValue(v) {
				continue
			}
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
}

// flush sends the head and everything written so far.
func (w *response) flush() error {
	if w.status == 0 {
		w.WriteHeader(StatusOK)
	}
	if err := w.writeHead(false); err != nil {
		return err
	}
	if err := w.c.bw.Flush(); err != nil {
		w.fail(err)
		return err
	}
	return nil
}

// finish ends the answer after the handler returned: the head if not yet
// sent, the last chunk, and a check that a declared Content-Length was met.
func (w *response) finish() error {
	w.finished = true
	if w.err != nil {
		// A write failed, or the handler aborted or panicked after the
		// head went out: what was written goes, and then the connection
		// closes, without the last chunk that would make the answer look
		// whole. An aborted answer whose head was not written sends
		// nothing.
		w.c.bw.Flush()
		return w.err
	}
	if err := w.writeHead(true); err != nil {
		return err
	}
	if w.chunked && !w.head {
		if _, err := w.c.bw.WriteString("0\r\n\r\n"); err != nil {
			w.fail(err)
		}
	}
	if bodyAllowed(w.status) && !w.head && w.contentLength >= 0 && w.written != w.contentLength {
		// The client expects more bytes than were written: only closing
		// the connection tells it that the answer is cut short.
		w.closeAfter = true
	}
	if err := w.c.bw.Flush(); err != nil {
		w.fail(err)
	}
	return w.err
}

// expectContinue is the body of a request that sent "Expect:
// 100-continue": the first read tells the client to go on.
type expectContinue struct {
	w *response
	io.ReadCloser
}

func (e *expectContinue) Read(p []byte) (int, error) {
	w := e.w
	if !w.continueSent && !w.wrote && !w.finished {
		w.continueSent = true
		w.c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		if err := w.c.bw.Flush(); err != nil {
			w.fail(err)
			return 0, err
		}
	}
	return e.ReadCloser.Read(p)
}
