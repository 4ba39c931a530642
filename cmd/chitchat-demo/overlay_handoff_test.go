package main

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

// The default build links neither WireGuard nor gVisor's netstack (nor the
// netlink packages of the TUN and kernel devices): the overlay build does.
func TestDefaultBuildLinksNoOverlay(t *testing.T) {
	t.Parallel()
	heavy := []string{"gvisor.dev/", "golang.zx2c4.com/wireguard", "github.com/vishvananda/netlink",
		"github.com/gossipkit/chitchat-go/overlay"}
	for _, tt := range []struct {
		name string
		tags []string
		want bool // the heavy packages are linked
	}{
		{"default", nil, false},
		{"-tags overlay", []string{"-tags", "overlay"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := exec.CommandContext(testContext(t), "go", append(append([]string{"list", "-deps"}, tt.tags...), ".")...).Output()
			if err != nil {
				t.Fatalf("go list -deps: %v", err)
			}
			for _, prefix := range heavy {
				var found []string
				for pkg := range strings.FieldsSeq(string(out)) {
					if strings.HasPrefix(pkg, prefix) {
						found = append(found, pkg)
					}
				}
				if linked := len(found) > 0; linked != tt.want {
					t.Errorf("%s linked: %v, want %v (%v)", prefix, linked, tt.want, found)
				}
			}
		})
	}
}

