package main

// Gossip encryption (--gossip_key, --gossip_key_file): the keys are fixed
// for the life of the process (the demo has no API to change them; rotate
// by rolling restarts, see the README). GET /v1/keyring shows which keys a
// node holds by fingerprint, never the keys themselves, so that operators
// can check a rotation step reached every node.

import "github.com/gossipkit/chitchat-go/internal/minihttp"

// keyringDoc is the body of GET /v1/keyring.
type keyringDoc struct {
	// Primary is the fingerprint of the key that seals what this node
	// sends (unless SendPlaintext); "" without keys.
	Primary string `json:"primary"`
	// Keys are the fingerprints of every key that opens what this node
	// receives, primary first; [] without keys.
	Keys []string `json:"keys"`
	// AcceptPlaintext: unencrypted gossip is accepted (always, without
	// keys).
	AcceptPlaintext bool `json:"accept_plaintext"`
	// SendPlaintext: this node's gossip is not encrypted (always, without
	// keys).
	SendPlaintext bool `json:"send_plaintext"`
}

func (a *api) keyring(w minihttp.ResponseWriter, _ *minihttp.Request) {
	d := keyringDoc{Keys: []string{}, AcceptPlaintext: true, SendPlaintext: true}
	if kr := a.cfg.Keyring; kr != nil {
		for _, k := range kr.Keys() {
			d.Keys = append(d.Keys, k.Fingerprint())
		}
		d.Primary = d.Keys[0]
		d.AcceptPlaintext, d.SendPlaintext = a.cfg.AcceptPlaintext, a.cfg.SendPlaintext
	}
	a.writeIndented(w, jsonContentType, d)
}
