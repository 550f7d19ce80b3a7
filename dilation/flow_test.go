package dilation

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"testing"
	"time"
)

// flowSim is a sender and a receiver joined by a path of a given rate and
// round trip, stepped in fixed ticks of a fake clock: the sender sends
// what its credit allows at the path's rate, the receiver reads what
// arrives at readRate (0: at once), and WINDOWs take half a round trip
// back.
type flowSim struct {
	t        *testing.T
	now      time.Time
	w        recvWindow
	rate     float64 // bytes per second
	rtt      time.Duration
	readRate float64
	total    int64 // growth accounted by grow

	credit, sent int64
	tokens       float64
	inFlight     []flowSimEvent // data (n > 0) and BLOCKED at -n toward the receiver
	saidBlocked  int64          // the credit of the last BLOCKED
	updates      []flowSimEvent // limits toward the sender
	buffered     int64          // arrived, not read
	delivered    int64          // read by the receiver's reader

	// bottleneck: the sender sends what its credit allows at once, into
	// a queue that the path drains at rate (a relay's socket buffers),
	// rather than at the path's rate. maxWait is the longest a record
	// waited in that queue since it was last reset.
	bottleneck bool
	queue      []flowSimEvent // at: when queued; n as in inFlight
	maxWait    time.Duration
}

type flowSimEvent struct {
	at time.Time
	n  int64
}

const simTick = 100 * time.Microsecond

func newFlowSim(t *testing.T, rate float64, rtt time.Duration) *flowSim {
	now := time.Unix(1000, 0)
	return &flowSim{t: t, now: now, w: newRecvWindow(now), rate: rate, rtt: rtt, credit: initialFlowWindow}
}

func (s *flowSim) run(d time.Duration) {
	grow := func(delta int64) bool { s.total += delta; return true }
	for end := s.now.Add(d); s.now.Before(end); s.now = s.now.Add(simTick) {
		for len(s.updates) > 0 && !s.updates[0].at.After(s.now) {
			s.credit = max(s.credit, s.updates[0].n)
			s.updates = s.updates[1:]
		}
		// Whole records, as the scheduler sends them.
		// The path's rate, as a token bucket of a record or two.
		s.tokens = min(s.tokens+s.rate*simTick.Seconds(), 2*maxDataPayload)
		if s.bottleneck {
			s.stepBottleneck()
		}
		for !s.bottleneck && s.tokens >= maxDataPayload && s.sent+maxDataPayload <= s.credit {
			s.sent += maxDataPayload
			s.tokens -= maxDataPayload
			s.inFlight = append(s.inFlight, flowSimEvent{s.now.Add(s.rtt / 2), maxDataPayload})
		}
		if !s.bottleneck && s.tokens >= maxDataPayload && s.saidBlocked != s.credit {
			s.saidBlocked = s.credit
			s.inFlight = append(s.inFlight, flowSimEvent{s.now.Add(s.rtt / 2), -s.credit})
		}
		for len(s.inFlight) > 0 && !s.inFlight[0].at.After(s.now) {
			if s.inFlight[0].n < 0 {
				s.w.blocked(uint64(-s.inFlight[0].n)) // as senderBlocked
				s.inFlight = s.inFlight[1:]
				continue
			}
			if !s.w.receive(int(s.inFlight[0].n), s.now) {
				s.t.Fatalf("the sender exceeded its credit: received %d, limit %d", s.w.received, s.w.limit)
			}
			s.buffered += s.inFlight[0].n
			s.inFlight = s.inFlight[1:]
		}
		n := s.buffered
		if s.readRate > 0 {
			n = min(n, int64(s.readRate*simTick.Seconds()))
		}
		if n > 0 {
			s.buffered -= n
			s.delivered += n
			if limit, ok := s.w.consume(int(n), s.now, s.rtt, grow); ok {
				s.updates = append(s.updates, flowSimEvent{s.now.Add(s.rtt / 2), limit})
			}
		}
	}
}

