package dilation

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gander-pair/gander/transit"
)

// What a hostile peer can make the manager and the connector hold: every
// test floods one thing and checks that what gander keeps stays bounded.

// An OPEN for a subprotocol nobody listens for is refused with CLOSE once
// its data goes over what an unclaimed subchannel may buffer, or once
// nobody claimed it for unclaimedOpenTimeout; its data is dropped.
func TestUnlistenedSubprotocolIsRefused(t *testing.T) {
	p := dialHostile(t, Config{})
	recs := p.collect(t)
	big := bytes.Repeat([]byte{'x'}, 60000)
	var flood []record
	flood = append(flood, openRecord{scid: p.peerSCID(0), subprotocol: "nobody"})
	for range 20 { // 1.2 MB for a subchannel nobody reads
		flood = append(flood, dataRecord{scid: p.peerSCID(0), payload: big})
	}
	if err := p.send(flood...); err != nil {
		t.Fatal(err)
	}
	waitForClose(t, recs, p.peerSCID(0), 2*time.Second)
	if !eventually(2*time.Second, func() bool { st := p.state(); return st.subchannels == 0 && st.pending == 0 }) {
		t.Fatalf("gander still holds the refused subchannel: %+v", p.state())
	}

	// A small one waits for a listener, for a while only.
	start := time.Now()
	if err := p.send(openRecord{scid: p.peerSCID(1), subprotocol: "nobody"}, dataRecord{scid: p.peerSCID(1), payload: []byte("hi")}); err != nil {
		t.Fatal(err)
	}
	waitForClose(t, recs, p.peerSCID(1), unclaimedOpenTimeout+3*time.Second)
	if waited := time.Since(start); waited < unclaimedOpenTimeout/2 {
		t.Errorf("refused after %v, before a listener had a chance", waited)
	}
	if st := p.state(); st.subchannels != 0 || st.pending != 0 {
		t.Fatalf("gander still holds the refused subchannel: %+v", st)
	}
}

// A subprotocol name is short: a long one is refused, not kept.
func TestLongSubprotocolNameIsRefused(t *testing.T) {
	p := dialHostile(t, Config{})
	recs := p.collect(t)
	long := string(bytes.Repeat([]byte{'n'}, 1<<20))
	if err := p.send(openRecord{scid: p.peerSCID(0), subprotocol: long}); err != nil {
		t.Fatal(err)
	}
	waitForClose(t, recs, p.peerSCID(0), 2*time.Second)
	if st := p.state(); st.subchannels != 0 || st.pending != 0 {
		t.Fatalf("gander holds a subchannel for a 1 MiB name: %+v", st)
	}
}

// Subchannels waiting in a listener's queue when it closes are refused,
// not kept.
func TestClosedListenerRefusesItsQueue(t *testing.T) {
	p := dialHostile(t, Config{})
	recs := p.collect(t)
	l, err := p.gander.Listen("queued")
	if err != nil {
		t.Fatal(err)
	}
	var opens []record
	for i := range 3 {
		opens = append(opens, openRecord{scid: p.peerSCID(i), subprotocol: "queued"})
	}
	p.send(opens...)
	if !eventually(2*time.Second, func() bool { return p.state().subchannels == 3 }) {
		t.Fatalf("the OPENs did not arrive: %+v", p.state())
	}
	l.Close()
	for i := range 3 {
		waitForClose(t, recs, p.peerSCID(i), 2*time.Second)
	}
	if st := p.state(); st.subchannels != 0 {
		t.Fatalf("gander still holds %d subchannels nobody can accept", st.subchannels)
	}
}

// Floods of OPENs, for a subprotocol nobody listens for and for one whose
// listener never accepts, from a peer that reads nothing back: gander
// holds a bounded number of subchannels and of refusals.
func TestOpenFloodIsBounded(t *testing.T) {
	p := dialHostile(t, Config{})
	if _, err := p.gander.Listen("never-accepted"); err != nil {
		t.Fatal(err)
	}
	const n = 6000
	next := 0
	for _, proto := range []string{"nobody", "never-accepted"} {
		var batch []record
		for range n {
			batch = append(batch, openRecord{scid: p.peerSCID(next), subprotocol: proto})
			next++
			if len(batch) == 500 {
				if err := p.send(batch...); err != nil {
					t.Fatal(err)
				}
				batch = batch[:0]
			}
		}
	}
	// Everything sent has been handled once the manager has seen the last
	// sequence number.
	m := p.gander.m
	if !eventually(5*time.Second, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.highestSeen == int64(p.nextSeq-1)
	}) {
		t.Fatal("gander did not handle the flood")
	}
	st := p.state()
	t.Logf("after %d OPENs: %+v", 2*n, st)
	if st.pending > maxUnclaimedOpens {
		t.Errorf("%d unclaimed subchannels held, over %d", st.pending, maxUnclaimedOpens)
	}
	if st.subchannels > maxPeerSubchannels {
		t.Errorf("%d subchannels held, over %d", st.subchannels, maxPeerSubchannels)
	}
	if st.unacked > maxUnansweredRefusals+1 {
		t.Errorf("%d records wait for the peer's ack, over %d refusals", st.unacked, maxUnansweredRefusals)
	}
}

