package chitchat

import (
	"crypto/cipher"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the size of a gossip encryption key.
const KeySize = chacha20poly1305.KeySize

// Key is a 32-byte gossip encryption key.
type Key [KeySize]byte

// ParseKey decodes a key from standard or URL base64, padded or not.
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	var k Key
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(b) != KeySize {
			return k, fmt.Errorf("chitchat: gossip key is %d bytes, want %d", len(b), KeySize)
		}
		copy(k[:], b)
		return k, nil
	}
	return k, errors.New("chitchat: gossip key is not base64")
}

// String returns the key in standard base64.
func (k Key) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// Fingerprint names a key without revealing it: the first 4 bytes of its
// SHA-256, in hex. Logs and the demo's /v1/keyring use it.
func (k Key) Fingerprint() string {
	h := sha256.Sum256(k[:])
	return fmt.Sprintf("%x", h[:4])
}

// Keyring holds the keys that authenticate and encrypt gossip. The primary
// key seals every datagram sent; every key is tried to open a datagram
// received, so keys rotate without downtime:
//
//  1. AddKey(new) on every node (it is accepted everywhere);
//  2. UseKey(new) on every node (it is now the one sent);
//  3. RemoveKey(old) on every node.
//
// A Keyring is safe for concurrent use. Everyone holding a key of the ring
// is trusted: it can read all gossip and write any node's state.
type Keyring struct {
	mu   sync.Mutex // serializes writers
	keys atomic.Pointer[keySet]
}

// keySet is an immutable set of keys, primary first.
type keySet struct {
	keys  []Key
	aeads []cipher.AEAD
}

// NewKeyring returns a keyring whose primary key is primary.
func NewKeyring(primary Key, others ...Key) (*Keyring, error) {
	k := &Keyring{}
	if err := k.store(append([]Key{primary}, others...)); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *Keyring) store(keys []Key) error {
	set := &keySet{}
	for _, key := range keys {
		if slices.Contains(set.keys, key) {
			continue
		}
		if key == (Key{}) {
			return errors.New("chitchat: the all-zero gossip key is refused")
		}
		aead, err := chacha20poly1305.NewX(key[:])
		if err != nil {
			return err
		}
		set.keys = append(set.keys, key)
		set.aeads = append(set.aeads, aead)
	}
	k.keys.Store(set)
	return nil
}

func (k *Keyring) load() *keySet { return k.keys.Load() }

// Keys returns the keys, primary first.
func (k *Keyring) Keys() []Key { return slices.Clone(k.load().keys) }

// AddKey adds a key accepted for decryption. Adding a key twice is a no-op.
func (k *Keyring) AddKey(key Key) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.store(append(slices.Clone(k.load().keys), key))
}

// UseKey makes key, which must be in the ring, the primary key.
func (k *Keyring) UseKey(key Key) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	keys := k.load().keys
	i := slices.Index(keys, key)
	if i < 0 {
		return fmt.Errorf("chitchat: key %s is not in the keyring: add it first", key.Fingerprint())
	}
	return k.store(append([]Key{key}, slices.Delete(slices.Clone(keys), i, i+1)...))
}

// RemoveKey removes a key. The primary key cannot be removed.
func (k *Keyring) RemoveKey(key Key) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	keys := k.load().keys
	i := slices.Index(keys, key)
	switch {
	case i < 0:
		return nil
	case i == 0:
		return errors.New("chitchat: cannot remove the primary key: UseKey another one first")
	}
	return k.store(slices.Delete(slices.Clone(keys), i, i+1))
}
