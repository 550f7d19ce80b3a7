package dilation

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gander-pair/gander/transit"
)

// pairingRelay is a transit relay in the test process, as the real one
// pairs connections: by the token of their "please relay TOKEN for side
// SIDE" line, two different sides. It can suffer an outage: every
// connection is dropped and new ones are refused (its port closed) for a
// while.
type pairingRelay struct {
	t    testing.TB
	addr string

	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]struct{}
	waiting map[string]pendingRelay // by token
	wg      sync.WaitGroup
}

type pendingRelay struct {
	side string
	conn net.Conn
}

// relayedEcho pairs two peers that meet only through a pairing relay
// (which the test may take down), serves "echo" on the second and opens
// an echo subchannel on the first.
func relayedEcho(t testing.TB) (relay *pairingRelay, a *Conn, sc *Subchannel) {
	t.Helper()
	relay = startPairingRelay(t)
	cfg := Config{TransitRelay: "tcp:" + relay.addr, NoDirect: true}
	a, b := pair(t, cfg, cfg)
	echo(t, b, "echo")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sc, err := a.Open(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	return relay, a, sc
}

func startPairingRelay(t testing.TB) *pairingRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &pairingRelay{t: t, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}, waiting: map[string]pendingRelay{}}
	r.serve(ln)
	t.Cleanup(func() {
		r.down()
		r.wg.Wait()
	})
	return r
}

func (r *pairingRelay) serve(ln net.Listener) {
	r.mu.Lock()
	r.ln = ln
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conns[c] = struct{}{}
			r.mu.Unlock()
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				r.pair(c)
			}()
		}
	}()
}

func (r *pairingRelay) pair(c net.Conn) {
	br := bufio.NewReaderSize(c, 256)
	line, err := br.ReadString('\n')
	fields := strings.Fields(line)
	if err != nil || len(fields) != 6 {
		c.Close()
		return
	}
	token, side := fields[2], fields[5]
	r.mu.Lock()
	other, ok := r.waiting[token]
	if !ok || other.side == side {
		r.waiting[token] = pendingRelay{side, c}
		r.mu.Unlock()
		return
	}
	delete(r.waiting, token)
	r.mu.Unlock()
	io.WriteString(c, "ok\n")
	io.WriteString(other.conn, "ok\n")
	go func() {
		io.Copy(other.conn, br)
		other.conn.Close()
		c.Close()
	}()
	io.Copy(c, other.conn)
	other.conn.Close()
	c.Close()
}

// down drops every connection and closes the port.
func (r *pairingRelay) down() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	for c := range r.conns {
		c.Close()
	}
	clear(r.conns)
	clear(r.waiting)
}

// outage takes the relay down for d and brings it back on the same port,
// returning when it is back.
func (r *pairingRelay) outage(d time.Duration) {
	r.down()
	time.Sleep(d)
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatalf("relay back on %s: %v", r.addr, err)
	}
	r.serve(ln)
}

// echoProbe writes single bytes on an echo subchannel and notices their
// echoes, for measuring when an open subchannel carries data again.
type echoProbe struct {
	sc     *Subchannel
	echoed chan struct{} // one token per read that returned data
	failed chan error
}

func newEchoProbe(sc *Subchannel) *echoProbe {
	p := &echoProbe{sc: sc, echoed: make(chan struct{}, 1), failed: make(chan error, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := sc.Read(buf); err != nil {
				p.failed <- err
				return
			}
			select {
			case p.echoed <- struct{}{}:
			default:
			}
		}
	}()
	return p
}

// echoesWithin forgets the echoes so far, then writes a byte every 10 ms
// until an echo comes back, and returns how long that took.
func (p *echoProbe) echoesWithin(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	select {
	case <-p.echoed:
	default:
	}
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(limit)
	for {
		if _, err := p.sc.Write([]byte{'x'}); err != nil {
			t.Fatalf("writing: %v", err)
		}
		select {
		case <-p.echoed:
			return time.Since(start)
		case err := <-p.failed:
			t.Fatalf("reading the echo: %v", err)
		case <-tick.C:
		case <-deadline:
			t.Fatalf("no echo within %v", limit)
		}
	}
}

// The relay goes away for longer than the first reconnection attempt
// takes to fail; both sides keep trying and the open subchannel carries
// on soon after it returns (the reference, and gander before, never
// tried again).
func TestReconnectsAfterLongRelayOutage(t *testing.T) {
	relay, a, sc := relayedEcho(t)
	defer sc.Close()
	probe := newEchoProbe(sc)
	probe.echoesWithin(t, 5*time.Second)
	for _, outage := range []time.Duration{100 * time.Millisecond, 1500 * time.Millisecond} {
		time.Sleep(100 * time.Millisecond) // the last echoes come back
		relay.outage(outage)
		took := probe.echoesWithin(t, 5*time.Second)
		t.Logf("outage %v: the open subchannel echoed %v after the relay returned; status %+v", outage, took.Round(time.Millisecond), a.Status())
	}
	if st := a.Status(); st.State != Connected || st.Outage == 0 {
		t.Errorf("status after the outages: %+v", st)
	}
}