// find looks next to the executable, then in PATH, and never returns the
// executable itself.
func TestOverlayHandoffFind(t *testing.T) {
	files := fstest.MapFS{
		"bin/chitchat-demo":              {Mode: 0o755, Data: []byte("plain")},
		"bin/chitchat-demo-overlay":      {Mode: 0o755, Data: []byte("overlay")},
		"lonely/chitchat-demo":           {Mode: 0o755, Data: []byte("plain")},
		"path/chitchat-demo-overlay":     {Mode: 0o755, Data: []byte("overlay")},
		"noexec/chitchat-demo":           {Mode: 0o755, Data: []byte("plain")},
		"noexec/chitchat-demo-overlay":   {Mode: 0o644, Data: []byte("overlay")},
		"self/chitchat-demo-overlay":     {Mode: 0o755, Data: []byte("plain, misnamed")},
		"dir/chitchat-demo":              {Mode: 0o755, Data: []byte("plain")},
		"dir/chitchat-demo-overlay/file": {Mode: 0o644},
	}
	stat := func(name string) (fs.FileInfo, error) { return fs.Stat(files, strings.TrimPrefix(name, "/")) }
	tests := []struct {
		name, exe, inPath string // inPath: what PATH finds, "" for nothing
		want, wantErr     string
	}{
		{name: "next to the executable", exe: "/bin/chitchat-demo", inPath: "/path/chitchat-demo-overlay", want: "/bin/chitchat-demo-overlay"},
		{name: "in PATH", exe: "/lonely/chitchat-demo", inPath: "/path/chitchat-demo-overlay", want: "/path/chitchat-demo-overlay"},
		{name: "nowhere", exe: "/lonely/chitchat-demo", wantErr: "chitchat-demo-overlay is neither next to /lonely/chitchat-demo nor in PATH"},
		{name: "not executable", exe: "/noexec/chitchat-demo", wantErr: "neither next to"},
		{name: "a directory", exe: "/dir/chitchat-demo", wantErr: "neither next to"},
		{name: "itself", exe: "/self/chitchat-demo-overlay", inPath: "/self/chitchat-demo-overlay", wantErr: "neither next to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := overlayHandoff{
				executable: func() (string, error) { return tt.exe, nil },
				lookPath: func(string) (string, error) {
					if tt.inPath == "" {
						return "", exec.ErrNotFound
					}
					return tt.inPath, nil
				},
				stat: stat,
			}
			got, err := h.find()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("find() = %q, %v; want an error mentioning %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("find() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// run execs the overlay build with the same arguments and the environment
// plus the hand-over mark; it returns only when it cannot, saying how to
// get the overlay build.
func TestOverlayHandoffRun(t *testing.T) {
	files := fstest.MapFS{
		"bin/chitchat-demo":         {Mode: 0o755},
		"bin/chitchat-demo-overlay": {Mode: 0o755},
		"lonely/chitchat-demo":      {Mode: 0o755},
	}
	type execCall struct {
		Argv0      string
		Argv, Envv []string
	}
	tests := []struct {
		name     string
		exe      string
		env      string // handoffEnv's value
		execErr  error
		wantExec *execCall
		wantOut  []string // in stderr
	}{
		{name: "exec", exe: "/bin/chitchat-demo", wantExec: &execCall{"/bin/chitchat-demo-overlay",
			[]string{"/bin/chitchat-demo-overlay", "--overlay", "--overlay_ip", "10.200.0.1"}, []string{"HOME=/root", handoffEnv + "=1"}}},
		{name: "no overlay build", exe: "/lonely/chitchat-demo", wantOut: []string{
			"chitchat-demo: --overlay needs chitchat-demo-overlay, the build with the WireGuard overlay: chitchat-demo-overlay is neither next to /lonely/chitchat-demo nor in PATH.",
			"go build -tags overlay -o chitchat-demo-overlay ./cmd/chitchat-demo", "go run -tags overlay ./cmd/chitchat-demo"}},
		{name: "exec fails", exe: "/bin/chitchat-demo", execErr: errors.New("exec format error"),
			wantExec: &execCall{"/bin/chitchat-demo-overlay",
				[]string{"/bin/chitchat-demo-overlay", "--overlay", "--overlay_ip", "10.200.0.1"}, []string{"HOME=/root", handoffEnv + "=1"}},
			wantOut: []string{"cannot run /bin/chitchat-demo-overlay: exec format error"}},
		{name: "handed over to a build without the overlay", exe: "/bin/chitchat-demo-overlay", env: "1",
			wantOut: []string{"/bin/chitchat-demo-overlay was started as chitchat-demo-overlay but is built without the overlay"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *execCall
			h := overlayHandoff{
				executable: func() (string, error) { return tt.exe, nil },
				lookPath:   func(string) (string, error) { return "", exec.ErrNotFound },
				stat:       func(name string) (fs.FileInfo, error) { return fs.Stat(files, strings.TrimPrefix(name, "/")) },
				getenv: func(k string) string {
					if k == handoffEnv {
						return tt.env
					}
					return ""
				},
				environ: func() []string { return []string{"HOME=/root"} },
				exec: func(argv0 string, argv, envv []string) error {
					got = &execCall{argv0, argv, envv}
					if tt.execErr != nil {
						return tt.execErr
					}
					return nil
				},
			}
			var stderr bytes.Buffer
			code := h.run([]string{"--overlay", "--overlay_ip", "10.200.0.1"}, &stderr, "chitchat-demo")
			if diff := cmp.Diff(tt.wantExec, got); diff != "" {
				t.Errorf("exec (-want +got):\n%s", diff)
			}
			if code != exitError {
				t.Errorf("exit code %d, want %d", code, exitError)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
		})
	}
}

// The processes: with the overlay build next to it, a node given
// --overlay runs in it (the overlay build's checks answer); alone, it stops
// saying how to get it. TestOverlayThreeNodes and the launcher's overlay
// tests run whole overlay clusters through the hand-over.
func TestOverlayHandoffProcess(t *testing.T) {
	t.Parallel()
	lonely := filepath.Join(t.TempDir(), "chitchat-demo")
	data, err := os.ReadFile(demoBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lonely, data, 0o755); err != nil {
		t.Fatal(err)
	}
	badKey := writeFile(t, t.TempDir(), "bad.wg", "garbage\n")
	tests := []struct {
		name     string
		bin      string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"checked by the overlay build", demoBin, []string{"--overlay", "--overlay_node_id", "1", "--overlay_ip", "10.200.0.1",
			"--wg_private_key_file", badKey}, exitUsage, "not a WireGuard private key"},
		{"launcher checked by the overlay build", demoBin, []string{"cluster", "-n", "2", "--", "--overlay", "--overlay_node_id", "1",
			"--overlay_ip", "10.200.0.1", "--wg_private_key_file", badKey}, exitUsage, "not a WireGuard private key"},
		{"no overlay build", lonely, []string{"--overlay", "--overlay_node_id", "1", "--overlay_ip", "10.200.0.1"},
			exitError, "--overlay needs chitchat-demo-overlay"},
		{"launcher without the overlay build", lonely, []string{"cluster", "-n", "2", "--", "--overlay", "--overlay_node_id", "1",
			"--overlay_ip", "10.200.0.1"}, exitError, "chitchat-demo cluster: --overlay needs chitchat-demo-overlay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(testContext(t), tt.bin, tt.args...)
			cmd.Env = append(envWithout("PATH", handoffEnv), "PATH="+t.TempDir())
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tt.wantCode {
				t.Fatalf("exit: %v, want code %d; output:\n%s", err, tt.wantCode, out)
			}
			if !strings.Contains(string(out), tt.wantOut) {
				t.Errorf("output lacks %q:\n%s", tt.wantOut, out)
			}
		})
	}
}
