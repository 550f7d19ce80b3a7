package dilation

import (
	"encoding/json"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A Follower flooded with "reconnect" starts at most one generation per
// minGenerationInterval (the first at once): each generation listens, dials the relay and up to
// transit.MaxPeerHints addresses the peer chose, and answers through the
// mailbox, so a peer must not make it do that as fast as it can send.
// (With no relay the probe before each generation is immediate: the case a
// loopback relay comes close to.)
func TestReconnectFloodIsRateLimited(t *testing.T) {
	mb := newFakeMailbox()
	c := startAsFollower(t, mb, Config{NoDirect: true})
	agreed := make(chan int)
	go func() {
		n := 0
		deadline := time.After(1500 * time.Millisecond)
		for {
			select {
			case msg := <-mb.fromGander:
				if strings.Contains(string(msg), `"reconnecting"`) {
					n++
				}
			case <-deadline:
				agreed <- n
				return
			}
		}
	}()
	const flood = 2000
	start := time.Now()
	for range flood {
		mb.send(l1Message{Type: "reconnect"})
	}
	got := <-agreed
	elapsed := time.Since(start)
	// One at once, then one per interval; and at least one, as an honest
	// Leader's reconnect must not be lost.
	most := 1 + int(elapsed/minGenerationInterval) + 1
	if got > most || got == 0 {
		t.Fatalf("%d reconnects in %v made gander start %d generations, want 1 to %d",
			flood, elapsed.Round(time.Millisecond), got, most)
	}
	t.Logf("%d reconnects in %v: %d generations started", flood, elapsed.Round(time.Millisecond), got)
	if g := c.Status().Generation; g > most+1 {
		t.Fatalf("generation %d after the flood, want at most %d", g, most+1)
	}
}

// A peer that connects and at once says "reconnect", over and over, gets
// the same one new generation per minGenerationInterval: the Follower
// abandons the first connection at once (an honest Leader's reconnect is
// not delayed) and the next one only once the interval has passed since.
func TestReconnectOnEveryConnectionWaits(t *testing.T) {
	p := dialHostile(t, Config{Side: sideLow})
	if !p.leader {
		t.Fatal("the peer should lead")
	}
	abandoned := func(conn net.Conn) <-chan time.Time {
		closed := make(chan time.Time, 1)
		go func() {
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, conn)
			closed <- time.Now()
		}()
		return closed
	}
	reconnect, _ := json.Marshal(l1Message{Type: "reconnect"})
	start := time.Now()
	first := abandoned(p.conn)
	p.mb.toGander <- reconnect
	if at := <-first; at.Sub(start) > 500*time.Millisecond {
		t.Fatalf("gander abandoned its first connection %v after the reconnect, want at once", at.Sub(start))
	}
	// gander agrees ("reconnecting", hints); the peer connects again and
	// asks again.
	port := p.mb.ganderHintPort(t)
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if scriptLeader(t, conn, hostileKey) == nil {
		t.FailNow()
	}
	second := abandoned(conn)
	// The reconnects below are about this connection: send them once
	// gander uses it (the fake mailbox is faster than the handshake; a
	// reconnect that comes before is one about the connection before).
	for deadline := time.Now().Add(3 * time.Second); p.gander.Status().State != Connected; {
		if time.Now().After(deadline) {
			t.Fatalf("gander never took the second connection: %+v", p.gander.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	for range 100 {
		p.mb.toGander <- reconnect
	}
	at := <-second
	if after := at.Sub(start); after < minGenerationInterval || after > 3*time.Second {
		t.Fatalf("gander abandoned its second connection %v after the first reconnect, want %v to 3s",
			after.Round(time.Millisecond), minGenerationInterval)
	}
}
