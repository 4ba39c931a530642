package chitchattest

import (
	"fmt"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// fatalRecorder is a testing.TB whose Fatalf records instead of stopping.
type fatalRecorder struct {
	testing.TB
	fatal string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

func TestEventuallyAdvancesVirtualTimeOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		d := Eventually(t, time.Hour, 100*time.Millisecond, func() bool { return time.Since(start) >= 250*time.Millisecond })
		if d != 300*time.Millisecond {
			t.Errorf("Eventually took %v, want exactly 300ms (checks at 0, 100, 200, 300ms)", d)
		}

		rec := &fatalRecorder{TB: t}
		start = time.Now()
		Eventually(rec, time.Second, 300*time.Millisecond, func() bool { return false })
		if got := time.Since(start); got != time.Second {
			t.Errorf("a failing Eventually gave up after %v, want exactly the 1s timeout", got)
		}
		if rec.fatal == "" {
			t.Error("a failing Eventually did not fail the test")
		}
	})
}

func TestClusterLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := New(t, Options{})
		a := c.AddNode("a", 0)
		b := c.AddNode("b", 0) // seeded with a
		if got, want := c.Config(b).Seeds, []string{c.ID(a).Addr.String()}; !slices.Equal(got, want) {
			t.Errorf("default seeds of b = %v, want %v", got, want)
		}
		if c.ID(a).Addr == c.ID(b).Addr {
			t.Fatalf("AddNode(_, 0) gave both nodes %v", c.ID(a).Addr)
		}
		c.MustWaitLive(time.Minute, a, c.ID(a), c.ID(b))
		c.AssertStatus(a, c.ID(b), Live)

		if err := c.Node(a).Set("k", "v"); err != nil {
			t.Fatal(err)
		}
		c.EventuallyNodeState(b, c.ID(a), EqualKeyValue("k", "v"), time.Second)
		c.AssertNodeState(b, c.ID(a), KeyPresent("k", true))
		c.AssertNodeState(b, c.ID(a), KeyMarkedDeleted("k", false))

		old := c.ID(b)
		c.Restart(b, true)
		if c.ID(b).Generation != old.Generation+1 || c.ID(b).Addr != old.Addr {
			t.Errorf("restarted id = %v, want %v with the next generation", c.ID(b), old)
		}
		c.MustWaitLive(time.Minute, a, c.ID(a), c.ID(b))
		c.EventuallyStatus(a, old, Dead, time.Minute)

		c.Cut(a, b)
		c.EventuallyStatus(a, c.ID(b), Dead, time.Minute)
		c.Restore(a, b)
		c.EventuallyStatus(a, c.ID(b), Live, time.Minute)
	})
}

func TestSubSeed(t *testing.T) {
	if SubSeed(1, "x") == SubSeed(1, "y") || SubSeed(1, "x") == SubSeed(2, "x") {
		t.Error("SubSeed collides on different inputs")
	}
	if SubSeed(1, "x") != SubSeed(1, "x") {
		t.Error("SubSeed is not deterministic")
	}
}
