//go:build !(aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris || windows)

package transport

import "syscall"

var platformTransientErrnos []syscall.Errno

// msgTrunc is unknown here: only datagrams larger than MaxPayloadSize are
// detected as oversized.
const msgTrunc = 0
