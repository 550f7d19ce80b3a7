package dilation_test

import (
	"testing"

	"github.com/gander-pair/gander/dilation"
	"github.com/gander-pair/gander/dilation/dilationtest"
)

// The package's own tests use dilationtest through these hooks (see
// PairForTests); package initialisation sets them before any test runs.
func init() {
	dilation.PairForTests = func(t testing.TB, cfgA, cfgB dilation.Config) (a, b *dilation.Conn) {
		t.Helper()
		return dilationtest.Pair(t, cfgA, cfgB)
	}
	dilation.EchoForTests = dilationtest.Echo
	dilation.SinkForTests = dilationtest.Sink
}
