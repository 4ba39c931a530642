//go:build linux

package chitchat

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// oracleChildEnv makes the test binary run the library's decode of the
// hostile Syn (TestOracleDecodeHostileSynInSubprocess's child).
const oracleChildEnv = "CHITCHAT_ORACLE_HOSTILE_CHILD"

// oracleSyn is a Syn as the library's reflective decoder reads it.
type oracleSyn struct {
	_msgpack  struct{} `msgpack:",as_array"`
	ClusterID string
	Digest    []oracleEntry
	Sender    uint64
	Cover     []any
	Pad       []byte
}

type oracleEntry struct {
	_msgpack                             struct{} `msgpack:",as_array"`
	Name                                 string
	Generation                           uint64
	Addr                                 []byte
	Heartbeat, LastGCVersion, MaxVersion uint64
}

// Decoding the 19-byte hostile Syn into a slice with the library
// (msgpack.Unmarshal, v5.4.1) allocates for the 2^32−1 claimed entries
// (309 GB) before reading one: a process without a memory limit dies or
// swaps, which is why the library never decodes untrusted bytes here. The
// decode runs in a child process whose address space is capped 1 GiB above
// what it uses, so that only the child dies, of "out of memory", and the
// test checks that it died allocating for the claimed count. Our decoder refuses the same bytes (TestHostileDigestCountRefused).
func TestOracleDecodeHostileSynInSubprocess(t *testing.T) {
	if os.Getenv(oracleChildEnv) == "1" {
		decodeHostileSynLimited()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOracleDecodeHostileSynInSubprocess$", "-test.count=1")
	cmd.Env = append(os.Environ(), oracleChildEnv+"=1", "GOTRACEBACK=single")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err == nil {
		t.Fatalf("the library decoded the hostile Syn without dying (fixed upstream? then update this test and docs/PROTOCOL.md §12):\n%s", out.String())
	}
	// The runtime says "out of memory", or, under the race detector, that
	// it found no room for the block; either way in the library's
	// growSliceValue, asking reflect.MakeSlice for 2^32−1 entries.
	why := firstLine(out.String(), "out of memory")
	if why == "" {
		why = firstLine(out.String(), "too many address space collisions")
	}
	if why == "" || !strings.Contains(out.String(), "msgpack/v5.growSliceValue") ||
		!strings.Contains(out.String(), "reflect.MakeSlice") {
		t.Fatalf("child failed (%v), but not allocating for the claimed count:\n%s", err, out.String())
	}
	t.Logf("child: %v: %s", err, strings.TrimSpace(why))
}

// decodeHostileSynLimited caps the address space, then decodes.
func decodeHostileSynLimited() {
	vsz, err := virtualSize()
	if err != nil {
		fmt.Println("cannot read the address-space size:", err)
		os.Exit(3)
	}
	lim := &syscall.Rlimit{Cur: vsz + 1<<30, Max: vsz + 1<<30}
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, lim); err != nil {
		fmt.Println("setrlimit:", err)
		os.Exit(3)
	}
	var m oracleSyn
	err = msgpack.Unmarshal(hostileSyn[envelopeSize:], &m)
	fmt.Printf("msgpack.Unmarshal returned: %v, %d entries\n", err, len(m.Digest))
	os.Exit(0)
}

// virtualSize returns the process's address-space size in bytes.
func virtualSize() (uint64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, err
	}
	pages, err := strconv.ParseUint(strings.Fields(string(b))[0], 10, 64)
	if err != nil {
		return 0, err
	}
	return pages * uint64(os.Getpagesize()), nil
}

func firstLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
