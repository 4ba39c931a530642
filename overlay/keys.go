package overlay

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// KeyLen is the length of a WireGuard (Curve25519) key in bytes.
const KeyLen = 32

// Key is a WireGuard key: a Curve25519 private key or public key.
//
// Three spellings are in use and Key speaks all of them:
//   - String: standard base64 with padding, as `wg genkey`, `wg pubkey` and
//     wg-quick files write it;
//   - URLString: base64url without padding, the seed's (zlayer-overlay)
//     spelling in PeerInfo.wg_pubkey;
//   - Hex: lowercase hex, as the UAPI protocol (IpcSet, IpcGet) wants it.
//
// ParseKey accepts either base64 alphabet, with or without padding.
type Key [KeyLen]byte

// ErrBadKey is wrapped by the errors of ParseKey and ParseHexKey.
var ErrBadKey = errors.New("overlay: not a 32-byte WireGuard key")

// GeneratePrivateKey returns a new private key from crypto/rand, clamped as
// `wg genkey` does (RFC 7748 §5).
func GeneratePrivateKey() (Key, error) {
	return newPrivateKey(rand.Reader)
}

func newPrivateKey(r io.Reader) (Key, error) {
	var k Key
	if _, err := io.ReadFull(r, k[:]); err != nil {
		return Key{}, fmt.Errorf("overlay: generate private key: %w", err)
	}
	return k.clamp(), nil
}

// clamp applies the Curve25519 scalar clamping.
func (k Key) clamp() Key {
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k
}

// PublicKey returns the public key of the private key k (X25519 of k and the
// base point). k need not be clamped: X25519 clamps internally, as wg does.
func (k Key) PublicKey() Key {
	priv, err := ecdh.X25519().NewPrivateKey(k[:])
	if err != nil {
		// NewPrivateKey fails only on a length mismatch, impossible for a
		// [32]byte.
		panic("overlay: invariant broken: X25519 rejected a 32-byte key: " + err.Error())
	}
	var pub Key
	copy(pub[:], priv.PublicKey().Bytes())
	return pub
}

// IsZero reports whether k is all zeros (no key).
func (k Key) IsZero() bool { return k == Key{} }

// String returns k in standard base64 with padding, wg's spelling.
func (k Key) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// URLString returns k in base64url without padding, the seed's spelling of
// PeerInfo.wg_pubkey.
func (k Key) URLString() string { return base64.RawURLEncoding.EncodeToString(k[:]) }

// Hex returns k in lowercase hex, the UAPI spelling.
func (k Key) Hex() string { return hex.EncodeToString(k[:]) }

// ParseKey parses a base64 key in the standard or the URL alphabet, padded
// or not. Surrounding white space (a newline at the end of a key file) is
// ignored. Anything that does not decode to exactly 32 bytes is rejected.
// Errors never echo the input: it may be a private key.
func ParseKey(s string) (Key, error) {
	t := strings.TrimSpace(s)
	// A 32-byte key is 43 base64 characters plus one '=' of padding.
	t = strings.TrimSuffix(t, "=")
	if len(t) != 43 {
		return Key{}, fmt.Errorf("%w: %d base64 characters, want 43 (44 with padding)", ErrBadKey, len(t))
	}
	enc := base64.RawStdEncoding
	if strings.ContainsAny(t, "-_") {
		enc = base64.RawURLEncoding
	}
	// Strict: the unused low bits of the last character must be zero, so
	// that every key has exactly one spelling per alphabet.
	b, err := enc.Strict().DecodeString(t)
	if err != nil || len(b) != KeyLen {
		return Key{}, fmt.Errorf("%w: not base64 (standard or URL alphabet)", ErrBadKey)
	}
	return Key(b), nil
}

// ParseHexKey parses a key in hex, as the UAPI protocol writes it.
func ParseHexKey(s string) (Key, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != KeyLen {
		return Key{}, fmt.Errorf("%w: not 64 hex digits", ErrBadKey)
	}
	return Key(b), nil
}

// MarshalText encodes k in standard base64 (wg's spelling).
func (k Key) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText accepts what ParseKey accepts.
func (k *Key) UnmarshalText(b []byte) error {
	v, err := ParseKey(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// ReadKeyFile reads a private key file as `wg genkey` writes it: one base64
// key and optional white space.
func ReadKeyFile(path string) (Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("overlay: read key file: %w", err)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return Key{}, fmt.Errorf("overlay: key file %s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreateKeyFile returns the private key stored at path. If the file
// does not exist it generates a key and writes it there (mode 0600, in
// `wg genkey` format), so that a restarted node keeps its identity.
func LoadOrCreateKeyFile(path string) (Key, error) {
	k, err := ReadKeyFile(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	if k, err = GeneratePrivateKey(); err != nil {
		return Key{}, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Key{}, fmt.Errorf("overlay: create key file: %w", err)
	}
	_, werr := f.WriteString(k.String() + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return Key{}, fmt.Errorf("overlay: write key file: %w", werr)
	}
	return k, nil
}
