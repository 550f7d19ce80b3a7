package testkit

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

func dial(t *testing.T, port int) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c.(*net.TCPConn)
}

// The echo sends everything back and passes the half-close on; when the
// test ends nothing of the servers is left running.
func TestEchoServers(t *testing.T) {
	CheckNoLeaks(t)
	c := dial(t, EchoServer(t))
	io.WriteString(c, "hello\nworld")
	c.CloseWrite()
	if got, err := io.ReadAll(c); err != nil || string(got) != "hello\nworld" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	u := dial(t, UpperEchoServer(t))
	io.WriteString(u, "quiet please\n")
	if line, err := bufio.NewReader(u).ReadString('\n'); err != nil || line != "QUIET PLEASE\n" {
		t.Fatalf("upper echo = %q, %v", line, err)
	}
}

func parkedHere(stop chan struct{}) { <-stop }

func TestGoroutinesFindsTheNamedCode(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	go parkedHere(stop)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(Goroutines("testkit.parkedHere"), "parkedHere") {
		if time.Now().After(deadline) {
			t.Fatal("the parked goroutine is not found")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if left := Goroutines("no such function"); left != "" {
		t.Fatalf("found %q for a function that does not run", left)
	}
}
