package transport

import "syscall"

// WSAECONNRESET follows a send to a closed port; WSAEMSGSIZE and
// ERROR_MORE_DATA report a datagram larger than the receive buffer.
var platformTransientErrnos = []syscall.Errno{
	syscall.WSAECONNRESET,
	syscall.Errno(10040), // WSAEMSGSIZE
	syscall.ERROR_MORE_DATA,
}

// msgTrunc: Windows reports truncation as an error instead of a flag.
const msgTrunc = 0
