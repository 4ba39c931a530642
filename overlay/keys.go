package overlay

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeyLen is the length of a WireGuard (Curve25519) key in bytes.
const KeyLen = 32

// Key is a WireGuard public key (a Curve25519 point); private keys are
// PrivateKey, which never prints.
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
func GeneratePrivateKey() (PrivateKey, error) {
	return newPrivateKey(rand.Reader)
}

func newPrivateKey(r io.Reader) (PrivateKey, error) {
	var k PrivateKey
	if _, err := io.ReadFull(r, k[:]); err != nil {
		return PrivateKey{}, fmt.Errorf("overlay: generate private key: %w", err)
	}
	return k.clamp(), nil
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

// ParsePrivateKey parses a private key as ParseKey parses a key.
func ParsePrivateKey(s string) (PrivateKey, error) {
	k, err := ParseKey(s)
	return PrivateKey(k), err
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
func ReadKeyFile(path string) (PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("overlay: read key file: %w", err)
	}
	k, err := ParsePrivateKey(string(b))
	if err != nil {
		return PrivateKey{}, fmt.Errorf("overlay: key file %s: %w", path, err)
	}
	return k, nil
}

// LoadOrCreateKeyFile returns the private key stored at path. If the file
// does not exist it generates a key and writes it there (mode 0600, in
// `wg genkey` format), so that a restarted node keeps its identity.
//
// The file appears whole or not at all: the key is written to a temporary
// file in the same directory, synced, then linked to path (a link, unlike
// a rename, never replaces a file another process created meanwhile; that
// process's key is returned then). A crash leaves at worst a stray
// temporary file, never an empty or partial key file that would stop the
// next start.
func LoadOrCreateKeyFile(path string) (PrivateKey, error) {
	k, err := ReadKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if k, err = GeneratePrivateKey(); err != nil {
		return PrivateKey{}, err
	}
	switch err := writeKeyFile(path, k); {
	case errors.Is(err, fs.ErrExist):
		return ReadKeyFile(path) // another process was first
	case err != nil:
		return PrivateKey{}, fmt.Errorf("overlay: create key file: %w", err)
	}
	return k, nil
}

// writeKeyFileContent writes a key file's bytes; tests replace it to fail
// midway, as a crash or a full disk would.
var writeKeyFileContent = func(f *os.File, b []byte) error {
	_, err := f.Write(b)
	return err
}

// writeKeyFile creates path holding k, atomically (see LoadOrCreateKeyFile).
// It fails with an error wrapping fs.ErrExist if path exists.
func writeKeyFile(path string, k PrivateKey) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // mode 0600
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			f.Close()
		}
		os.Remove(tmp) // after the link, path keeps the file
	}()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if err := writeKeyFileContent(f, []byte(k.Base64()+"\n")); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	err = f.Close()
	f = nil
	if err != nil {
		return err
	}
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		// No hard links on this file system: rename, which may replace a
		// file created since ReadKeyFile looked (a race of two starts).
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	// Make the new name durable too.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// KeyFileTooOpen reports whether the key file at path can be read or
// written by its group or by others (mode bits 077), as `wg` warns about
// a world-accessible one: such a file hands the node's identity to every
// user of the machine. It returns the file's permissions.
func KeyFileTooOpen(path string) (perm fs.FileMode, open bool, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return 0, false, err
	}
	return st.Mode().Perm(), st.Mode().Perm()&0o077 != 0, nil
}
