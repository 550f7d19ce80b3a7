package dilation

import (
	"context"
	"encoding/binary"
	"io"
	"runtime"
	"testing"
	"time"
)

// What a hostile peer could still make gander hold after the first
// hardening pass: memory behind small records, sent data while our reader
// is paused, big handshake frames, and a link whose writes never finish.

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Received data is counted by the memory it holds, not by its payload: a
// subchannel nobody reads holds about subchannelBufferLimit of heap
// however small the records (a 1 KiB record used to keep a 64 KiB buffer,
// a 1-byte one ~100 bytes of allocations, each counted at its payload).
func TestSmallRecordsAreCountedByTheMemoryTheyHold(t *testing.T) {
	for _, tt := range []struct {
		name    string
		payload int
		records int
	}{
		// Under subchannelBufferLimit of payload either way, so the
		// reader keeps reading and the marker below arrives.
		{"1100-byte records", 1100, 700},
		{"1-byte records", 1, 50000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := dialHostile(t, Config{})
			sink, err := p.gander.Listen("sink")
			if err != nil {
				t.Fatal(err)
			}
			marker, err := p.gander.Listen("marker")
			if err != nil {
				t.Fatal(err)
			}
			go io.Copy(io.Discard, p.conn)
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
			defer cancel()
			scid := p.peerSCID(0)
			if err := p.send(openRecord{scid: scid, subprotocol: "sink"}); err != nil {
				t.Fatal(err)
			}
			if _, err := sink.Accept(ctx); err != nil { // accepted, never read
				t.Fatal(err)
			}
			before := heapInUse()
			payload := make([]byte, tt.payload)
			batch := make([]record, 0, 1000)
			for i := 0; i < tt.records; i++ {
				batch = append(batch, dataRecord{scid: scid, payload: payload})
				if len(batch) == cap(batch) || i == tt.records-1 {
					if err := p.send(batch...); err != nil {
						t.Fatal(err)
					}
					batch = batch[:0]
				}
			}
			// Once the marker is accepted, every DATA before it is held.
			if err := p.send(openRecord{scid: p.peerSCID(1), subprotocol: "marker"}); err != nil {
				t.Fatal(err)
			}
			if _, err := marker.Accept(ctx); err != nil {
				t.Fatal(err)
			}
			grew := int64(heapInUse()) - int64(before)
			t.Logf("%d records of %d bytes: heap grew by %d KiB", tt.records, tt.payload, grew>>10)
			if grew > 2*subchannelBufferLimit {
				t.Fatalf("an unread subchannel holds %d bytes of heap, over twice its %d-byte limit", grew, subchannelBufferLimit)
			}
		})
	}
}

