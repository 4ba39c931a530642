package main

// The gossip encryption flags: --gossip_key, --gossip_key_file and the
// plaintext migration switches.

import (
	"fmt"
	"os"
	"strings"

	"github.com/gossipkit/chitchat-go/chitchat"
)

// keyHint says what a gossip key is and how to make one.
const keyHint = "a gossip key is 32 random bytes in base64: make one with `head -c 32 /dev/urandom | base64`"

// parseKeyFlags returns the gossip keys (flags first, then the key file,
// primary first) and the plaintext migration switches. Problems never quote
// a key: command lines and logs are no place to copy secrets from.
func parseKeyFlags(nf *nodeFlags, bad func(string, ...any)) (keys []chitchat.Key, accept, send bool) {
	check := func(where, s string) {
		k, err := chitchat.ParseKey(s)
		switch {
		case err != nil:
			bad("%s: %s; %s", where, strings.TrimPrefix(err.Error(), "chitchat: "), keyHint)
		case k == chitchat.Key{}:
			bad("%s: the all-zero key is refused; %s", where, keyHint)
		default:
			keys = append(keys, k)
		}
	}
	for i, s := range nf.gossipKeys {
		where := "--gossip_key"
		if len(nf.gossipKeys) > 1 {
			where = fmt.Sprintf("--gossip_key (#%d)", i+1)
		}
		check(where, s)
	}
	if nf.gossipKeyFile.set {
		path := nf.gossipKeyFile.s
		b, err := os.ReadFile(path)
		if err != nil {
			bad("--gossip_key_file %q: cannot read it: %v", path, stripPathErr(err))
		} else {
			found := false
			for i, line := range strings.Split(string(b), "\n") {
				line = strings.TrimSpace(line)
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				found = true
				check(fmt.Sprintf("--gossip_key_file %s, line %d", path, i+1), line)
			}
			if !found {
				bad("--gossip_key_file %s holds no key: write one base64 key per line; %s", path, keyHint)
			}
		}
	}
	accept = parseBoolFlag("gossip_accept_plaintext", nf.acceptPlaintext, bad)
	send = parseBoolFlag("gossip_send_plaintext", nf.sendPlaintext, bad)
	if (accept || send) && len(nf.gossipKeys) == 0 && !nf.gossipKeyFile.set {
		bad("--gossip_accept_plaintext and --gossip_send_plaintext are steps of a migration to encryption: " +
			"they need a key (--gossip_key or --gossip_key_file); without one, gossip is plaintext anyway")
	}
	return keys, accept, send
}
