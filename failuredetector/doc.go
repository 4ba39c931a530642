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
// interval) and phi <= PhiThreshold; with the defaults a node is declared
// dead about 8 mean intervals after its last heartbeat. The exact formula is
// kept from Rust because timing tests of the port depend on it.
//
// # Lifecycle of a node
//
//	ReportHeartbeat ──► window (intervals, last heartbeat)
//	UpdateLiveness  ──► live   (phi <= threshold)
//	                └─► dead   (otherwise; time of death recorded once, window cleared)
//	dead for > grace/2  ──► scheduled for deletion (callers stop advertising it)
//	dead for >= grace   ──► returned by GarbageCollect and forgotten
//
// A dead node's window is cleared on every UpdateLiveness while it stays
// dead, but its last heartbeat time is kept, so it becomes live again only
// after fresh heartbeats arrive close enough together. Coming back to life
// erases the time of death: a later death restarts the grace period.
//
// # Time and concurrency
//
// The detector never reads the clock: every method that depends on time
// takes now, which callers must pass non-decreasing (a time before the last
// heartbeat counts as zero elapsed time, as Rust's saturating Instant
// arithmetic does). It starts no goroutines and uses no randomness. A
// [Detector] is not safe for concurrent use; its owner serializes calls.
package failuredetector
