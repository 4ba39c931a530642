package chitchat

// Stream exchanges (docs/design/scale.md §4): bulk state over the
// transport's streams (TCP for UDP), framed as
//
//	u32 big-endian length ‖ message
//
// where a message is a datagram-format message, sealed like a datagram when
// a keyring is set. An exchange is Syn → SynAck → Ack with whole explicit
// digests, under one deadline (Config.StreamTimeout). The engine lock is
// held only while a message is handled, never during I/O; at most
// maxStreamsOut exchanges we start and maxStreamsIn we answer run at once;
// up to maxStreamsQueued more incoming connections wait for a turn (a seed
// that many nodes join at once answers them one after the other, within
// milliseconds, instead of sending them back to their next stream
// interval), and beyond that they are closed at once.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"
)

const (
	maxStreamsOut    = 2
	maxStreamsIn     = 4
	maxStreamsQueued = 60
)

// streamStats counts stream exchanges.
type streamStats struct {
	out, in, failed, bytes atomic.Uint64
}

// StreamStats counts stream exchanges (Stats.Streams).
type StreamStats struct {
	Started  uint64 // exchanges this node started (Round.Streams, Join)
	Answered uint64 // exchanges this node answered
	Failed   uint64 // exchanges that failed (connection, timeout, refused or malformed frame)
	Bytes    uint64 // frame bytes sent and received
}

// errStreamFrame reports a frame that is too large or not the expected
// message.
var errStreamFrame = errors.New("chitchat: bad stream frame")

// maxFrame is the largest frame accepted: a message of the stream budget,
// sealed.
func (s *Server) maxFrame() int { return s.cfg.MaxStreamMessageSize }

func (s *Server) writeFrame(c net.Conn, msg []byte, rcpt netip.AddrPort) error {
	if s.sealer != nil && !s.cfg.SendPlaintext {
		msg = s.sealer.seal(nil, msg, rcpt)
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(msg)))
	bufs := net.Buffers{hdr[:], msg}
	n, err := bufs.WriteTo(c)
	s.streamStats.bytes.Add(uint64(n))
	return err
}

