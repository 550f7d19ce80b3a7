package dilation

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"
)

// The window grows toward the bandwidth-delay product while the reader
// keeps up with the path, and shrinks back once the reader is slow.
func TestFlowWindowTunesToTheBDP(t *testing.T) {
	now := time.Unix(1000, 0)
	w := newRecvWindow(now)
	var total int64
	grow := func(delta int64) bool { total += delta; return true }
	// consumeAt reads n bytes in 64 KiB reads at rate bytes per second.
	consumeAt := func(n int64, rate float64) {
		for n > 0 {
			chunk := min(n, 64<<10)
			now = now.Add(time.Duration(float64(chunk) / rate * float64(time.Second)))
			w.received += chunk // the peer keeps within the window
			if w.received > w.limit {
				t.Fatalf("the peer would have had to exceed the window: received %d, limit %d", w.received, w.limit)
			}
			w.consume(int(chunk), now, 10*time.Millisecond, grow)
			n -= chunk
		}
	}
	const fast = 100e6 // 100 MB/s over 10 ms: a BDP of 1 MB
	const bdp = fast * 0.010
	consumeAt(64<<20, fast)
	if w.size < bdp || w.size > 8*bdp {
		t.Fatalf("window %d after a fast transfer, want between %v and %v (the BDP and 8 times it)", w.size, bdp, 8*bdp)
	}
	if total != w.size-initialFlowWindow {
		t.Fatalf("growth accounted %d, window grew by %d", total, w.size-initialFlowWindow)
	}
	grown := w.size
	consumeAt(8<<20, 1e6) // the reader now takes 1 MB/s
	if w.size != minFlowWindow {
		t.Fatalf("window %d after a slow reader (was %d), want it back at %d", w.size, grown, minFlowWindow)
	}
	if total != 0 {
		t.Fatalf("growth accounted %d after shrinking back, want 0", total)
	}
	t.Logf("grew to %d KiB for a BDP of %.0f KiB, shrank back to %d KiB", grown>>10, bdp/1024, w.size>>10)
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
		if !w.receive(64 << 10) {
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
	if w.receive(int(w.limit-w.received) + 1) {
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
	s.take(1, emit) // a is busy now
	big.scid = 3
	for range 8 {
		s.enqueue(b, big)
	}
	s.take(1, emit)
	s.enqueue(c, dataRecord{scid: 5, payload: []byte("k")}) // a keystroke
	s.take(1, emit)
	if order[len(order)-1] != 5 {
		t.Fatalf("the keystroke went out after %v, not next", order)
	}
	s.take(1<<30, emit)
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
	s.take(1<<20, func(r record) { got = append(got, r.(dataRecord).scid) })
	if len(got) != 2 || !a.blocked {
		t.Fatalf("sent %v (blocked %v); want one of each, the second of 1 waiting for credit", got, a.blocked)
	}
	a.credit = 16
	s.unblock(a)
	s.take(1<<20, func(r record) { got = append(got, r.(dataRecord).scid) })
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

// A WINDOW from a peer that did not announce
// gander-flow-v1 is refused like any unknown record (the connection stops).
func TestWindowRecordsNeedTheAbility(t *testing.T) {
	p := dialHostile(t, Config{})
	if p.gander.m.flow {
		t.Fatal("gander-flow-v1 negotiated with a peer that did not announce it")
	}
	go io.Copy(io.Discard, p.conn)
	p.send(windowRecord{scid: 1, limit: 1 << 40})
	select {
	case <-p.gander.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a WINDOW from a reference-like peer was accepted")
	}
	var pe *ProtocolError
	if err := p.gander.Status().Err; !errors.As(err, &pe) {
		t.Fatalf("stopped with %v, want a ProtocolError", err)
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
