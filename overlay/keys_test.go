package overlay

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// RFC 7748 §6.1: Alice's private key and the public key X25519 derives.
const (
	alicePrivHex = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
	alicePubHex  = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
	alicePubStd  = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
	alicePubURL  = "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"
)

func mustHexKey(tb testing.TB, s string) Key {
	tb.Helper()
	k, err := ParseHexKey(s)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// testPrivateKey returns a fixed, clamped private key for seed n.
func testPrivateKey(n byte) PrivateKey {
	var k PrivateKey
	for i := range k {
		k[i] = n + byte(i)
	}
	return k.clamp()
}

func TestPublicKeyRFC7748(t *testing.T) {
	priv := PrivateKey(mustHexKey(t, alicePrivHex))
	pub := priv.PublicKey()
	if got := pub.Hex(); got != alicePubHex {
		t.Errorf("PublicKey().Hex() = %s, want %s", got, alicePubHex)
	}
	if got := pub.String(); got != alicePubStd {
		t.Errorf("String() = %s, want %s", got, alicePubStd)
	}
	if got := pub.URLString(); got != alicePubURL {
		t.Errorf("URLString() = %s, want %s", got, alicePubURL)
	}
}

func TestParseKey(t *testing.T) {
	want := mustHexKey(t, alicePubHex)
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{name: "standard padded", in: alicePubStd},
		{name: "standard unpadded", in: strings.TrimSuffix(alicePubStd, "=")},
		{name: "url unpadded (seed)", in: alicePubURL},
		{name: "url padded", in: alicePubURL + "="},
		{name: "key file with newline", in: alicePubStd + "\n"},
		{name: "surrounding spaces", in: "  " + alicePubURL + " \t"},
		{name: "empty", in: "", wantErr: true},
		{name: "seed test placeholder", in: "test-key", wantErr: true},
		{name: "31 bytes", in: "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTg==", wantErr: true},
		{name: "33 bytes", in: "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmoA", wantErr: true},
		{name: "hex is not base64 of 32 bytes", in: alicePubHex, wantErr: true},
		{name: "mixed alphabets", in: "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066Spjqq-Tmo", wantErr: true},
		{name: "non-canonical last character", in: "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmp", wantErr: true},
		{name: "too much padding", in: alicePubStd + "=", wantErr: true},
		{name: "bad character", in: "hSDwCYkwp1R0i33ctD73Wg2*Og0mOBr066SpjqqbTmo", wantErr: true},
		{name: "inner space", in: "hSDwCYkwp1R0i33ctD73Wg2 Og0mOBr066SpjqqbTmo", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseKey(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseKey(%q) = %v, want an error", tt.in, got)
				}
				if !errors.Is(err, ErrBadKey) {
					t.Errorf("error %v does not wrap ErrBadKey", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKey(%q): %v", tt.in, err)
			}
			if got != want {
				t.Errorf("ParseKey(%q) = %s, want %s", tt.in, got, want)
			}
		})
	}
}

func TestParseKeyNeverEchoesInput(t *testing.T) {
	secret := strings.TrimSuffix(alicePubStd, "=") + "AAAA"
	_, err := ParseKey(secret)
	if err == nil || strings.Contains(err.Error(), secret[:8]) {
		t.Errorf("ParseKey error %q echoes the input", err)
	}
}

func TestParseHexKey(t *testing.T) {
	if _, err := ParseHexKey(alicePubHex[:62]); !errors.Is(err, ErrBadKey) {
		t.Errorf("short hex: err = %v, want ErrBadKey", err)
	}
	if _, err := ParseHexKey(strings.Repeat("zz", 32)); !errors.Is(err, ErrBadKey) {
		t.Errorf("non-hex: err = %v, want ErrBadKey", err)
	}
	k := mustHexKey(t, alicePubHex)
	if k.Hex() != alicePubHex {
		t.Errorf("round trip: %s", k.Hex())
	}
}

