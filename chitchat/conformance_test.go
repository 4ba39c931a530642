package chitchat

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// The conformance suite of the protocol lives in the repository's top-level
// testdata/ (see testdata/README.md): language-neutral files another
// implementation can run with a runner of its own.
//
//   - testdata/wire/*.txt: wire vectors, a hex datagram and its decoded
//     message as JSON, or the reason the decoder refuses it; sealed
//     datagrams built by an independent implementation of the seal; node
//     refs, state hashes and bucket summaries computed from their
//     definitions (conformance_wire_test.go);
//   - testdata/scenarios/*.txt: protocol scenarios, scripts of commands
//     ("add-node a push", "a set k=v", "a gossips with b", "forge c->b",
//     "deliver", "advance 5s", "tick a", "b's view of a") and their
//     expected output, run here over the Engine (conformance_env_test.go).
//
// The files are github.com/cockroachdb/datadriven files. When the protocol
// changes on purpose, regenerate the expectations and review the diff:
//
//	go test ./chitchat/ -run 'TestConformance' -rewrite
//	git diff testdata/

func TestConformanceScenarios(t *testing.T) {
	datadriven.Walk(t, "../testdata/scenarios", func(t *testing.T, path string) {
		env := newScenarioEnv()
		datadriven.RunTest(t, path, env.handle)
	})
}

func TestConformanceWire(t *testing.T) {
	datadriven.Walk(t, "../testdata/wire", func(t *testing.T, path string) {
		datadriven.RunTest(t, path, confHandleWire)
	})
}
