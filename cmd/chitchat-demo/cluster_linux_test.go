package main

import (
	"context"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// If the launcher is killed with SIGKILL (it cannot stop its nodes), the
// kernel kills them (Pdeathsig): no node outlives the launcher.
func TestClusterNodesDieWithLauncher(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	l, nodes := startLauncher(ctx, t, 2)
	// pidfds become readable when the process exits, whoever reaps it.
	fds := make([]unix.PollFd, len(nodes))
	for i, c := range nodes {
		fd, err := unix.PidfdOpen(c.pid, 0)
		if err != nil {
			t.Skipf("pidfd_open: %v (needs Linux 5.3)", err)
		}
		defer unix.Close(fd)
		fds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	}
	l.cmd.Process.Signal(syscall.SIGKILL)
	l.wait(ctx)
	done := make([]bool, len(fds))
	for remaining := len(fds); remaining > 0; {
		n, err := unix.Poll(fds, pollTimeout(ctx))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			for i := range fds {
				if !done[i] {
					t.Errorf("%s (pid %d) still runs after the launcher was killed", nodes[i].name, nodes[i].pid)
				}
			}
			return
		}
		for i := range fds {
			if !done[i] && fds[i].Revents != 0 {
				done[i], fds[i].Fd = true, -1 // poll ignores negative fds
				remaining--
			}
		}
	}
}

// pollTimeout is the time left before ctx's deadline, in milliseconds.
func pollTimeout(ctx context.Context) int {
	d, ok := ctx.Deadline()
	if !ok {
		return -1
	}
	return int(max(time.Until(d), 0) / time.Millisecond)
}
