package main

import (
	"os/exec"
	"syscall"
)

// setChildAttrs makes a node die with the launcher: the kernel sends it
// SIGKILL when the launcher exits, even if the launcher is itself killed
// with SIGKILL and cannot stop it. The node gets its own process group so
// that Ctrl-C reaches only the launcher, which then stops the nodes in
// order.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
