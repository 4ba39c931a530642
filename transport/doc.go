// Package transport moves opaque gossip datagrams between addresses.
//
// It is the Go counterpart of chitchat's transport module: a
// [Transport] opens a [Conn] bound to a [netip.AddrPort], and a Conn sends
// and receives whole datagrams. The transport is bytes-level: the gossip
// server encodes and decodes messages itself, so the sizes seen here (and
// counted in [Stats]) are the real wire sizes.
//
// Implementations:
//
//   - [UDP]: real sockets (net.ListenUDP).
//   - [Network]: an in-memory, seeded, fault-injecting network for tests and
//     simulation (MTU, bounded inboxes, link cuts, random drops, delay and
//     jitter, statistics). It works inside testing/synctest bubbles, and it
//     refuses what UDP refuses (more than [MaxPayloadSize] bytes, sends
//     across address families) whatever its MTU.
//   - [Lossy] and [Counting]: wrappers around any Transport that drop
//     outgoing datagrams at random or count traffic.
//
// Error contract shared by every implementation:
//
//   - After Close, Send and Recv return [ErrClosed] (which also matches
//     [net.ErrClosed] with errors.Is). Close unblocks a pending Recv and is
//     idempotent.
//   - Sending to an address nobody listens on is not an error.
//   - [IsTransient] reports errors that concern a single datagram (a
//     truncated or oversized datagram, ECONNREFUSED, ENOBUFS, ...): the
//     caller counts or logs them and keeps going. Any other Recv error means
//     the Conn is broken.
package transport
