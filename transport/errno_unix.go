//go:build aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris

package transport

import "syscall"

var platformTransientErrnos []syscall.Errno

// msgTrunc is the recvmsg flag reporting that a datagram did not fit.
const msgTrunc = syscall.MSG_TRUNC
