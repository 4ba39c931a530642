package overlay

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
)

// Diff is what changes between two peer sets, keyed by public key (as
// WireGuard keys its peers). A key rotation is therefore a removal of the
// old key and an addition of the new one. Each list is sorted by public
// key.
type Diff struct {
	// Added are peers whose key is new.
	Added []Peer
	// Removed are peers whose key is gone.
	Removed []Peer
	// Changed are the new values of peers whose key stayed but whose
	// endpoint, allowed IPs or keepalive changed.
	Changed []Peer
}

// DiffPeers returns what turns old into new. Neither slice is modified; the
// result shares no memory with them. Within each set, a later peer with the
// same key as an earlier one is ignored (Build never produces that).
func DiffPeers(old, new []Peer) Diff {
	byKey := func(ps []Peer) map[Key]Peer {
		m := make(map[Key]Peer, len(ps))
		for _, p := range ps {
			if _, dup := m[p.PublicKey]; !dup {
				m[p.PublicKey] = p
			}
		}
		return m
	}
	o, n := byKey(old), byKey(new)
	var d Diff
	for k, np := range n {
		op, ok := o[k]
		switch {
		case !ok:
			d.Added = append(d.Added, np.Clone())
		case !op.Equal(np):
			d.Changed = append(d.Changed, np.Clone())
		}
	}
	for k, op := range o {
		if _, ok := n[k]; !ok {
			d.Removed = append(d.Removed, op.Clone())
		}
	}
	for _, l := range [][]Peer{d.Added, d.Removed, d.Changed} {
		slices.SortFunc(l, comparePublicKeys)
	}
	return d
}

// comparePublicKeys orders peers by public key, as Diff lists them.
func comparePublicKeys(a, b Peer) int { return bytes.Compare(a.PublicKey[:], b.PublicKey[:]) }

// Empty reports whether d changes nothing.
func (d Diff) Empty() bool { return len(d.Added)+len(d.Removed)+len(d.Changed) == 0 }

// String summarizes d for logs: "+1 -0 ~2 (+abcd1234 ~ef012345 ~…)", keys
// abbreviated, at most five listed.
func (d Diff) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "+%d -%d ~%d", len(d.Added), len(d.Removed), len(d.Changed))
	var items []string
	for _, l := range []struct {
		sign  string
		peers []Peer
	}{{"+", d.Added}, {"-", d.Removed}, {"~", d.Changed}} {
		for _, p := range l.peers {
			items = append(items, l.sign+p.PublicKey.String()[:8])
		}
	}
	if len(items) == 0 {
		return b.String()
	}
	const maxItems = 5
	more := ""
	if len(items) > maxItems {
		more = fmt.Sprintf(" … +%d", len(items)-maxItems)
		items = items[:maxItems]
	}
	fmt.Fprintf(&b, " (%s%s)", strings.Join(items, " "), more)
	return b.String()
}
