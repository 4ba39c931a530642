package chitchat

import (
	"fmt"
	"testing"
	"time"
)

// Bar.PriorFloor (c9a6e6f): while monitors are in force, an observer that
// does not monitor a node floors its mean at the learned prior. A forger
// that feeds one observer 1,000 invented nodes rising every 10 s (ramped
// from the honest pace) lifts that observer's prior from 1 s to about 9 s:
// a real death announced by a monitor's notice 8 s after the node's last
// rise is applied there only once the observer's phi, over the floored
// mean, passes half the threshold: 37 s after the last rise instead of at
// the notice (8 s); its own verdict would need 16 × 9 s. Bounded by the
// prior's bound: 4 × MaxInterval (40 s at the defaults). Without the floor
// the window's own mean (intervals of a second) decides: 8 s (checked by
// setting PriorFloor false in Engine.bar: the 1,000-fake case then fails).
// Deflating the prior (fakes rising every MinInterval) makes the floor no
// floor (c9a6e6f's cold-start case again) and shortens settling to
// 16 × MinInterval: not measured. Fails if the delay exceeds its bound, or
// if the floor stops following the prior.
func TestHostile9InflatedPriorSlowsDeaths(t *testing.T) {
	for _, fakes := range []int{0, 1000} {
		t.Run(fmt.Sprintf("%d fakes", fakes), func(t *testing.T) {
			p, e, y, x := hostile9Setup(t)
			now := p.now
			f := hostile9NewFeeder(e, fakes, time.Second)
			now = hostile9Run(t, now, e, y, f, 30*time.Second)
			if fakes > 0 {
				f.every = 5 * time.Second
				now = hostile9Run(t, now, e, y, f, 120*time.Second)
				f.every = e.cfg.FailureDetector.MaxInterval
				now = hostile9Run(t, now, e, y, f, 300*time.Second)
			}
			prior := e.fd.model.Prior()
			// x dies: its rises stop. Its monitor finds it dead 8 s later
			// and its notice reaches e.
			var others []*NodeState
			for _, ns := range hostile9Honest(e) {
				if ns != x {
					others = append(others, ns)
				}
			}
			monitor := p.byAddr[ringFrom(p.byAddr[x.id.Addr])[0].id.Addr]
			deadAfter := 0
			for s := 1; s <= 200; s++ {
				now = now.Add(time.Second)
				hostile9Rise(t, now, e, Inbound{From: y.Self().Addr, Authentic: true}, others)
				f.feed(t, now)
				if s == 8 {
					e.Step(now, Inbound{From: monitor.Self().Addr, Authentic: true}, wire(t, hostile8Dead(*x.id, x.heartbeat)))
				}
				e.UpdateLiveness(now)
				if !isLive(e, *x.id) {
					deadAfter = s
					break
				}
			}
			t.Logf("prior %v: x, dead, found dead at e %d s after its last rise (its monitor's notice at 8 s)", prior, deadAfter)
			if deadAfter == 0 {
				t.Fatal("x never found dead at e")
			}
			bound := 4*e.cfg.FailureDetector.MaxInterval + 2*time.Second
			if got := time.Duration(deadAfter) * time.Second; got > bound {
				t.Errorf("found dead after %v, want at most %v (half the threshold over MaxInterval)", got, bound)
			}
			if fakes > 0 && deadAfter < 30 {
				t.Errorf("found dead after %d s with 1000 fakes (prior %v): the floor no longer follows the prior, or the measure no longer inflates it", deadAfter, prior)
			}
		})
	}
}
