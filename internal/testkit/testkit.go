// Package testkit holds the test helpers that gander's packages share: a
// goroutine leak check and echo servers. It is a leaf (the standard library
// and goleak only), so that a test anywhere in the tree can use it.
package testkit

import (
	"bufio"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// leakDeadline is how long goroutines started during a test may take to
// end once its cleanups have run: they are told to stop, not waited for.
const leakDeadline = 10 * time.Second

// CheckNoLeaks fails the test if goroutines started during it outlive it
// and the cleanups registered after this call (which run first). Call it
// first in the test, before anything it should see as started.
func CheckNoLeaks(t testing.TB) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		deadline := time.Now().Add(leakDeadline)
		for err := goleak.Find(ignore); err != nil; err = goleak.Find(ignore) {
			if time.Now().After(deadline) {
				t.Error(err)
				return
			}
		}
	})
}

// Goroutines returns the stacks of the running goroutines whose stack
// mentions any of frames (such as "forwards.(*Forwarder)."), separated by
// blank lines; "" if there are none. Unlike CheckNoLeaks it looks once,
// now, and only at the code named.
func Goroutines(frames ...string) string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, f := range frames {
			if strings.Contains(g, f) {
				found = append(found, g)
				break
			}
		}
	}
	return strings.Join(found, "\n\n")
}

// EchoServer is a TCP server on 127.0.0.1 that sends back whatever each
// connection sends, and half-closes the connection when its sender does. It
// returns the port. When the test ends it stops accepting, closes the
// connections and waits for them.
func EchoServer(t testing.TB) int {
	t.Helper()
	return serve(t, func(c net.Conn) {
		io.Copy(c, c)
		c.(*net.TCPConn).CloseWrite()
	})
}

// UpperEchoServer is a TCP server on 127.0.0.1 that answers every line in
// upper case. It returns the port, and stops as EchoServer does.
func UpperEchoServer(t testing.TB) int {
	t.Helper()
	return serve(t, func(c net.Conn) {
		s := bufio.NewScanner(c)
		for s.Scan() {
			io.WriteString(c, strings.ToUpper(s.Text())+"\n")
		}
	})
}

// serve runs handle for every connection to a new loopback listener until
// the test ends.
func serve(t testing.TB, handle func(net.Conn)) int {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
		wg    sync.WaitGroup
	)
	accepting := make(chan struct{})
	go func() {
		defer close(accepting)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
				c.Close()
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-accepting
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().(*net.TCPAddr).Port
}
