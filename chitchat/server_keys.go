package chitchat

// Cluster-wide key rotation, as `serf keys` does it: one node installs,
// switches to or removes a gossip key on every node. The operation travels
// in gossip, which only key holders can read: the origin writes it under
// its own keyOpKey, every node applies it to its Keyring and answers under
// keyAckPrefix+origin, and the origin waits for the answers of every live
// node. The keys are internal (hidden from users: the demo refuses to set
// them, its views hide them).
//
// A node that also accepts or sends plaintext (a migration in progress)
// refuses key operations: a sender without a key could forge them.
//
// Rotating without downtime: InstallKey(new) everywhere, UseKey(new)
// everywhere, RemoveKey(old) everywhere. UseKey before every node holds the
// key cuts the nodes that lack it off.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

const (
	keyOpKey     = "__chitchat.keyring.op"
	keyAckPrefix = "__chitchat.keyring.ack."
)

// keyOp is one key operation, as gossiped. The key travels sealed with
// the origin's primary key (XChaCha20-Poly1305, base64 of nonce ‖
// ciphertext): gossip is encrypted on the wire, but node states are shown
// by local APIs (the demo's /), which must not show key material.
type keyOp struct {
	Seq uint64 `json:"seq"`
	Op  string `json:"op"` // install, use or remove
	Key string `json:"key"`
}

// keyOpAAD binds a sealed key to its use.
var keyOpAAD = []byte("chitchat/keyring-op/v1")

// sealKey seals key with ring's primary key.
func sealKey(ring *Keyring, key Key) string {
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	rand.Read(nonce)
	return base64.StdEncoding.EncodeToString(ring.load().aeads[0].Seal(nonce, nonce, key[:], keyOpAAD))
}

// openKey opens a sealed key with any key of ring.
func openKey(ring *Keyring, s string) (Key, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) < chacha20poly1305.NonceSizeX {
		return Key{}, errors.New("chitchat: malformed sealed key")
	}
	for _, aead := range ring.load().aeads {
		if plain, err := aead.Open(nil, b[:chacha20poly1305.NonceSizeX], b[chacha20poly1305.NonceSizeX:], keyOpAAD); err == nil && len(plain) == KeySize {
			return Key(plain), nil
		}
	}
	return Key{}, errors.New("chitchat: the sealed key opens with no key of this keyring")
}

// KeyResponse is the outcome of a cluster-wide key operation.
type KeyResponse struct {
	Nodes  int               // live nodes asked, this one included
	Done   int               // nodes that applied the operation
	Errors map[string]string // node name → why it did not
}

// keyOps is the Server's side of key rotation.
type keyOps struct {
	mu      sync.Mutex
	seq     uint64            // our last operation
	applied map[string]uint64 // origin name → last operation applied
}

// InstallKey adds key to every live node's keyring (for decryption), and
// waits until each answered or ctx is done.
func (s *Server) InstallKey(ctx context.Context, key Key) (KeyResponse, error) {
	return s.keyOperation(ctx, "install", key)
}

// UseKey makes key the primary key (the one that seals) of every live node.
func (s *Server) UseKey(ctx context.Context, key Key) (KeyResponse, error) {
	return s.keyOperation(ctx, "use", key)
}

// RemoveKey removes key from every live node's keyring.
func (s *Server) RemoveKey(ctx context.Context, key Key) (KeyResponse, error) {
	return s.keyOperation(ctx, "remove", key)
}