// stepBottleneck is a tick of the sender and the queue in front of the
// path, in bottleneck mode.
func (s *flowSim) stepBottleneck() {
	for s.sent+maxDataPayload <= s.credit {
		s.sent += maxDataPayload
		s.queue = append(s.queue, flowSimEvent{s.now, maxDataPayload})
	}
	if s.saidBlocked != s.credit {
		s.saidBlocked = s.credit
		s.queue = append(s.queue, flowSimEvent{s.now, -s.credit})
	}
	for len(s.queue) > 0 && (s.queue[0].n < 0 || s.tokens >= float64(s.queue[0].n)) {
		e := s.queue[0]
		s.queue = s.queue[1:]
		if e.n > 0 {
			s.tokens -= float64(e.n)
			s.maxWait = max(s.maxWait, s.now.Sub(e.at))
		}
		s.inFlight = append(s.inFlight, flowSimEvent{s.now.Add(s.rtt / 2), e.n})
	}
}

// When the path queues whatever the sender sends (a sender on loopback
// next to a relay whose socket buffers hold more than the bandwidth-delay
// product), the sender is always short of credit; the window must still
// settle near the product, so that what waits in the queue, ahead of
// every other subchannel's records, is a fraction of a round trip, and
// yet the path's rate is reached. The path's rate may change: the window
// follows it down and up.
func TestFlowWindowKeepsTheQueueShort(t *testing.T) {
	for _, c := range []struct {
		rate float64
		rtt  time.Duration
	}{
		{100e6, 50 * time.Millisecond}, // the WAN benchmark's relay path
		{200e6, 50 * time.Millisecond},
		{100e6, 4 * time.Millisecond},
		{1e9, 200 * time.Microsecond}, // loopback
	} {
		bdp := c.rate * c.rtt.Seconds()
		s := newFlowSim(t, c.rate, c.rtt)
		s.bottleneck = true
		check := func(what string, rate float64) {
			t.Helper()
			s.run(3 * time.Second)
			before := s.delivered
			s.maxWait = 0
			s.run(time.Second)
			got := float64(s.delivered - before)
			bdp := rate * c.rtt.Seconds()
			// The wait allowed: the standing queue the tuning lets
			// be (two slacks), the burst one announcement lets the
			// sender send at once (an eighth of a window of the
			// round trip and that queue), and a record or two.
			slack := queueSlack(c.rtt)
			allowed := 2*slack + (c.rtt+2*slack)/8 + 2*time.Duration(float64(maxDataPayload)/rate*float64(time.Second))
			t.Logf("%v at %.0f MB/s, %v (BDP %.0f KiB): window %d KiB, %.0f MB/s, longest wait in the queue %v",
				what, rate/1e6, c.rtt, bdp/1024, s.w.size>>10, got/1e6, s.maxWait)
			if got < 0.9*rate {
				t.Errorf("%.0f MB/s with a window of %d KiB, want the path's %.0f", got/1e6, s.w.size>>10, rate/1e6)
			}
			if s.maxWait > allowed {
				t.Errorf("records waited up to %v in the queue (window %d KiB for a BDP of %.0f KiB), want at most %v",
					s.maxWait, s.w.size>>10, bdp/1024, allowed)
			}
		}
		check("starting", c.rate)
		s.rate = c.rate / 4
		check("slowed down", s.rate)
		s.rate = c.rate
		check("sped up again", s.rate)
		if s.total != s.w.size-initialFlowWindow {
			t.Fatalf("growth accounted %d, window grew by %d", s.total, s.w.size-initialFlowWindow)
		}
		_ = bdp
	}
}