// A PING flood from a peer that reads next to nothing queues one PONG,
// not one per PING.
func TestPingFloodKeepsOnePong(t *testing.T) {
	p := dialHostileWith(t, Config{}, 4<<10)
	l, err := p.gander.Listen("marker")
	if err != nil {
		t.Fatal(err)
	}
	// The peer reads 64 bytes every 10 ms: gander's writer stays blocked
	// all the same, and the peer's kernel stays able to take gander's
	// ACKs. A peer that reads nothing at all, its 8 KiB receive queue
	// full, drops them as out of its zero window; a window update of
	// gander's lost that way (gander momentarily slow to read, on a busy
	// machine) left the peer's own flood in zero-window probing, its
	// backoff doubling, for longer than this test waits: gander idle,
	// reading, its socket empty (ss showed it; 1 run in 40 under load).
	trickle := make(chan struct{})
	t.Cleanup(func() { close(trickle) })
	go func() {
		buf := make([]byte, 64)
		for {
			select {
			case <-trickle:
				return
			case <-time.After(10 * time.Millisecond):
			}
			p.conn.SetReadDeadline(time.Now().Add(time.Millisecond))
			if _, err := p.conn.Read(buf); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				return
			}
		}
	}()
	batch := make([]record, 10000)
	for i := range batch {
		batch[i] = pingRecord{[4]byte{byte(i), byte(i >> 8), 1, 2}}
	}
	for range 30 {
		if err := p.send(batch...); err != nil {
			t.Fatal(err)
		}
	}
	// Once the marker is accepted, every PING before it has been handled.
	if err := p.send(openRecord{scid: p.peerSCID(0), subprotocol: "marker"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := l.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	m := p.gander.m
	m.mu.Lock()
	q := m.outbox
	m.mu.Unlock()
	q.mu.Lock()
	pongs := 0
	for _, r := range q.items {
		if _, ok := r.(pongRecord); ok {
			pongs++
		}
	}
	if q.pong != nil {
		pongs++
	}
	bytes := q.bytes
	q.mu.Unlock()
	t.Logf("after 300000 PINGs: %d PONGs queued, outbox %d bytes", pongs, bytes)
	if pongs > 1 {
		t.Fatalf("%d PONGs queued for a peer that reads nothing", pongs)
	}
}

// A Follower drops a connection on which the Leader has gone silent.
func TestFollowerDropsSilentLink(t *testing.T) {
	p := dialHostile(t, Config{Side: sideLow, PingInterval: 100 * time.Millisecond})
	if !p.leader {
		t.Fatal("the peer should lead")
	}
	// The peer says nothing more (it does read: its socket is healthy).
	closed := make(chan error, 1)
	go func() {
		p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.Copy(io.Discard, p.conn)
		closed <- err
	}()
	select {
	case err := <-closed:
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("gander, following, kept a silent connection for 5 s")
		}
	case <-time.After(6 * time.Second):
		t.Fatal("no end")
	}
	if !eventually(2*time.Second, func() bool { return p.gander.Status().State == Reconnecting }) {
		t.Errorf("status %v after dropping the link, want reconnecting", p.gander.Status().State)
	}
}

// Subchannel ids: the peer's must have its parity (Leader odd, Follower
// even, never 0) and be new; DATA and CLOSE for a subchannel the peer
// closed, or never opened, create nothing and deliver nothing.
func TestPeerSubchannelIDRules(t *testing.T) {
	p := dialHostile(t, Config{}) // gander leads: its ids are odd
	l, err := p.gander.Listen("sink")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan *Subchannel, 16)
	go func() {
		for {
			sc, err := l.Accept(context.Background())
			if err != nil {
				return
			}
			accepted <- sc
		}
	}()
	next := func() *Subchannel {
		t.Helper()
		select {
		case sc := <-accepted:
			return sc
		case <-time.After(3 * time.Second):
			t.Fatal("nothing accepted")
			return nil
		}
	}
	p.send(
		openRecord{scid: 1, subprotocol: "sink"}, // gander's parity: gander's next id
		openRecord{scid: 0, subprotocol: "sink"}, // the old control channel
		dataRecord{scid: 6, payload: []byte("no OPEN")},
		openRecord{scid: 2, subprotocol: "sink"},
		dataRecord{scid: 2, payload: []byte("a")},
		closeRecord{scid: 2},
		dataRecord{scid: 2, payload: []byte("after CLOSE")},
	)
	sc := next()
	if sc.scid != 2 {
		t.Fatalf("accepted subchannel %d, want 2", sc.scid)
	}
	got, err := io.ReadAll(sc)
	if err != nil || string(got) != "a" {
		t.Fatalf("read %q, %v; want just %q", got, err, "a")
	}
	sc.Close()
	// gander's own next subchannel is still its own.
	mine, err := p.gander.Open(context.Background(), "mine")
	if err != nil {
		t.Fatal(err)
	}
	if mine.scid != 1 || p.gander.m.subchannelFor(1) != mine {
		t.Fatalf("gander's first subchannel got id %d / was taken", mine.scid)
	}
	p.send(
		openRecord{scid: 2, subprotocol: "sink"}, // reused
		dataRecord{scid: 2, payload: []byte("reused")},
		openRecord{scid: 4, subprotocol: "sink"},
	)
	if sc := next(); sc.scid != 4 {
		t.Fatalf("accepted subchannel %d, want 4 (2 is used up)", sc.scid)
	}
	select {
	case sc := <-accepted:
		t.Fatalf("also accepted subchannel %d", sc.scid)
	case <-time.After(100 * time.Millisecond):
	}
	for _, scid := range []uint32{0, 2, 6} {
		if p.gander.m.subchannelFor(scid) != nil {
			t.Errorf("a subchannel %d exists", scid)
		}
	}
}

