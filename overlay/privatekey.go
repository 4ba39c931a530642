package overlay

import (
	"crypto/ecdh"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
)

// PrivateKey is a WireGuard private key (a Curve25519 scalar).
//
// It never prints: String, every fmt verb (%v, %+v, %#v, %s, %x, …),
// slog (LogValue) and text or JSON encoding (MarshalText) show
// "(redacted)", and so do the structs that hold one in an exported field
// (Config, MeshConfig) when they are printed. The ways out are explicit:
// Base64 (key files, wg-quick) and Hex (UAPI).
type PrivateKey [KeyLen]byte

// redacted is what a PrivateKey prints as.
const redacted = "(redacted)"

// PublicKey returns the public key of k (X25519 of k and the base point).
// k need not be clamped: X25519 clamps internally, as wg does.
func (k PrivateKey) PublicKey() Key {
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

// clamp applies the Curve25519 scalar clamping.
func (k PrivateKey) clamp() PrivateKey {
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
	return k
}

// IsZero reports whether k is all zeros (no key).
func (k PrivateKey) IsZero() bool { return k == PrivateKey{} }

// Base64 returns the key itself in standard base64 with padding, as
// `wg genkey` writes it.
func (k PrivateKey) Base64() string { return base64.StdEncoding.EncodeToString(k[:]) }

// Hex returns the key itself in lowercase hex, the UAPI spelling.
func (k PrivateKey) Hex() string { return hex.EncodeToString(k[:]) }

// String returns "(redacted)".
func (k PrivateKey) String() string { return redacted }

// GoString returns "(redacted)".
func (k PrivateKey) GoString() string { return redacted }

// Format prints "(redacted)" for every verb and flag.
func (k PrivateKey) Format(f fmt.State, _ rune) { f.Write([]byte(redacted)) }

// LogValue logs "(redacted)".
func (k PrivateKey) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns "(redacted)": a private key does not leave the
// process by accident, through JSON or a text log. Write key files with
// Base64.
func (k PrivateKey) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// UnmarshalText accepts what ParseKey accepts.
func (k *PrivateKey) UnmarshalText(b []byte) error {
	v, err := ParsePrivateKey(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}
