package transport

// Datagram I/O by raw syscalls. Every syscall a goroutine makes through
// syscall.Syscall (as net.UDPConn's methods do) goes through the runtime's
// entersyscall, which wakes the sysmon thread if it sleeps: sysmon must be
// ready to take the P back from a syscall that blocks. A node is idle
// between datagrams, so sysmon sleeps, and each datagram received and each
// reply sent woke it (then it slept 20 µs, and went back to sleep): on the
// 30-process benchmark of issue 15, 58 % of a node's context switches were
// sysmon's (perf record -e sched:sched_switch). The socket is non-blocking
// and a datagram is copied in or out at once, so recvfrom and sendto never
// block: they run as raw syscalls inside the socket's RawConn, and the
// netpoller still parks the goroutine until the socket is ready.

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawIO does a udpConn's I/O on its file descriptor. Its callbacks are
// built once and read their arguments from the struct, so that a datagram
// allocates nothing; the mutexes keep concurrent Sends (and Recvs) apart.
type rawIO struct {
	rc    syscall.RawConn
	inet6 bool // an AF_INET6 socket (IPv4 peers as IPv4-mapped addresses)

	sendMu   sync.Mutex
	sendBuf  []byte
	sendTo   unix.RawSockaddrInet6 // or a RawSockaddrInet4 in its first bytes
	sendLen  uint32
	sendErr  syscall.Errno
	sendFunc func(fd uintptr) bool

	recvMu   sync.Mutex
	recvBuf  []byte
	recvN    int
	recvFrom unix.RawSockaddrAny
	recvErr  syscall.Errno
	recvFunc func(fd uintptr) bool
}

func newRawIO(pc *net.UDPConn, local netip.AddrPort) *rawIO {
	rc, err := pc.SyscallConn()
	if err != nil {
		return nil // the socket's own methods do the I/O
	}
	r := &rawIO{rc: rc, inet6: !local.Addr().Is4()}
	r.sendFunc = r.sendto
	r.recvFunc = r.recvfrom
	return r
}

// sendto is the RawConn.Write callback: false to wait until the socket is
// writable.
func (r *rawIO) sendto(fd uintptr) bool {
	var p unsafe.Pointer
	if len(r.sendBuf) > 0 {
		p = unsafe.Pointer(&r.sendBuf[0])
	}
	for {
		_, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(p), uintptr(len(r.sendBuf)), 0,
			uintptr(unsafe.Pointer(&r.sendTo)), uintptr(r.sendLen))
		if errno == unix.EINTR {
			continue
		}
		r.sendErr = errno
		return errno != unix.EAGAIN
	}
}

// recvfrom is the RawConn.Read callback. MSG_TRUNC makes it return the
// datagram's full size even when buf is shorter.
func (r *rawIO) recvfrom(fd uintptr) bool {
	var p unsafe.Pointer
	if len(r.recvBuf) > 0 {
		p = unsafe.Pointer(&r.recvBuf[0])
	}
	for {
		size := uint32(unsafe.Sizeof(r.recvFrom))
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(p), uintptr(len(r.recvBuf)), unix.MSG_TRUNC,
			uintptr(unsafe.Pointer(&r.recvFrom)), uintptr(unsafe.Pointer(&size)))
		if errno == unix.EINTR {
			continue
		}
		r.recvN, r.recvErr = int(n), errno
		return errno != unix.EAGAIN
	}
}

// write sends b to `to`; ok is false when it cannot (an address with a
// zone), and the caller sends another way.
func (r *rawIO) write(b []byte, to netip.AddrPort) (ok bool, err error) {
	if to.Addr().Zone() != "" {
		return false, nil
	}
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	if !r.setSendTo(to) {
		return false, nil
	}
	r.sendBuf = b
	err = r.rc.Write(r.sendFunc)
	r.sendBuf = nil
	if err == nil && r.sendErr != 0 {
		err = &net.OpError{Op: "write", Net: "udp", Addr: net.UDPAddrFromAddrPort(to), Err: os.NewSyscallError("sendto", r.sendErr)}
	}
	return true, err
}

// setSendTo encodes to as the socket's family wants it.
func (r *rawIO) setSendTo(to netip.AddrPort) bool {
	port := [2]byte{byte(to.Port() >> 8), byte(to.Port())} // network byte order
	if !r.inet6 {
		if !to.Addr().Is4() {
			return false // precheck refuses it first
		}
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&r.sendTo))
		*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: to.Addr().As4()}
		*(*[2]byte)(unsafe.Pointer(&sa.Port)) = port
		r.sendLen = unix.SizeofSockaddrInet4
		return true
	}
	r.sendTo = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: to.Addr().As16()} // IPv4 as IPv4-mapped
	*(*[2]byte)(unsafe.Pointer(&r.sendTo.Port)) = port
	r.sendLen = unix.SizeofSockaddrInet6
	return true
}

// read receives one datagram into buf.
func (r *rawIO) read(buf []byte) (int, bool, netip.AddrPort, error) {
	r.recvMu.Lock()
	defer r.recvMu.Unlock()
	r.recvBuf = buf
	err := r.rc.Read(r.recvFunc)
	r.recvBuf = nil
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return 0, false, netip.AddrPort{}, net.ErrClosed
		}
		return 0, false, netip.AddrPort{}, err
	}
	from := r.source()
	if r.recvErr != 0 {
		return 0, false, from, &net.OpError{Op: "read", Net: "udp", Addr: net.UDPAddrFromAddrPort(from), Err: os.NewSyscallError("recvfrom", r.recvErr)}
	}
	n := r.recvN
	if n > len(buf) {
		return len(buf), true, from, nil
	}
	return n, false, from, nil
}

// source decodes the sender's address of the last datagram received.
func (r *rawIO) source() netip.AddrPort {
	switch r.recvFrom.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&r.recvFrom))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&r.recvFrom))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		a := netip.AddrFrom16(sa.Addr)
		if sa.Scope_id != 0 {
			a = a.WithZone(zoneName(sa.Scope_id))
		}
		return netip.AddrPortFrom(a, uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

// zoneName is the interface name of a scope id, or the id in decimal.
func zoneName(id uint32) string {
	if ifi, err := net.InterfaceByIndex(int(id)); err == nil {
		return ifi.Name
	}
	return strconv.FormatUint(uint64(id), 10)
}
