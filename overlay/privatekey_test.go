package overlay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
)

// TestPrivateKeyRedacted: a private key, and every type holding one,
// prints "(redacted)" in its place with every fmt verb, in slog (text and
// JSON) and in JSON; never the key in any spelling.
func TestPrivateKeyRedacted(t *testing.T) {
	k := testPrivateKey(7)
	secrets := []string{k.Base64(), k.Hex(), strings.ToUpper(k.Hex()), asKey(k).URLString(), fmt.Sprint(k[:])[1:20]}
	mesh := &Mesh{
		cfg:  MeshConfig{NodeID: 1, PrivateKey: k, OverlayIP: netip.MustParseAddr("100.64.0.1")},
		priv: k,
	}
	values := map[string]any{
		"PrivateKey":   k,
		"*PrivateKey":  &k,
		"Config":       Config{PrivateKey: k, ListenPort: 51820, Peers: []Peer{{PublicKey: testInfo(2).PublicKey}}},
		"MeshConfig":   MeshConfig{NodeID: 1, PrivateKey: k},
		"*Mesh":        mesh,
		"[]PrivateKey": []PrivateKey{k},
	}
	for name, v := range values {
		t.Run(name, func(t *testing.T) {
			var outs []string
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
				outs = append(outs, verb+" → "+fmt.Sprintf(verb, v))
			}
			var text, js bytes.Buffer
			slog.New(slog.NewTextHandler(&text, nil)).Info("msg", "v", v)
			slog.New(slog.NewJSONHandler(&js, nil)).Info("msg", "v", v)
			outs = append(outs, "slog text → "+text.String(), "slog json → "+js.String())
			if b, err := json.Marshal(v); err == nil {
				outs = append(outs, "json → "+string(b))
			}
			for _, out := range outs {
				for _, s := range secrets {
					if strings.Contains(out, s) {
						t.Errorf("the private key shows (%q) in %s", s, out)
					}
				}
			}
			if name != "*Mesh" && !strings.Contains(outs[0], redacted) {
				t.Errorf("%%v: %s, want %q in place of the key", outs[0], redacted)
			}
		})
	}
}

// asKey returns the key bytes as a Key, to spell them the
// way public keys are spelled.
func asKey(k PrivateKey) Key { return Key(k) }

func TestPrivateKeyText(t *testing.T) {
	k := testPrivateKey(7)
	var got PrivateKey
	if err := got.UnmarshalText([]byte(k.Base64())); err != nil || got != k {
		t.Fatalf("UnmarshalText = %v", err)
	}
	if err := got.UnmarshalText([]byte(redacted)); err == nil {
		t.Error("UnmarshalText(redacted): want an error")
	}
	if p, err := ParsePrivateKey(k.Base64()); err != nil || p != k {
		t.Errorf("ParsePrivateKey = %v", err)
	}
}