// While the link is down the status says since when, how many attempts
// failed and why; once back, how long it was down.
func TestStatusCountsFailedAttempts(t *testing.T) {
	relay := startPairingRelay(t)
	cfg := Config{TransitRelay: "tcp:" + relay.addr, NoDirect: true}
	a, b := pair(t, cfg, cfg)
	if !a.Status().Leader {
		a = b // the Follower waits for the Leader's word, and makes no attempts meanwhile
	}
	relay.down()
	var seen Status
	if !eventually(5*time.Second, func() bool {
		seen = a.Status()
		return seen.State == Reconnecting && seen.Attempts >= 3 && seen.LastFailure != nil && !seen.Since.IsZero()
	}) {
		t.Fatalf("status while the relay is down: %+v", seen)
	}
	var attempt *AttemptError
	if !errors.As(seen.LastFailure, &attempt) || !attempt.Relay || attempt.Via != "relay "+relay.addr {
		t.Errorf("LastFailure %#v is not an *AttemptError naming the relay", seen.LastFailure)
	}
	var opErr *net.OpError
	if !errors.As(seen.LastFailure, &opErr) {
		t.Errorf("LastFailure %v (%T) is not the dial's *net.OpError", seen.LastFailure, seen.LastFailure)
	}
	downFor := time.Since(seen.Since)
	ln, err := net.Listen("tcp", relay.addr)
	if err != nil {
		t.Fatal(err)
	}
	relay.serve(ln)
	if !eventually(10*time.Second, func() bool { seen = a.Status(); return seen.State == Connected }) {
		t.Fatalf("no reconnection: %+v", seen)
	}
	if seen.Outage < downFor || seen.Attempts != 0 || seen.LastFailure != nil || !seen.Since.IsZero() {
		t.Errorf("status once back: %+v (down for at least %v)", seen, downFor)
	}
}

// A connection that reaches the relay but whose partner never comes is
// abandoned, with ErrNoPartnerAtRelay, rather than held.
func TestRelayWaitWithoutPartnerEnds(t *testing.T) {
	relay := startPairingRelay(t)
	conn, err := net.Dial("tcp", relay.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waiting := make(chan struct{})
	var err2 error
	within(t, 3*time.Second, "the relay wait", func() {
		_, err2 = handshakeVia(conn, true, l2Key, transit.RelayHandshake(l2Key, sideHigh), func() { close(waiting) }, 300*time.Millisecond)
	})
	select {
	case <-waiting:
	default:
		t.Error("atRelay was not called")
	}
	if !errors.Is(err2, ErrNoPartnerAtRelay) {
		t.Fatalf("err = %v, want ErrNoPartnerAtRelay", err2)
	}
}

// A Leader busy receiving data whose PONGs wait behind it keeps the link:
// the data proves the peer alive.
func TestLeaderKeepsABusyLink(t *testing.T) {
	// Silence would drop the link after 2 intervals (400 ms); DATA comes
	// every 20 ms, so only a loaded machine's pause of 20 times that
	// could look like silence.
	p := dialHostile(t, Config{PingInterval: 200 * time.Millisecond})
	if p.leader {
		t.Fatal("gander should lead")
	}
	l, err := p.gander.Listen("bulk")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			sc, err := l.Accept(context.Background())
			if err != nil {
				return
			}
			go io.Copy(io.Discard, sc)
		}
	}()
	peerGone := p.discardUntilGone()
	scid := p.peerSCID(0)
	if err := p.send(openRecord{scid: scid, subprotocol: "bulk"}); err != nil {
		t.Fatal(err)
	}
	// DATA but never a PONG: as if the PONGs queued behind it.
	payload := make([]byte, 1024)
	p.keepSending(t, func(int) record { return dataRecord{scid: scid, payload: payload} })
	select {
	case <-peerGone:
		t.Fatal("gander, leading, dropped a link on which data kept arriving because no PONG came")
	case <-time.After(2 * time.Second):
	}
	if st := p.gander.Status(); st.State != Connected || st.Generation != 1 {
		t.Errorf("status %+v", st)
	}
}

// A Follower told to reconnect while the relay is unreachable does not
// agree ("reconnecting") until the relay accepts connections again: a
// reference Leader makes its one attempt of the new generation then.
func TestFollowerWaitsForTheRelayBeforeReconnecting(t *testing.T) {
	relay := startPairingRelay(t)
	mb := newFakeMailbox()
	startAsFollower(t, mb, Config{TransitRelay: "tcp:" + relay.addr, NoDirect: true})
	relay.down()
	// The leader gives up on the first generation at once.
	mb.send(l1Message{Type: "reconnect"})
	deadline := time.After(1500 * time.Millisecond)
	for waiting := true; waiting; {
		select {
		case msg := <-mb.fromGander:
			if strings.Contains(string(msg), `"reconnecting"`) {
				t.Fatal("gander agreed to reconnect while the relay was down")
			}
		case <-deadline:
			waiting = false
		}
	}
	ln, err := net.Listen("tcp", relay.addr)
	if err != nil {
		t.Fatal(err)
	}
	relay.serve(ln)
	deadline = time.After(3 * time.Second)
	for {
		select {
		case msg := <-mb.fromGander:
			if strings.Contains(string(msg), `"reconnecting"`) {
				return
			}
		case <-deadline:
			t.Fatal("gander did not agree to reconnect once the relay was back")
		}
	}
}