// The window grows to about the bandwidth-delay product while the reader
// keeps up with the path, reaching the path's rate, and shrinks back
// once the reader is slow.
func TestFlowWindowTunesToTheBDP(t *testing.T) {
	const rate = 100e6 // 100 MB/s over 20 ms: a BDP of 2 MB
	const bdp = rate * 0.020
	s := newFlowSim(t, rate, 20*time.Millisecond)
	s.run(3 * time.Second)
	before := s.delivered
	s.run(time.Second)
	got := float64(s.delivered - before)
	if s.w.size < bdp || s.w.size > 4*bdp {
		t.Fatalf("window %d after a fast transfer, want between the BDP (%v) and 4 times it", s.w.size, bdp)
	}
	if got < 0.9*rate {
		t.Fatalf("%.0f MB/s with a window of %d KiB, want the path's %.0f", got/1e6, s.w.size>>10, rate/1e6)
	}
	if s.total != s.w.size-initialFlowWindow {
		t.Fatalf("growth accounted %d, window grew by %d", s.total, s.w.size-initialFlowWindow)
	}
	grown := s.w.size
	s.readRate = 1e6 // the reader now takes 1 MB/s
	s.run(20 * time.Second)
	if s.w.size != minFlowWindow {
		t.Fatalf("window %d after a slow reader (was %d), want it back at %d", s.w.size, grown, minFlowWindow)
	}
	if s.total != 0 {
		t.Fatalf("growth accounted %d after shrinking back, want 0", s.total)
	}
	t.Logf("grew to %d KiB for a BDP of %.0f KiB (%.0f MB/s), shrank back to %d KiB", grown>>10, bdp/1024, got/1e6, s.w.size>>10)
}

// The windows together grow no further than maxFlowWindowsTotal; the
// limit once announced never goes back.
func TestFlowWindowBounds(t *testing.T) {
	now := time.Unix(1000, 0)
	w := newRecvWindow(now)
	refuse := func(int64) bool { return false }
	last := w.limit
	for range 4096 {
		now = now.Add(time.Microsecond)
		if !w.receive(64<<10, now) {
			t.Fatal("a peer within its credit was refused")
		}
		if limit, ok := w.consume(64<<10, now, time.Millisecond, refuse); ok {
			if limit <= last {
				t.Fatalf("announced %d after %d", limit, last)
			}
			last = limit
		}
	}
	if w.size != initialFlowWindow {
		t.Fatalf("window grew to %d though growth was refused", w.size)
	}
	if w.receive(int(w.limit-w.received)+1, now) {
		t.Fatal("a byte beyond the limit was accepted")
	}
}

// The scheduler puts a small record of an idle subchannel ahead of queued
// bulk, and alternates bulk subchannels record by record.
func TestSchedulerFairness(t *testing.T) {
	var s scheduler
	a, b, c := &stream{scid: 1}, &stream{scid: 3}, &stream{scid: 5}
	big := dataRecord{scid: 1, payload: make([]byte, maxDataPayload)}
	for range 8 {
		s.enqueue(a, big)
	}
	var order []uint32
	emit := func(r record) { order = append(order, r.(dataRecord).scid) }
	s.take(1, emit, nil) // a is busy now
	big.scid = 3
	for range 8 {
		s.enqueue(b, big)
	}
	s.take(1, emit, nil)
	s.enqueue(c, dataRecord{scid: 5, payload: []byte("k")}) // a keystroke
	s.take(1, emit, nil)
	if order[len(order)-1] != 5 {
		t.Fatalf("the keystroke went out after %v, not next", order)
	}
	s.take(1<<30, emit, nil)
	if len(order) != 17 || s.bytes != 0 {
		t.Fatalf("sent %v, %d bytes left", order, s.bytes)
	}
	// After the keystroke the two bulk streams alternate.
	for i := 4; i+1 < len(order) && i < 14; i++ {
		if order[i] == order[i+1] {
			t.Fatalf("bulk streams did not alternate: %v", order)
		}
	}
}

// Credit blocks one stream only; a WINDOW lets it go on.
func TestSchedulerCredit(t *testing.T) {
	var s scheduler
	a := &stream{scid: 1, limited: true, credit: 10}
	b := &stream{scid: 3}
	s.enqueue(a, dataRecord{scid: 1, payload: make([]byte, 8)})
	s.enqueue(a, dataRecord{scid: 1, payload: make([]byte, 8)})
	s.enqueue(b, dataRecord{scid: 3, payload: make([]byte, 8)})
	var got []uint32
	s.take(1<<20, func(r record) { got = append(got, r.(dataRecord).scid) }, nil)
	if len(got) != 2 || !a.blocked {
		t.Fatalf("sent %v (blocked %v); want one of each, the second of 1 waiting for credit", got, a.blocked)
	}
	a.credit = 16
	s.unblock(a)
	s.take(1<<20, func(r record) { got = append(got, r.(dataRecord).scid) }, nil)
	if len(got) != 3 || s.bytes != 0 {
		t.Fatalf("after credit: sent %v, %d bytes queued", got, s.bytes)
	}
}

