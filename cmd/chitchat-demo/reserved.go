package main

// Keys the HTTP API refuses to set or delete: other parts of the system own
// them, and a client of the API (a script, or a web page that tricks a
// browser into calling it) must not rewrite them.

import (
	"strings"

	"github.com/gossipkit/chitchat-go/catalog"
)

// internalKeyPrefix starts the library's own keys, such as
// chitchat.LeftKey ("__chitchat.left"): they are hidden where a user looks
// (/v1/agent/members, /ui), and refused by the mutation endpoints.
const internalKeyPrefix = "__chitchat."

// reservedPrefixes are the key prefixes the mutation endpoints refuse, with
// who owns them. This is the one list; a new owner adds its prefix here.
var reservedPrefixes = []struct{ prefix, owner string }{
	{overlayKeyPrefix, "the WireGuard overlay's entries"},
	{internalKeyPrefix, "the gossip library's internal keys"},
	{catalog.ServiceKeyPrefix, "the service catalog's services"},
	{catalog.HealthKeyPrefix, "the service catalog's health checks"},
}

// reservedPrefix returns the reserved prefix key starts with and its owner,
// or ok false.
func reservedPrefix(key string) (prefix, owner string, ok bool) {
	for _, r := range reservedPrefixes {
		if strings.HasPrefix(key, r.prefix) {
			return r.prefix, r.owner, true
		}
	}
	return "", "", false
}

// isInternalKey reports whether key is one of the library's own keys.
func isInternalKey(key string) bool { return strings.HasPrefix(key, internalKeyPrefix) }