func TestGeneratePrivateKey(t *testing.T) {
	a, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	if a == b || a.IsZero() {
		t.Fatalf("two generated keys: %v, %v", a.Hex(), b.Hex())
	}
	if a[0]&7 != 0 || a[31]&128 != 0 || a[31]&64 == 0 {
		t.Errorf("key %s is not clamped", a.Hex())
	}
	if a.PublicKey() == b.PublicKey() {
		t.Error("distinct private keys gave the same public key")
	}
	// A deterministic reader gives the clamped bytes.
	k, err := newPrivateKey(bytes.NewReader(bytes.Repeat([]byte{0xff}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	if k[0] != 0xf8 || k[31] != 0x7f {
		t.Errorf("clamp(ff…ff) = %s", k.Hex())
	}
	if _, err := newPrivateKey(bytes.NewReader(nil)); err == nil {
		t.Error("short entropy: want an error")
	}
}

func TestKeyText(t *testing.T) {
	k := mustHexKey(t, alicePubHex)
	b, err := k.MarshalText()
	if err != nil || string(b) != alicePubStd {
		t.Fatalf("MarshalText = %s, %v", b, err)
	}
	var got Key
	if err := got.UnmarshalText([]byte(alicePubURL)); err != nil || got != k {
		t.Fatalf("UnmarshalText = %v, %v", got, err)
	}
	if err := got.UnmarshalText([]byte("nope")); err == nil {
		t.Error("UnmarshalText(nope): want an error")
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wg.key")

	created, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", st.Mode().Perm())
	}
	again, err := LoadOrCreateKeyFile(path)
	if err != nil || again != created {
		t.Errorf("second LoadOrCreateKeyFile = %v, %v; want the stored key", again.Hex(), err)
	}
	read, err := ReadKeyFile(path)
	if err != nil || read != created {
		t.Errorf("ReadKeyFile = %v, %v", read.Hex(), err)
	}

	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKeyFile(bad); !errors.Is(err, ErrBadKey) {
		t.Errorf("bad key file: err = %v, want ErrBadKey", err)
	}
	if _, err := LoadOrCreateKeyFile(filepath.Join(dir, "missing", "wg.key")); err == nil {
		t.Error("key file in a missing directory: want an error")
	}
}

// TestKeyFileCreationIsAtomic: a write that fails midway (a crash, a full
// disk) leaves no key file behind, so the next start creates one, rather
// than an empty or partial file that stops every later start.
func TestKeyFileCreationIsAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wg.key")
	orig := writeKeyFileContent
	t.Cleanup(func() { writeKeyFileContent = orig })
	writeKeyFileContent = func(f *os.File, b []byte) error {
		f.Write(b[:10])
		return errors.New("disk full")
	}
	if _, err := LoadOrCreateKeyFile(path); err == nil {
		t.Fatal("LoadOrCreateKeyFile with a failing write: want an error")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after a failed write, %s: %v; want no file", path, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("temporary files left in %s: %v", dir, entries)
	}
	writeKeyFileContent = orig
	k, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatalf("next start: %v", err)
	}
	if read, err := ReadKeyFile(path); err != nil || read != k {
		t.Errorf("ReadKeyFile = %v, want the created key", err)
	}
}

// TestKeyFileCreationRace: if another process creates the key file while
// this one writes its own, the other's key stays and is returned.
func TestKeyFileCreationRace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "wg.key")
	theirs := testPrivateKey(9)
	orig := writeKeyFileContent
	t.Cleanup(func() { writeKeyFileContent = orig })
	writeKeyFileContent = func(f *os.File, b []byte) error {
		if err := os.WriteFile(path, []byte(theirs.Base64()+"\n"), 0o600); err != nil {
			return err
		}
		return orig(f, b)
	}
	got, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != theirs {
		t.Error("LoadOrCreateKeyFile replaced a key file created meanwhile")
	}
	if read, _ := ReadKeyFile(path); read != theirs {
		t.Error("the file no longer holds the other process's key")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("files in %s: %v, want the key file only", dir, entries)
	}
}

// TestKeyFilePermissions: a key file its group or others can access is
// used, with a warning (as wg warns); a 0600 or 0400 file is not.
func TestKeyFilePermissions(t *testing.T) {
	for _, tt := range []struct {
		mode     os.FileMode
		wantWarn bool
	}{{0o600, false}, {0o400, false}, {0o640, true}, {0o604, true}, {0o644, true}} {
		t.Run(tt.mode.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "wg.key")
			if err := os.WriteFile(path, []byte(testPrivateKey(3).Base64()+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			var logs lockedBuffer
			k, err := loadPrivateKey(MeshConfig{PrivateKeyFile: path}, slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil || k != testPrivateKey(3) {
				t.Fatalf("loadPrivateKey = %v", err)
			}
			warned := logs.count("level=WARN") == 1 && logs.count("chmod 600") == 1
			if warned != tt.wantWarn {
				t.Errorf("warned %v, want %v: %s", warned, tt.wantWarn, logs.b.String())
			}
		})
	}
}
