package chitchat

import (
	"strconv"
	"testing"
)

// BenchmarkPublishLive measures a publication of the live-nodes watch of
// an engine holding 1,000 live nodes, read as a Server reads it: the self
// node writes a key (its max version moves, so the watch publishes), then
// the watch is published and read.
func BenchmarkPublishLive(b *testing.B) {
	e := footprintEngine(b, 1000, 0, 30, true)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := e.Set("k", strconv.Itoa(i)); err != nil {
			b.Fatal(err)
		}
		e.publishLive()
		if _, live := e.LiveNodesWatch(); len(live) != 1000 {
			b.Fatalf("%d nodes in the watch, want 1000", len(live))
		}
	}
}
