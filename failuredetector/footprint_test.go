package failuredetector

import (
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/gossipkit/chitchat-go/internal/race"
)

// TestNodeLayout pins the per-node sizes that the memory figures of the
// package doc rest on, and that neither type holds a pointer (so maps of
// them are not scanned by the garbage collector).
func TestNodeLayout(t *testing.T) {
	tests := []struct {
		name string
		typ  reflect.Type
		size uintptr
	}{
		{"Window", reflect.TypeFor[Window](), 96},
		{"Node", reflect.TypeFor[Node](), 104},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.typ.Size(); got != tt.size {
				t.Errorf("size = %d bytes, want %d", got, tt.size)
			}
			if path := pointerIn(tt.typ); path != "" {
				t.Errorf("holds a pointer at %s", path)
			}
		})
	}
}

// pointerIn returns the path of a field of typ that holds a pointer, or "".
func pointerIn(typ reflect.Type) string {
	switch typ.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return ""
	case reflect.Array:
		if p := pointerIn(typ.Elem()); p != "" {
			return "[]" + p
		}
		return ""
	case reflect.Struct:
		for f := range typ.Fields() {
			if p := pointerIn(f.Type); p != "" {
				return "." + f.Name + p
			}
		}
		return ""
	default:
		return " (" + typ.String() + ")"
	}
}

// TestDetectorFootprint reports the heap a Detector[uint64] holds per node
// at 10,000 nodes after 2,000 heartbeats each (the figure of the package
// doc), and checks that it stays near the 104-byte Node plus the map's
// slot overhead.
func TestDetectorFootprint(t *testing.T) {
	nodes, reports := 10_000, footprintReports()
	perNode := heapPerNode(t, nodes, func() any {
		d := newDetector[uint64](t, DefaultConfig())
		now := t0
		for range reports {
			now = now.Add(300 * time.Millisecond)
			for id := range uint64(nodes) {
				d.ReportHeartbeat(id, now)
			}
		}
		for id := range uint64(nodes) {
			d.UpdateLiveness(id, now)
		}
		return d
	})
	t.Logf("Detector[uint64]: %.0f heap bytes per node at %d nodes after %d reports each (Node: %d bytes)",
		perNode, nodes, reports, unsafe.Sizeof(Node{}))
	if perNode > 250 {
		t.Errorf("%.0f heap bytes per node, want <= 250", perNode)
	}
}

// footprintReports is how many heartbeats each node gets before its heap is
// measured: 2,000 (past every window's fill), or 50 under the race detector,
// where the loops are 20× slower and the sizes measured do not change (a
// node's state is fixed-size once its window has its first samples).
func footprintReports() int {
	if race.Enabled {
		return 50
	}
	return 2000
}
