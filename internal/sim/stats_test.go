package sim

import (
	"testing"
	"time"
)

// TestMaxDatagramAndOverMTU checks the largest-datagram figure and the
// MTU drop counter: without an MTU nothing is dropped for size; with an MTU
// below the largest datagram of the same run, exactly those above it are
// dropped and counted, and the figure still reports the largest attempt.
func TestMaxDatagramAndOverMTU(t *testing.T) {
	run := func(mtu int) Stats {
		s, err := New(Config{N: 10, Seed: *seedFlag})
		if err != nil {
			t.Fatal(err)
		}
		s.MTU = mtu
		s.RunFor(3 * time.Second)
		return s.Stats()
	}
	free := run(0)
	if free.OverMTU != 0 || free.MaxDatagramBytes <= 0 {
		t.Fatalf("without an MTU: OverMTU %d, MaxDatagramBytes %d", free.OverMTU, free.MaxDatagramBytes)
	}
	mtu := free.MaxDatagramBytes - 1
	capped := run(mtu)
	if capped.OverMTU == 0 {
		t.Errorf("MTU %d (one byte below the largest datagram): no datagram dropped for size", mtu)
	}
	if capped.MaxDatagramBytes <= mtu {
		t.Errorf("MaxDatagramBytes %d with MTU %d: the dropped attempts must count", capped.MaxDatagramBytes, mtu)
	}
	if capped.Dropped < capped.OverMTU {
		t.Errorf("Dropped %d < OverMTU %d", capped.Dropped, capped.OverMTU)
	}
}

// TestAfterStep checks that the hook sees every node, and only once the
// node has run (its first round is at a random phase of the first
// interval).
func TestAfterStep(t *testing.T) {
	s, err := New(Config{N: 5, Seed: *seedFlag})
	if err != nil {
		t.Fatal(err)
	}
	calls := make([]int, s.N())
	s.AfterStep = func(i int) { calls[i]++ }
	s.RunFor(time.Second)
	for i, c := range calls {
		// At least 3 rounds in a second at 300 ms, plus the messages.
		if c < 3 {
			t.Errorf("node %d: %d calls in 1s, want at least 3", i, c)
		}
	}
	s.Kill(2)
	before := calls[2]
	s.RunFor(time.Second)
	if calls[2] != before {
		t.Errorf("node 2 killed: %d more calls", calls[2]-before)
	}
}