// Between gander peers, a subchannel whose reader stopped holds back only
// itself: another subchannel keeps echoing promptly, and the connection's
// reader never pauses.
func TestStoppedReaderDoesNotStallOthers(t *testing.T) {
	a, b := pair(t, Config{}, Config{})
	if !a.m.flow || !b.m.flow {
		t.Fatal("gander-flow-v1 was not negotiated between two gander peers")
	}
	echo(t, b, "echo")
	l, err := b.Listen("stuck")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stuck, err := a.Open(ctx, "stuck")
	if err != nil {
		t.Fatal(err)
	}
	writeErr := make(chan error, 1)
	go func() {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := stuck.Write(chunk); err != nil {
				writeErr <- err
				return
			}
		}
	}()
	peer, err := l.Accept(ctx) // and never read
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	sc, err := a.Open(ctx, "echo")
	if err != nil {
		t.Fatal(err)
	}
	one := make([]byte, 1)
	var worst time.Duration
	for i := range 50 {
		start := time.Now()
		one[0] = byte(i)
		if _, err := sc.Write(one); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 1)
		done := make(chan error, 1)
		go func() { _, err := io.ReadFull(sc, got); done <- err }()
		select {
		case err := <-done:
			if err != nil || got[0] != byte(i) {
				t.Fatalf("echo %d: %v, %v", i, got, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("echo %d stalled behind the stopped reader", i)
		}
		worst = max(worst, time.Since(start))
	}
	if shut, _ := b.m.gate.shut(); shut {
		t.Fatal("the receiver's connection reader paused for one stopped subchannel")
	}
	if held := peer.bufferedBytes(); held > maxFlowWindow {
		t.Fatalf("the stopped subchannel holds %d bytes, over its largest window", held)
	}
	t.Logf("echo beside a stopped reader: worst %v; the stopped one holds %d KiB", worst, peer.bufferedBytes()>>10)
	// Reading again lets the writer on.
	go io.Copy(io.Discard, peer)
	stuck.Close()
	select {
	case err := <-writeErr:
		if !errors.Is(err, ErrClosedWrite) {
			t.Fatalf("stopped writer: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the writer of the stopped subchannel was not released by Close")
	}
}

// A peer that sends beyond the window it was given is refused: the
// connection stops with a ProtocolError, rather than being read slowly.
func TestPeerIgnoringItsWindowIsRefused(t *testing.T) {
	mb := newFakeMailbox()
	mb.flow = true
	p := dialHostileMailbox(t, Config{}, 0, mb)
	if !p.gander.m.flow {
		t.Fatal("gander-flow-v1 not negotiated with a peer announcing it")
	}
	if _, err := p.gander.Listen("sink"); err != nil { // nobody reads
		t.Fatal(err)
	}
	go io.Copy(io.Discard, p.conn)
	scid := p.peerSCID(0)
	recs := []record{openRecord{scid: scid, subprotocol: "sink"}}
	payload := make([]byte, 32<<10)
	for range initialFlowWindow/len(payload) + 1 {
		recs = append(recs, dataRecord{scid: scid, payload: payload})
	}
	p.send(recs...)
	select {
	case <-p.gander.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a peer sending beyond its window was not refused")
	}
	var pe *ProtocolError
	if err := p.gander.Status().Err; !errors.As(err, &pe) {
		t.Fatalf("stopped with %v, want a ProtocolError", err)
	}
	t.Logf("refused: %v", p.gander.Status().Err)
}

// A WINDOW or BLOCKED from a peer that did not announce gander-flow-v1 is
// refused like any unknown record (the connection stops).
func TestWindowRecordsNeedTheAbility(t *testing.T) {
	for _, rec := range []record{windowRecord{scid: 1, limit: 1 << 40}, blockedRecord{scid: 1, limit: 5}} {
		p := dialHostile(t, Config{})
		if p.gander.m.flow {
			t.Fatal("gander-flow-v1 negotiated with a peer that did not announce it")
		}
		go io.Copy(io.Discard, p.conn)
		p.send(rec)
		select {
		case <-p.gander.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("%T from a reference-like peer was accepted", rec)
		}
		var pe *ProtocolError
		if err := p.gander.Status().Err; !errors.As(err, &pe) {
			t.Fatalf("%T: stopped with %v, want a ProtocolError", rec, err)
		}
	}
}

// A peer sending exactly its window is served, and gets more credit once
// the reader consumed it.
func TestPeerWithinItsWindowIsServed(t *testing.T) {
	mb := newFakeMailbox()
	mb.flow = true
	p := dialHostileMailbox(t, Config{}, 0, mb)
	l, err := p.gander.Listen("sink")
	if err != nil {
		t.Fatal(err)
	}
	recs := p.collect(t)
	scid := p.peerSCID(0)
	payload := make([]byte, 32<<10)
	batch := []record{openRecord{scid: scid, subprotocol: "sink"}}
	for range initialFlowWindow / len(payload) {
		batch = append(batch, dataRecord{scid: scid, payload: payload})
	}
	p.send(batch...)
	sc, err := l.Accept(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.ReadFull(sc, make([]byte, initialFlowWindow)); err != nil {
		t.Fatalf("read %d: %v", n, err)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case rec := <-recs:
			if w, ok := rec.(windowRecord); ok && w.scid == scid && w.limit > initialFlowWindow {
				return
			}
		case <-deadline:
			t.Fatal("no WINDOW after the reader consumed the window")
		case <-p.gander.Done():
			t.Fatalf("stopped: %v", p.gander.Status().Err)
		}
	}
}

// WINDOW and BLOCKED are 13 bytes exactly; anything else is malformed.
func TestFlowRecordEncoding(t *testing.T) {
	for _, tt := range []struct {
		rec  record
		want string
	}{
		{windowRecord{scid: 3, limit: 1 << 40}, "07000000030000010000000000"},
		{blockedRecord{scid: 0x01020304, limit: 5}, "08010203040000000000000005"},
	} {
		b := appendRecord(nil, tt.rec)
		if got := hex.EncodeToString(b); got != tt.want || recordSize(tt.rec) != len(b) {
			t.Errorf("%#v encodes as %s (size %d), want %s", tt.rec, got, recordSize(tt.rec), tt.want)
		}
		if got, err := parseRecord(b); err != nil || got != tt.rec {
			t.Errorf("%s parses as %#v, %v", tt.want, got, err)
		}
		for _, bad := range [][]byte{b[:len(b)-1], append(slices.Clone(b), 0), b[:1]} {
			if _, err := parseRecord(bad); !errors.Is(err, errBadRecord) {
				t.Errorf("%x: %v, want errBadRecord", bad, err)
			}
		}
	}
}

// A CLOSE waits a little for a ride (see closeWrite); one written just
// before the connection is closed still reaches the peer, which sees the
// subchannel end rather than the connection lost.
func TestCloseRightBeforeConnCloseReachesThePeer(t *testing.T) {
	a, b := pair(t, Config{}, Config{})
	l, err := b.Listen("last")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sc, err := a.Open(ctx, "last")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Write([]byte("bye")); err != nil {
		t.Fatal(err)
	}
	peer, err := l.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sc.Close()
	a.Close()
	got := make(chan error, 1)
	go func() {
		data, err := io.ReadAll(peer)
		if err == nil && string(data) != "bye" {
			err = errors.New("read " + hex.EncodeToString(data))
		}
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("the peer's subchannel ended with %v, want the data and EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the peer's subchannel did not end: our CLOSE did not reach it")
	}
}
