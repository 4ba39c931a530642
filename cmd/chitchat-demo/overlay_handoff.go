package main

// A node with --overlay runs in chitchat-demo-overlay: this same program
// built with -tags overlay (overlay.go), which links the WireGuard device
// and gVisor's netstack. The default build leaves them out, since they were
// 5.8 of its 19.9 MB and a third of a plain node's resident memory
// (BENCHMARKS.md, issue 15), and hands a node given --overlay over to the
// overlay build: it execs it in place (same PID, arguments and environment),
// found next to its own executable or else in PATH, or stops saying how to
// build it.

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// overlayBinaryName is the overlay build's executable.
const overlayBinaryName = "chitchat-demo-overlay"

// overlayBuildHint says how to get the overlay build.
const overlayBuildHint = "build it with `go build -tags overlay -o " + overlayBinaryName +
	" ./cmd/chitchat-demo` and put it next to chitchat-demo or in PATH, " +
	"or run the node with `go run -tags overlay ./cmd/chitchat-demo ...`"

// overlayOff answers the overlay endpoints of a node started without
// --overlay.
const overlayOff = "the WireGuard overlay is off on this node: start it with " +
	"--overlay --overlay_node_id N --overlay_ip 10.200.0.N (and --wg_listen_port, 51820 by default)"

// overlayKeyPrefix is overlay.KeyPrefix, which the default build cannot
// import without linking the overlay (a test of the overlay build checks
// that they are equal).
const overlayKeyPrefix = "worker:"

// handoffEnv is set in the environment of the overlay build a node hands
// over to: a binary under that name which is not the overlay build then
// stops instead of handing over again, to itself.
const handoffEnv = "CHITCHAT_DEMO_OVERLAY_HANDOFF"

// overlayHandoff finds the overlay build and execs it; its fields are the
// process's (osHandoff) except in tests.
type overlayHandoff struct {
	executable func() (string, error)
	lookPath   func(file string) (string, error)
	stat       func(name string) (fs.FileInfo, error)
	getenv     func(key string) string
	environ    func() []string
	exec       func(argv0 string, argv []string, envv []string) error // returns only on failure
}

var osHandoff = overlayHandoff{
	executable: os.Executable, lookPath: exec.LookPath, stat: os.Stat,
	getenv: os.Getenv, environ: os.Environ, exec: syscall.Exec,
}

// find returns the path of the overlay build: next to this executable, or
// in PATH; never this executable itself.
func (h overlayHandoff) find() (string, error) {
	self, err := h.executable()
	if err != nil {
		return "", fmt.Errorf("cannot find my own binary: %w", err)
	}
	selfInfo, _ := h.stat(self)
	usable := func(path string) bool {
		fi, err := h.stat(path)
		return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 &&
			filepath.Clean(path) != filepath.Clean(self) && (selfInfo == nil || !os.SameFile(fi, selfInfo))
	}
	next := filepath.Join(filepath.Dir(self), overlayBinaryName)
	if usable(next) {
		return next, nil
	}
	if p, err := h.lookPath(overlayBinaryName); err == nil {
		if abs, err := filepath.Abs(p); err == nil && usable(abs) {
			return abs, nil
		}
	}
	return "", fmt.Errorf("%s is neither next to %s nor in PATH", overlayBinaryName, self)
}

// run hands the process over to the overlay build with args (the command
// line without the program name), and returns an exit code only if it
// cannot, having said why on stderr.
func (h overlayHandoff) run(args []string, stderr io.Writer, cmd string) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "%s: --overlay needs %s, the build with the WireGuard overlay: %v.\nTo get it, %s.\n",
			cmd, overlayBinaryName, err, overlayBuildHint)
		return exitError
	}
	if h.getenv(handoffEnv) != "" {
		self, _ := h.executable()
		return fail(fmt.Errorf("%s was started as %s but is built without the overlay", self, overlayBinaryName))
	}
	path, err := h.find()
	if err != nil {
		return fail(err)
	}
	err = h.exec(path, append([]string{path}, args...), append(h.environ(), handoffEnv+"=1"))
	return fail(fmt.Errorf("cannot run %s: %w", path, err))
}