// During the race, strangers connecting to the listener and saying
// nothing are held a few at a time, briefly; the others are closed.
func TestInboundHandshakesAreBounded(t *testing.T) {
	events := make(chan transit.Event, 1)
	c, hints := startConnector(1, false, hostileKey, sideLow, nil, false,
		slog.New(slog.DiscardHandler), events)
	defer func() { c.Stop(); c.Wait() }()
	port := hints[0].Port
	const n = 40
	var closedByGander atomic.Int32
	done := make(chan struct{}, n)
	for range n {
		conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		go func() {
			defer func() { done <- struct{}{} }()
			conn.SetReadDeadline(time.Now().Add(time.Second))
			_, err := io.Copy(io.Discard, conn)
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				closedByGander.Add(1)
			}
		}()
	}
	for range n {
		<-done
	}
	if held := n - int(closedByGander.Load()); held > transit.MaxInboundHandshakes {
		t.Fatalf("%d silent inbound connections held for a second, over %d", held, transit.MaxInboundHandshakes)
	}
}

// A peer's hints are dialled up to a limit per generation.
func TestPeerHintsAreBounded(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var dialled atomic.Int32
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			dialled.Add(1)
			defer conn.Close()
		}
	}()
	events := make(chan transit.Event, 1)
	c, _ := startConnector(1, false, hostileKey, sideLow, nil, true,
		slog.New(slog.DiscardHandler), events)
	defer func() { c.Stop(); c.Wait() }()
	port := ln.Addr().(*net.TCPAddr).Port
	var hs []transit.Hint
	for range 500 {
		hs = append(hs, transit.Hint{Host: "127.0.0.1", Port: port})
	}
	c.AddHints(hs[:250])
	c.AddHints(hs[250:])
	time.Sleep(500 * time.Millisecond)
	if n := dialled.Load(); n > transit.MaxPeerHints {
		t.Fatalf("dialled %d of the peer's hints, over %d", n, transit.MaxPeerHints)
	}
}

// Stopping frees everything the peer made gander hold.
func TestStopFreesPeerState(t *testing.T) {
	p := dialHostile(t, Config{})
	if _, err := p.gander.Listen("never-accepted"); err != nil {
		t.Fatal(err)
	}
	var batch []record
	for i := range 50 {
		batch = append(batch, openRecord{scid: p.peerSCID(i), subprotocol: "nobody"})
		batch = append(batch, openRecord{scid: p.peerSCID(i + 50), subprotocol: "never-accepted"})
	}
	p.send(batch...)
	m := p.gander.m
	eventually(2*time.Second, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.highestSeen == int64(p.nextSeq-1)
	})
	p.gander.Close()
	st := p.state()
	m.mu.Lock()
	listeners := len(m.listeners)
	m.mu.Unlock()
	if st.subchannels != 0 || st.pending != 0 || st.unacked != 0 || listeners != 0 {
		t.Fatalf("after Close gander still holds %+v, %d listeners", st, listeners)
	}
}

// A peer that reads everything but acknowledges nothing cannot make gander
// keep more than a bounded amount of sent data for resending.
func TestUnackedDataIsBounded(t *testing.T) {
	p := dialHostile(t, Config{})
	go io.Copy(io.Discard, p.conn) // reads, never acks
	sc, err := p.gander.Open(context.Background(), "upload")
	if err != nil {
		t.Fatal(err)
	}
	const total = 3 * maxUnackedBytes
	wrote := make(chan int64, 1)
	go func() {
		n, _ := sc.Write(make([]byte, total))
		wrote <- int64(n)
	}()
	time.Sleep(1500 * time.Millisecond)
	m := p.gander.m
	m.mu.Lock()
	held := m.unackedBytes
	m.mu.Unlock()
	t.Logf("holding %d MiB for a peer that never acks", held>>20)
	if held > maxUnackedBytes+2*maxDataPayload {
		t.Fatalf("holding %d bytes unacknowledged, over %d", held, maxUnackedBytes)
	}
	p.gander.Close()
	<-wrote
}