// readFrame reads one frame and returns its message, opened, with how it
// arrived (stream, authenticated sender when sealed).
func (s *Server) readFrame(c net.Conn, remote netip.AddrPort) ([]byte, Inbound, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, Inbound{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(s.maxFrame()) {
		return nil, Inbound{}, fmt.Errorf("%w: %d bytes, at most %d", errStreamFrame, n, s.maxFrame())
	}
	// Grow with what arrives rather than trust the length: a peer must
	// send the bytes to make us hold them.
	b, err := io.ReadAll(io.LimitReader(c, int64(n)))
	if err != nil {
		return nil, Inbound{}, err
	}
	if len(b) != int(n) {
		return nil, Inbound{}, fmt.Errorf("%w: %d of %d bytes", io.ErrUnexpectedEOF, len(b), n)
	}
	s.streamStats.bytes.Add(uint64(4 + n))
	in := Inbound{From: remote, Stream: true, Size: len(b)}
	if s.sealer != nil {
		if b, in = s.unseal(b, in, make([]byte, 0, len(b))); b == nil {
			return nil, Inbound{}, fmt.Errorf("%w: refused by the keyring", errStreamFrame)
		}
	}
	return b, in, nil
}

// decodeFrame decodes a stream message of the expected type.
func (s *Server) decodeFrame(b []byte, want MessageType) (Message, error) {
	m, err := decodeMessage(b, max(maxDeltaStream, s.cfg.MaxStreamMessageSize))
	if err != nil {
		return nil, err
	}
	if m.Type() != want {
		return nil, fmt.Errorf("%w: %v, want %v", errStreamFrame, m.Type(), want)
	}
	return m, nil
}

// goStream starts an exchange with addr in the background, unless
// maxStreamsOut are running.
func (s *Server) goStream(ctx context.Context, addr netip.AddrPort) {
	select {
	case s.streamsOut <- struct{}{}:
	default:
		return
	}
	s.streamWG.Go(func() {
		defer func() { <-s.streamsOut }()
		if err := s.exchange(ctx, addr); err != nil {
			s.log.Debug("stream exchange failed", "peer", addr, "err", err)
		}
	})
}

// exchange runs one stream exchange with the node listening at addr.
func (s *Server) exchange(ctx context.Context, addr netip.AddrPort) (err error) {
	s.streamStats.out.Add(1)
	defer func() {
		if err != nil {
			s.streamStats.failed.Add(1)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.StreamTimeout)
	defer cancel()
	c, err := s.streams.Dial(ctx, s.conn.LocalAddr(), addr)
	if err != nil {
		return err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()

	var syn []byte
	var rcpt netip.AddrPort
	s.withEngine(func(e *Engine) {
		syn = AppendMessage(nil, e.CreateStreamSyn(time.Now()))
		rcpt = e.recipient(addr)
	})
	if err := s.writeFrame(c, syn, rcpt); err != nil {
		return err
	}
	b, in, err := s.readFrame(c, addr)
	if err != nil {
		return err
	}
	m, err := s.decodeFrame(b, TypeSynAck)
	if err != nil {
		return err
	}
	synAck := m.(*SynAck)
	if !in.Authentic && synAck.Sender.Addr.IsValid() && synAck.Sender.Addr.Addr() == addr.Addr() {
		in.From = synAck.Sender.Addr // plaintext: the peer we dialled
	}
	var o Output
	s.withEngine(func(e *Engine) { o = e.Step(time.Now(), in, synAck) })
	s.sendPushes(o.Pushes)
	ack, welcome := o.Reply, o.Welcome
	// The welcome follows the SynAck: the answerer's live nodes, evidence
	// of life from the node we dialled (Output.Welcome).
	b, win, err := s.readFrame(c, in.From)
	if err != nil {
		return err
	}
	if m, err = s.decodeFrame(b, TypePush); err != nil {
		return err
	}
	var gen uint64
	var live []*NodeState
	s.withEngine(func(e *Engine) {
		o = e.Step(time.Now(), win, m)
		gen, live = e.LiveNodesWatch()
	})
	s.sendPushes(o.Pushes)
	s.live.publishGen(live, gen)
	if ack == nil {
		return nil
	}
	if err := s.writeFrame(c, AppendMessage(nil, ack), in.From); err != nil {
		return err
	}
	return s.writeFrame(c, AppendMessage(nil, welcome), in.From)
}

// acceptStreams answers stream exchanges until the listener closes.
func (s *Server) acceptStreams(ctx context.Context) error {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			s.log.Warn("stream accept failed", "err", err)
			continue
		}
		select {
		case s.streamsQueued <- struct{}{}:
		default:
			c.Close() // too busy: the peer's own schedule retries later
			continue
		}
		s.streamWG.Go(func() {
			// Wait for a turn within the exchange's own deadline.
			wait := time.NewTimer(s.cfg.StreamTimeout)
			defer wait.Stop()
			select {
			case s.streamsIn <- struct{}{}:
				<-s.streamsQueued
			case <-wait.C:
				<-s.streamsQueued
				c.Close()
				return
			case <-ctx.Done():
				<-s.streamsQueued
				c.Close()
				return
			}
			defer func() { <-s.streamsIn }()
			if err := s.answer(c); err != nil {
				s.streamStats.failed.Add(1)
				s.log.Debug("stream exchange failed", "peer", c.RemoteAddr(), "err", err)
			}
		})
	}
}

// answer handles one incoming exchange: Syn in, SynAck and welcome out,
// Ack and welcome in.
func (s *Server) answer(c net.Conn) error {
	defer c.Close()
	s.streamStats.in.Add(1)
	c.SetDeadline(time.Now().Add(s.cfg.StreamTimeout))
	remote := remoteAddr(c)
	b, in, err := s.readFrame(c, remote)
	if err != nil {
		return err
	}
	m, err := s.decodeFrame(b, TypeSyn)
	if err != nil {
		return err
	}
	syn := m.(*Syn)
	if !in.Authentic && syn.Sender.Addr.IsValid() && syn.Sender.Addr.Addr() == remote.Addr() {
		// Plaintext: the dialler's port is ephemeral; its node is the
		// sender it names at that IP.
		in.From = syn.Sender.Addr
	}
	var o Output
	s.withEngine(func(e *Engine) { o = e.Step(time.Now(), in, syn) })
	s.sendPushes(o.Pushes)
	if o.Reply == nil {
		return nil
	}
	if err := s.writeFrame(c, AppendMessage(nil, o.Reply), in.From); err != nil {
		return err
	}
	if o.Reply.Type() != TypeSynAck {
		return nil // BadCluster
	}
	if err := s.writeFrame(c, AppendMessage(nil, o.Welcome), in.From); err != nil {
		return err
	}
	b, in, err = s.readFrame(c, in.From)
	if err != nil {
		return err
	}
	if m, err = s.decodeFrame(b, TypeAck); err != nil {
		return err
	}
	var gen uint64
	var live []*NodeState
	s.withEngine(func(e *Engine) { o = e.Step(time.Now(), in, m) })
	s.sendPushes(o.Pushes)
	// The initiator's welcome follows its Ack.
	if b, in, err = s.readFrame(c, in.From); err != nil {
		return err
	}
	if m, err = s.decodeFrame(b, TypePush); err != nil {
		return err
	}
	s.withEngine(func(e *Engine) {
		o = e.Step(time.Now(), in, m)
		gen, live = e.LiveNodesWatch()
	})
	s.sendPushes(o.Pushes)
	s.live.publishGen(live, gen)
	return nil
}

func remoteAddr(c net.Conn) netip.AddrPort {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return normalizeAddr(a.AddrPort())
	}
	return netip.AddrPort{}
}

// Join runs a stream exchange with each of addrs ("ip:port" or
// "host:port", resolved now) at once and returns how many answered: the
// memberlist way to join a cluster. It needs a transport with streams
// (transport.UDP, the in-memory network).
func (s *Server) Join(ctx context.Context, addrs []string) (int, error) {
	if s.stopped() {
		return 0, ErrClosed
	}
	if s.streams == nil {
		return 0, errors.New("chitchat: Join needs a transport with streams (and Config.DisableStreams off)")
	}
	var errs []error
	for _, a := range addrs {
		if _, _, err := splitSeed(a); err != nil {
			errs = append(errs, fmt.Errorf("%q is not host:port: %w", a, err))
		}
	}
	targets := newSeedResolver(addrs, s.cfg.Resolver).resolve(ctx, func(msg string, args ...any) {
		errs = append(errs, fmt.Errorf("%s %v", msg, args))
	})
	type result struct{ err error }
	results := make(chan result, len(targets))
	for _, a := range targets {
		go func() { results <- result{s.exchange(ctx, a)} }()
	}
	n := 0
	for range targets {
		if r := <-results; r.err != nil {
			errs = append(errs, r.err)
		} else {
			n++
		}
	}
	if n == 0 {
		if len(targets) == 0 {
			errs = append(errs, fmt.Errorf("no address in %s", strings.Join(addrs, ", ")))
		}
		return 0, fmt.Errorf("chitchat: join: nobody answered: %w", errors.Join(errs...))
	}
	return n, nil
}
