// Package failuredetector decides which gossip peers are live from the arrival
// times of their heartbeats, and when dead peers may be forgotten.
//
// It ports the failure detector of chitchat v0.10.1 (failure_detector.rs).
//
// # Phi
//
// Despite the name, phi is NOT the classical phi-accrual suspicion level
// (−log10 of a normal or exponential tail probability). It is a linear ratio:
//
//	phi  = seconds since the last heartbeat / mean
//	mean = (sum of kept intervals + 5 × InitialInterval) / (number of kept intervals + 5)
//
// The mean uses additive smoothing: InitialInterval acts as a prior observed
// five times, so a freshly seen node is judged against InitialInterval and its
// own history takes over as intervals accumulate. At most SamplingWindowSize
// intervals are kept (the most recent ones), and an interval longer than
// MaxInterval is discarded, so one long pause does not inflate the mean and
// hide the next one. A node is live iff phi is defined (at least one kept
// interval, or one heartbeat with LearnedPrior) and phi <= PhiThreshold;
// with the defaults a node is declared
// dead about 8 mean intervals after its last heartbeat. The exact formula is
// kept from Rust because timing tests of the port depend on it.
//
// # Learned prior
//
// With the fixed prior, a node that joins and is killed after a heartbeat
// or two is judged against InitialInterval (5 s): it is never live after
// one heartbeat, and after two 300 ms apart it takes 33.7 s to be found
// dead. [Config.LearnedPrior] (off by default) changes two things:
//
//   - The prior is learned from every interval recorded in any node's
//     window (that is, every gap between two reported heartbeats of a node
//     that is at most MaxInterval; longer gaps are not learned, as they
//     are not recorded). It starts at InitialInterval weighted as 5
//     observations, is the smoothed running mean of the first 1,018
//     intervals, then moves by 1/1,024 of each new interval's difference
//     (an exponentially weighted mean over about the last 1,024). Each
//     interval counts once, so the prior is total observed time over
//     intervals: nodes that report often weigh more, a few slow nodes
//     barely move it, and intervals are capped at MaxInterval.
//   - A node with a last heartbeat but no interval has phi = elapsed /
//     prior (the smoothing formula with no interval) instead of no phi.
//
// What counts as evidence that a node is alive is exactly one reported
// heartbeat ([Detector.ReportHeartbeat]): it makes the node live at the
// next UpdateLiveness, and keeps it live for PhiThreshold × its mean
// (about 8 × the typical interval: 2.4 s at 300 ms) without another. An
// ensured window ([Detector.EnsureWindow]) is not evidence; neither is
// anything the detector is not told. Owners should therefore report a
// heartbeat only when it is news (for instance a heartbeat counter that
// grew), never for a node merely learned about, whose heartbeat may be
// old: that node would be live for 2.4 s. A dead node's window is reset
// (its last heartbeat time is kept for the next interval) and has no phi
// until the node reports again, so it stays dead until then: judged by
// the prior alone, a node faster than its peers would come back to life
// at the next round without a heartbeat.
//
// # Memory and accuracy
//
// A window takes 96 bytes whatever SamplingWindowSize is (upstream keeps
// every interval: 8 KB per node at the default 1,000, once the window has
// filled). Up to 10 intervals it keeps them exactly, in nanoseconds. Above
// that it cuts the interval stream into blocks of b = ceil(W/25) intervals
// (W = SamplingWindowSize; b = 40 by default): the block being filled is
// summed exactly, and up to 25 completed blocks are kept as their sums,
// rounded to 24 bits in a unit of the 1-2-5 series just large enough for
// b × MaxInterval (50 µs by default, so whole milliseconds stay exact).
// When the window is full, one more interval evicts the mean of the
// oldest block instead of the oldest interval itself: the sum is exact
// (up to block rounding) whenever the oldest block is whole, and in
// between it is off by at most
//
//	r(b−r)/b × (hi − lo)  +  (blocks kept) × unit/2
//
// where r is how many of the oldest block's intervals are still in the
// window and hi, lo are its longest and shortest intervals. Since phi's
// mean divides that sum plus the prior by W+5, phi's relative error is at
// most the above over (W+5) × mean, that is about b/(4(W+5)) ≈ 1 % times
// (hi − lo)/mean at worst. With the default window it is within 1 %
// whenever the intervals within a block of 40 spread by no more than the
// window's mean interval (±50 % jitter, or a rate change of up to ×2
// either way). Tested differentially against the exact window (rapid,
// realistic sequences: jitter up to ±40 %, drift, regime changes, pauses,
// resets; 4 runs of 20,000 cases): largest error 0.83 % for W >= 100,
// 1.53 % below; on gossip-round arrivals (heartbeats seen after 1, 2, 3,
// ... rounds of 300 ms) 0.85 % at W = 1000. Windows of 26 to 99 intervals
// have blocks of 2 to 4, where two neighbours far apart already cost more
// than 1 % (up to 5 % measured on gossip rounds at W = 26); the
// bound above still holds.
//
// Times are stored as nanoseconds since the detector's first time (its
// epoch), which keeps the monotonic clock reading of the times passed in
// and leaves windows without pointers.
//
// # Per-node state: Detector, Node, Window
//
// A [Detector] keeps one map entry per node holding a [Node] by value: the
// window, the verdict and the time of death in 104 bytes without pointers
// (so the garbage collector does not scan the map). Measured with
// Detector[uint64] at 10,000 nodes after 2,000 heartbeats each: 193 heap
// bytes per node, map slots included (upstream's layout: 8,343).
//
// An owner that already keeps a struct per node can embed a [Node] (or
// just a [Window]) in it instead, and call its methods with one shared
// [Model] (from [NewModel]): the same rules, 104 bytes per node, no map.
// The Detector is exactly that, over a map.
//
// At 10,000 nodes in steady state (go test -bench . -benchmem), on a
// shared 2-core AMD EPYC: ReportHeartbeat 38 ns, Phi 60 ns, UpdateLiveness
// 43 ns per node, GarbageCollect 0.28 ms per scan, and no allocation
// (upstream's layout: 35 ns, 30 ns, 43 ns). Phi sums up to 25 blocks.
//
// # Lifecycle of a node
//
//	ReportHeartbeat ──► window (intervals, last heartbeat)
//	UpdateLiveness  ──► live   (phi <= threshold)
//	                └─► dead   (otherwise; time of death recorded once, window cleared)
//	MarkDead        ──► dead   (an outside verdict: the same as phi crossing the threshold)
//	dead for > grace/2  ──► scheduled for deletion (callers stop advertising it)
//	dead for >= grace   ──► returned by GarbageCollect and forgotten
//
// A dead node's window is cleared on every UpdateLiveness while it stays
// dead, but its last heartbeat time is kept, so it becomes live again only
// after fresh heartbeats arrive close enough together. Coming back to life
// erases the time of death: a later death restarts the grace period.
//
// [Detector.MarkDead] takes a verdict from outside, such as a peer's death
// notice: the node is dead at once with time of death now (kept if it was
// already dead) and its window cleared, exactly as if its phi had crossed
// the threshold at now; a heartbeat reported later judges it afresh.
//
// # Time and concurrency
//
// The detector never reads the clock: every method that depends on time
// takes now, which callers must pass non-decreasing (a time before the last
// heartbeat counts as zero elapsed time, as Rust's saturating Instant
// arithmetic does). It starts no goroutines and uses no randomness. A
// [Detector] is not safe for concurrent use; its owner serializes calls.
package failuredetector
