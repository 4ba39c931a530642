package chitchat

import (
	"os"
	"strings"
)

// In a test binary run by go test, and only there, the zstd codecs are built
// at package initialization, outside any testing/synctest bubble: their
// internal pools are channels, and a channel created inside one bubble (by
// the first delta compressed there) is fatal to use from any other bubble or
// from outside. Elsewhere they are built on first use (deltacodec.go).
func init() {
	if underGoTest(os.Args[1:]) {
		warmZstd()
	}
}

// underGoTest reports whether args are those go test gives a test binary: it
// always passes -test.paniconexit0 and -test.timeout. (testing.Testing says
// the same, but importing testing adds about 280 KB to every binary that
// imports this package, and a Go binary's image ends up mapped nearly whole.)
func underGoTest(args []string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "-test.") {
			return true
		}
	}
	return false
}
