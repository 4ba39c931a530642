//go:build !linux

package main

import "os/exec"

// setChildAttrs does nothing outside Linux: without Pdeathsig, a node stays
// in the launcher's process group so that Ctrl-C in a terminal reaches it
// even if the launcher cannot forward it.
func setChildAttrs(*exec.Cmd) {}