func (s *Server) keyOperation(ctx context.Context, op string, key Key) (KeyResponse, error) {
	if s.stopped() {
		return KeyResponse{}, ErrClosed
	}
	if err := s.keyringPolicy(); err != nil {
		return KeyResponse{}, err
	}
	if err := applyKeyOp(s.cfg.Keyring, op, key); err != nil {
		return KeyResponse{}, err
	}
	s.keys.mu.Lock()
	s.keys.seq++
	seq := s.keys.seq
	s.keys.mu.Unlock()
	b, _ := json.Marshal(keyOp{Seq: seq, Op: op, Key: sealKey(s.cfg.Keyring, key)})
	if err := s.Set(keyOpKey, string(b)); err != nil {
		return KeyResponse{}, err
	}
	self := s.Self()
	ackKey := keyAckPrefix + self.Name
	var resp KeyResponse
	for range s.WatchLiveNodes(ctx) {
		resp = KeyResponse{Nodes: 1, Done: 1, Errors: map[string]string{}}
		for _, ns := range s.liveStates() {
			if ns.ID() == self {
				continue
			}
			resp.Nodes++
			v, _ := ns.Get(ackKey)
			ackSeq, msg, _ := strings.Cut(v, " ")
			if n, err := strconv.ParseUint(ackSeq, 10, 64); err != nil || n != seq {
				continue
			}
			if msg == "ok" {
				resp.Done++
			} else {
				resp.Errors[ns.ID().Name] = msg
			}
		}
		if resp.Done+len(resp.Errors) == resp.Nodes {
			if len(resp.Errors) > 0 {
				return resp, fmt.Errorf("chitchat: %s key: %d of %d nodes refused", op, len(resp.Errors), resp.Nodes)
			}
			return resp, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return resp, fmt.Errorf("chitchat: %s key: %d of %d nodes answered: %w", op, resp.Done+len(resp.Errors), resp.Nodes, err)
	}
	return resp, ErrClosed
}

// liveStates returns the live nodes' states, unfiltered by the extra
// liveness predicate that the watch value may have applied.
func (s *Server) liveStates() []*NodeState {
	var out []*NodeState
	s.withEngine(func(e *Engine) {
		for _, id := range e.LiveNodes() {
			out = append(out, e.node(id).Clone())
		}
	})
	return out
}

// keyringPolicy refuses key operations where they are unsafe.
func (s *Server) keyringPolicy() error {
	switch {
	case s.cfg.Keyring == nil:
		return errors.New("chitchat: no keyring: key operations need an encrypted cluster")
	case s.cfg.AcceptPlaintext || s.cfg.SendPlaintext:
		return errors.New("chitchat: this node accepts or sends plaintext: key operations are refused until the migration to encryption is done")
	}
	return nil
}

// applyKeyOp applies one operation to a keyring.
func applyKeyOp(ring *Keyring, op string, key Key) error {
	switch op {
	case "install":
		return ring.AddKey(key)
	case "use":
		return ring.UseKey(key)
	case "remove":
		return ring.RemoveKey(key)
	}
	return fmt.Errorf("chitchat: unknown key operation %q", op)
}

// onKeyOp applies an operation another node gossiped, once, and answers.
func (s *Server) onKeyOp(kc KeyChange) {
	if kc.Node == s.Self() {
		return
	}
	var op keyOp
	if err := json.Unmarshal([]byte(kc.Value), &op); err != nil {
		return // not an operation: nothing to answer
	}
	s.keys.mu.Lock()
	if s.keys.applied == nil {
		s.keys.applied = map[string]uint64{}
	}
	if op.Seq <= s.keys.applied[kc.Node.Name] {
		s.keys.mu.Unlock()
		return // seen (a reset replays keys)
	}
	s.keys.applied[kc.Node.Name] = op.Seq
	s.keys.mu.Unlock()
	answer := "ok"
	err := s.keyringPolicy()
	if err == nil {
		var key Key
		if key, err = openKey(s.cfg.Keyring, op.Key); err == nil {
			err = applyKeyOp(s.cfg.Keyring, op.Op, key)
		}
	}
	if err != nil {
		answer = "error: " + err.Error()
		s.log.Warn("key operation refused", "origin", kc.Node.Name, "op", op.Op, "err", err)
	} else {
		s.log.Info("key operation applied", "origin", kc.Node.Name, "op", op.Op)
	}
	if err := s.Set(keyAckPrefix+kc.Node.Name, strconv.FormatUint(op.Seq, 10)+" "+answer); err != nil && !errors.Is(err, ErrClosed) {
		s.log.Warn("cannot answer a key operation", "err", err)
	}
}