// While our reader is paused (the peer filled a subchannel we do not
// read) the peer's ACKs go unread; gander still keeps no more than
// maxUnackedWhilePaused for resending, and drops a link stuck there.
func TestUnackedDataIsBoundedWhilePaused(t *testing.T) {
	p := dialHostile(t, Config{Side: sideLow, PingInterval: 100 * time.Millisecond})
	sink, err := p.gander.Listen("sink")
	if err != nil {
		t.Fatal(err)
	}
	peerGone := p.discardUntilGone() // reads everything, acks nothing we can read
	scid := p.peerSCID(0)
	big := make([]byte, maxDataPayload)
	recs := []record{openRecord{scid: scid, subprotocol: "sink"}}
	for range subchannelBufferLimit/maxDataPayload + 2 {
		recs = append(recs, dataRecord{scid: scid, payload: big})
	}
	if err := p.send(recs...); err != nil {
		t.Fatal(err)
	}
	if !eventually(2*time.Second, func() bool { shut, _ := p.gander.m.gate.shut(); return shut }) {
		t.Fatal("the reader did not pause")
	}
	_ = sink
	writeUntilClosed(t, p.gander, "download")
	m := p.gander.m
	held := func() int {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.unackedBytes
	}
	const slack = 4 * maxDataPayload
	deadline := time.Now().Add(4 * time.Second)
	for last, still := -1, 0; still < 5; {
		if time.Now().After(deadline) {
			t.Fatalf("still %d bytes unacknowledged and growing after 4 s", held())
		}
		h := held()
		if h > maxUnackedWhilePaused+slack {
			t.Fatalf("holding %d bytes unacknowledged while paused, over %d", h, maxUnackedWhilePaused)
		}
		if h == last {
			still++
		} else {
			last, still = h, 0
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("holding %d MiB while paused", held()>>20)
	select {
	case <-peerGone:
	case <-time.After(2 * time.Second):
		t.Fatal("a paused link stuck at the unacknowledged-data cap was kept")
	}
}

// Records before the link is selected (the KCMs) are tiny: a bigger
// length prefix is refused at once, not waited for (nor allocated).
func TestHandshakeRecordsAreSmall(t *testing.T) {
	const n = 1 << 20
	t.Run("leader", func(t *testing.T) {
		a, b := l2Loopback(t)
		go func() {
			if p := scriptFollower(t, b, l2Key); p != nil {
				p.conn.Write(binary.BigEndian.AppendUint32(nil, n))
			}
		}()
		var err error
		within(t, 3*time.Second, "handshake", func() { _, err = handshake(a, true, l2Key, "") })
		wantLayer(t, err, "frame")
	})
	t.Run("follower", func(t *testing.T) {
		a, b := l2Loopback(t)
		leader, follower, errL, errF := l2Handshake(t, a, b, l2Key, l2Key, "", "")
		if errL != nil || errF != nil {
			t.Fatalf("handshake: %v / %v", errL, errF)
		}
		leader.conn.Write(binary.BigEndian.AppendUint32(nil, n))
		var err error
		within(t, 3*time.Second, "awaitSelection", func() { err = follower.awaitSelection() })
		wantLayer(t, err, "frame")
	})
}

// The Leader counts only a PONG answering one of its PINGs.
func TestLeaderIgnoresUnaskedPongs(t *testing.T) {
	p := dialHostile(t, Config{PingInterval: 100 * time.Millisecond})
	if p.leader {
		t.Fatal("gander should lead")
	}
	peerGone := p.discardUntilGone()
	p.keepSending(t, func(i int) record { return pongRecord{[4]byte{0xde, 0xad, byte(i), 1}} })
	select {
	case <-peerGone:
	case <-time.After(3 * time.Second):
		t.Fatal("gander, leading, kept a link answering no PING for 3 s")
	}
}

// A peer that never lets our writes through (a zero TCP window) while it
// keeps sending records loses the link once a write has made no progress
// for linkWriteTimeout; reconnection takes over.
func TestStalledLinkWriteDropsTheLink(t *testing.T) {
	p := dialHostileWith(t, Config{Side: sideLow, PingInterval: 100 * time.Millisecond}, 4<<10)
	if !p.leader {
		t.Fatal("the peer should lead")
	}
	p.keepSending(t, func(i int) record { return pingRecord{[4]byte{byte(i), 2, 3, 4}} })
	writeUntilClosed(t, p.gander, "upload")
	if !eventually(4*time.Second, func() bool { return p.gander.Status().State == Reconnecting }) {
		t.Fatalf("status %v: a link whose writes stall was kept", p.gander.Status().State)
	}
}

// The same holds for a subchannel nobody listens for yet: its data is
// counted against maxUnclaimedBuffer by the memory it holds.
func TestUnclaimedSmallRecordsAreCountedByTheMemoryTheyHold(t *testing.T) {
	p := dialHostile(t, Config{})
	marker, err := p.gander.Listen("marker")
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, p.conn)
	scid := p.peerSCID(0)
	if err := p.send(openRecord{scid: scid, subprotocol: "nobody"}); err != nil {
		t.Fatal(err)
	}
	before := heapInUse()
	one := []byte{1}
	batch := make([]record, 0, 1000)
	for i := 0; i < 50000; i++ {
		batch = append(batch, dataRecord{scid: scid, payload: one})
		if len(batch) == cap(batch) {
			if err := p.send(batch...); err != nil {
				t.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	if err := p.send(openRecord{scid: p.peerSCID(1), subprotocol: "marker"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if _, err := marker.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	grew := int64(heapInUse()) - int64(before)
	t.Logf("50000 1-byte records for nobody: heap grew by %d KiB", grew>>10)
	if grew > 4*maxUnclaimedBuffer {
		t.Fatalf("an unclaimed subchannel holds %d bytes of heap, over 4 × its %d-byte limit", grew, maxUnclaimedBuffer)
	}
}

// writeUntilClosed opens a subchannel for subprotocol and writes 1 MiB
// chunks to it from a goroutine until a write fails (the test's cleanup
// closes the manager).
func writeUntilClosed(t *testing.T, d *Conn, subprotocol string) {
	t.Helper()
	up, err := d.Open(context.Background(), subprotocol)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		chunk := make([]byte, 1<<20)
		for {
			if _, err := up.Write(chunk); err != nil {
				return
			}
		}
	}()
}
