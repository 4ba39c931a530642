package chitchat

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// leaveAcks is how many peers must have learned of our departure before
// Leave returns (fewer if fewer are live).
const leaveAcks = 3

// leaveState tracks a Leave in progress. Guarded by Server.mu.
type leaveState struct {
	version uint64 // our max version once LeftKey was set
	need    int
	acks    map[netip.AddrPort]struct{}
	done    chan struct{}
}

// Leave announces that this node is leaving the cluster and waits until at
// least three live peers (all of them if fewer; one known peer if none is
// live yet) have learned it, as their digests show, or until ctx ends. Peers then report the node as left, not
// dead, without waiting for the failure detector, and garbage collect it
// after the dead-node grace period. The node keeps running: call Shutdown
// afterwards. Leave sends a Syn to every live peer at once (at most eight)
// rather than waiting for the next round.
func (s *Server) Leave(ctx context.Context) error {
	if s.stopped() {
		return ErrClosed
	}
	now := time.Now()
	var (
		st     *leaveState
		syn    *Syn
		peers  []netip.AddrPort
		err    error
		pushes []Envelope
	)
	s.withEngine(func(e *Engine) {
		if s.leave != nil {
			st = s.leave
			return
		}
		if err = e.Set(LeftKey, "true"); err != nil {
			return
		}
		for _, id := range e.LiveNodes()[1:] {
			peers = append(peers, id.Addr)
		}
		need := min(leaveAcks, len(peers))
		if len(peers) == 0 {
			// Nobody live yet (peers need three heartbeats to be): tell the
			// peers we know, and wait for one of them to have heard.
			for _, ns := range e.states {
				if *ns.id != e.self && !ns.left {
					peers = append(peers, ns.id.Addr)
				}
			}
			need = min(1, len(peers))
		}
		st = &leaveState{
			version: e.selfState().maxVersion,
			need:    need,
			acks:    make(map[netip.AddrPort]struct{}),
			done:    make(chan struct{}),
		}
		if st.need == 0 {
			close(st.done)
		}
		s.leave = st
		syn = e.CreateSyn(now)
		pushes = e.Flush(now) // the leave, pushed down the ring
	})
	if err != nil {
		return err
	}
	s.sendPushes(pushes)
	if syn != nil {
		b := EncodeMessage(syn)
		for _, p := range peers[:min(len(peers), 8)] {
			s.send(p, b)
		}
		s.log.Info("leaving the cluster", "live_peers", len(peers), "acks_needed", st.need)
	}
	select {
	case <-st.done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		got := len(st.acks)
		s.mu.Unlock()
		return fmt.Errorf("chitchat: leave acknowledged by %d of %d peers: %w", got, st.need, ctx.Err())
	case <-s.done:
		return ErrClosed
	}
}

// noteLeaveAckLocked counts from as informed of our leave if the digest it
// sent showed our state at or past the leave (seen is Output's
// SelfVersionSeen).
func (s *Server) noteLeaveAckLocked(from netip.AddrPort, seen uint64) {
	st := s.leave
	if st == nil || len(st.acks) >= st.need {
		return
	}
	if seen >= st.version {
		st.acks[from] = struct{}{}
		if len(st.acks) == st.need {
			close(st.done)
		}
	}
}
