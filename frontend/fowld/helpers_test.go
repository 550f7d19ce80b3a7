package fowld

import (
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Copies of session's test helpers (session_test.go), until the shared
// test helpers exist.

// echoDaemon listens on a free loopback port and echoes every connection.
func echoDaemon(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// checkNoLeaks fails the test if goroutines started during it outlive it
// and the cleanups registered after this one (which run first).
func checkNoLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for err := goleak.Find(ignore); err != nil; err = goleak.Find(ignore) {
			if time.Now().After(deadline) {
				t.Error(err)
				return
			}
		}
	})
}
