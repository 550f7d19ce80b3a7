package dilation

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/flynn/noise"
	"golang.org/x/crypto/curve25519"

	"github.com/gander-pair/gander/transit"
)

// L2 (prologue, relay line, frames, Noise) over real connections, against
// broken and hostile peers, and byte for byte against the reference
// (testdata/noise_vectors.json, written by testdata/gen_noise_vectors.py
// from the reference's own _Framer and _Record with fixed ephemeral keys).
//
// Both roles write their prologue before reading, so two handshakes need a
// buffered connection: a loopback TCP pair, not net.Pipe. net.Pipe is used
// where one end is a script that drains what it is sent.

// l2Loopback returns both ends of a loopback TCP connection, closed when
// the test ends.
func l2Loopback(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// within fails the test if f does not return in d.
func within(t testing.TB, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: still running after %v", what, d)
	}
}

// l2Handshake runs the Leader on a and the Follower on b, each closing its
// connection on failure as the connector does.
func l2Handshake(t testing.TB, a, b net.Conn, leaderKey, followerKey []byte, leaderRelay, followerRelay string) (leader, follower *link, errL, errF error) {
	t.Helper()
	within(t, 10*time.Second, "handshake", func() {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			if follower, errF = handshake(b, false, followerKey, followerRelay); errF != nil {
				b.Close()
			}
		}()
		if leader, errL = handshake(a, true, leaderKey, leaderRelay); errL != nil {
			a.Close()
		}
		wg.Wait()
	})
	return
}

var l2Key = bytes.Repeat([]byte{0x42}, 32)

// l2Linked returns a selected connection: both handshakes done, the
// Leader's KCM sent and accepted.
func l2Linked(t testing.TB) (leader, follower *link) {
	t.Helper()
	a, b := l2Loopback(t)
	leader, follower, errL, errF := l2Handshake(t, a, b, l2Key, l2Key, "", "")
	if errL != nil || errF != nil {
		t.Fatalf("handshake: leader %v, follower %v", errL, errF)
	}
	within(t, 5*time.Second, "selection", func() {
		go leader.writeRecord(kcmRecord{})
		if err := follower.awaitSelection(); err != nil {
			t.Errorf("awaitSelection: %v", err)
		}
	})
	return leader, follower
}

func wantLayer(t testing.TB, err error, layer string) *ProtocolError {
	t.Helper()
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Layer != layer {
		t.Fatalf("err = %v (%T), want a *ProtocolError in layer %q", err, err, layer)
	}
	return pe
}

func frameOf(payload []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(payload))), payload...)
}

func TestL2RecordsBothWays(t *testing.T) {
	leader, follower := l2Linked(t)
	records := []record{
		pingRecord{[4]byte{1, 2, 3, 4}},
		pongRecord{[4]byte{5, 6, 7, 8}},
		openRecord{scid: 1, seq: 0, subprotocol: "proto"},
		dataRecord{scid: 1, seq: 1, payload: []byte("hello")},
		dataRecord{scid: 1, seq: 2, payload: []byte{}},
		prepareDataForL2(3, 3, bytes.Repeat([]byte{0xa5}, maxDataPayload)), // largest single-message DATA, prepared
		closeRecord{scid: 1, seq: 4},
		ackRecord{seq: 4},
		kcmRecord{},
	}
	for _, dir := range []struct {
		name     string
		from, to *link
	}{{"leader to follower", leader, follower}, {"follower to leader", follower, leader}} {
		// One record per write...
		errc := make(chan error, 1)
		go func() {
			for _, r := range records {
				if err := dir.from.writeRecord(r); err != nil {
					errc <- err
					return
				}
			}
			// ...and the same records batched in one write.
			errc <- dir.from.writeRecords(records)
		}()
		for i := range 2 * len(records) {
			want := records[i%len(records)]
			got, err := dir.to.readRecord()
			if err != nil || !sameRecord(got, want) {
				t.Fatalf("%s: record %d = %#v, %v; want %#v", dir.name, i, got, err, want)
			}
		}
		if err := <-errc; err != nil {
			t.Fatalf("%s: write: %v", dir.name, err)
		}
	}
}

func prepareDataForL2(scid, seq uint32, payload []byte) dataRecord {
	d := prepareData(scid, payload)
	d.seq = seq
	d.encode()
	return d
}

// countingConn records the size of every Write.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes []int
}

func (c *countingConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, len(b))
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func (c *countingConn) takeWrites() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.writes
	c.writes = nil
	return w
}

// A record longer than one Noise message is cut into 65519-byte plaintext
// pieces, each encrypted on its own, all in one frame with one length
// prefix; the receiver splits the frame every 65535 bytes.
func TestL2LargeRecordFrameLayout(t *testing.T) {
	a, b := l2Loopback(t)
	counted := &countingConn{Conn: a}
	leader, follower, errL, errF := l2Handshake(t, counted, b, l2Key, l2Key, "", "")
	if errL != nil || errF != nil {
		t.Fatalf("handshake: %v / %v", errL, errF)
	}
	counted.takeWrites()

	for _, size := range []int{
		200 << 10,                   // the brief's 200 KiB: four messages
		noiseMaxPlaintext - 9,       // the record fills one message exactly
		noiseMaxPlaintext - 9 + 1,   // one byte more: a second message of 1 byte
		2*noiseMaxPlaintext - 9,     // two full messages
		2*noiseMaxPlaintext - 9 + 1, // three, the last of 1 byte
	} {
		rec := dataRecord{scid: 7, seq: uint32(size), payload: bigPayload(size)}
		plain := appendRecord(nil, rec)
		pieces := (len(plain) + noiseMaxPlaintext - 1) / noiseMaxPlaintext
		errc := make(chan error, 1)
		go func() {
			if err := leader.writeRecord(rec); err != nil {
				errc <- err
				return
			}
			errc <- leader.writeRecord(pingRecord{[4]byte{9, 9, 9, 9}})
		}()

		frame, err := readFrame(follower.r, nil, maxFrameSize)
		if err != nil {
			t.Fatal(err)
		}
		if want := len(plain) + 16*pieces; len(frame) != want {
			t.Fatalf("%d-byte record: frame of %d bytes, want %d (%d pieces)", len(plain), len(frame), want, pieces)
		}
		var got []byte
		i := 0
		for ; len(frame) > 0; i++ {
			n := min(len(frame), noiseMaxCiphertext)
			p, err := follower.recv.Decrypt(nil, nil, frame[:n])
			if err != nil {
				t.Fatalf("%d-byte record: piece %d does not decrypt alone: %v", len(plain), i, err)
			}
			if i < pieces-1 && len(p) != noiseMaxPlaintext {
				t.Fatalf("%d-byte record: piece %d carries %d bytes, want %d", len(plain), i, len(p), noiseMaxPlaintext)
			}
			got = append(got, p...)
			frame = frame[n:]
		}
		if i != pieces || !bytes.Equal(got, plain) {
			t.Fatalf("%d-byte record: %d pieces do not reassemble to the record", len(plain), i)
		}
		// The next frame starts right after: one length prefix per record.
		if rec, err := follower.readRecord(); err != nil || !sameRecord(rec, pingRecord{[4]byte{9, 9, 9, 9}}) {
			t.Fatalf("record after the large one: %#v, %v", rec, err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		// Each record went out in a single write.
		if w := counted.takeWrites(); len(w) != 2 || w[0] != 4+len(plain)+16*pieces {
			t.Fatalf("%d-byte record: writes %v", len(plain), w)
		}
	}
}

// writeRecords seals a whole batch into one write.
func TestL2WriteRecordsIsOneWrite(t *testing.T) {
	a, b := l2Loopback(t)
	counted := &countingConn{Conn: a}
	leader, follower, errL, errF := l2Handshake(t, counted, b, l2Key, l2Key, "", "")
	if errL != nil || errF != nil {
		t.Fatalf("handshake: %v / %v", errL, errF)
	}
	counted.takeWrites()
	batch := []record{
		kcmRecord{},
		ackRecord{1},
		dataRecord{scid: 1, seq: 2, payload: bigPayload(100000)},
		prepareDataForL2(1, 3, []byte("prepared")),
		closeRecord{1, 4},
	}
	want := 0
	for _, r := range batch {
		n := recordSize(r)
		want += 4 + n + 16*((n+noiseMaxPlaintext-1)/noiseMaxPlaintext)
	}
	errc := make(chan error, 1)
	go func() { errc <- leader.writeRecords(batch) }()
	for i, r := range batch {
		got, err := follower.readRecord()
		if err != nil || !sameRecord(got, r) {
			t.Fatalf("record %d = %#v, %v", i, got, err)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if w := counted.takeWrites(); len(w) != 1 || w[0] != want {
		t.Fatalf("writes %v, want one of %d bytes", w, want)
	}
}

// Writers on several goroutines never interleave their frames.
func TestL2ConcurrentWriters(t *testing.T) {
	leader, follower := l2Linked(t)
	const writers, each = 4, 50
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				var err error
				if i%2 == 0 {
					err = leader.writeRecord(pingRecord{[4]byte{byte(w), 0, 0, byte(i)}})
				} else {
					err = leader.writeRecords([]record{
						pingRecord{[4]byte{byte(w), 0, 0, byte(i)}},
						dataRecord{scid: uint32(w), seq: uint32(i), payload: bigPayload(70000)},
					})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	next := make([]int, writers)
	for range writers * (each + each/2) {
		rec, err := follower.readRecord()
		if err != nil {
			t.Fatal(err)
		}
		switch r := rec.(type) {
		case pingRecord:
			w, i := int(r.id[0]), int(r.id[3])
			if i != next[w] {
				t.Fatalf("writer %d: ping %d after %d", w, i, next[w])
			}
			next[w]++
		case dataRecord:
			if int(r.seq) != next[r.scid]-1 || !bytes.Equal(r.payload, bigPayload(70000)) {
				t.Fatalf("writer %d: DATA %d out of place", r.scid, r.seq)
			}
		default:
			t.Fatalf("unexpected %#v", rec)
		}
	}
	wg.Wait()
}

func TestL2WrongKeyFailsInNoise(t *testing.T) {
	a, b := l2Loopback(t)
	leader, follower, errL, errF := l2Handshake(t, a, b, bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32), "", "")
	if leader != nil || follower != nil {
		t.Fatal("a handshake succeeded with different keys")
	}
	pe := wantLayer(t, errF, "noise")
	if !strings.Contains(pe.Error(), "dilation noise:") {
		t.Errorf("message %q", pe.Error())
	}
	// The Leader only sees the Follower hang up.
	if errL == nil {
		t.Fatal("the leader accepted a peer with another key")
	}
}

// A peer that does not speak the other role's prologue is dropped at the
// first byte that differs, without waiting for more, with an error that
// shows what arrived.
func TestL2WrongPrologue(t *testing.T) {
	for _, tt := range []struct {
		name   string
		leader bool // our role
		peer   string
		got    string // what the error quotes as received
	}{
		{"follower hears a follower", false, prologueFollower, "Magic-Wormhole Dilation Handshake v1 F"},
		{"leader hears a leader", true, prologueLeader, "Magic-Wormhole Dilation Handshake v1 L"},
		{"http request", false, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "G"},
		{"http response", true, "HTTP/1.1 400 Bad Request\r\n\r\n", "H"},
		{"another version", false, "Magic-Wormhole Dilation Handshake v2 Leader\n\n", "Magic-Wormhole Dilation Handshake v2"},
		{"lower case", true, "magic-wormhole dilation handshake v1 follower\n\n", "m"},
		{"tls client hello", false, "\x16\x03\x01\x02\x00\x01", "\x16"},
		{"a relay line", true, "please relay 00 for side 0123456789abcdef\n", "p"},
		{"transit relay refusal", false, "impatient\n", "i"},
		{"prologue without the blank line", false, "Magic-Wormhole Dilation Handshake v1 Leader\nX", "Magic-Wormhole Dilation Handshake v1 Leader\nX"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := l2Loopback(t)
			// The peer sends its garbage and then stays silent with the
			// connection open: the check must not wait for more.
			go func() {
				io.WriteString(b, tt.peer)
				io.Copy(io.Discard, b)
			}()
			var err error
			start := time.Now()
			within(t, 5*time.Second, "handshake", func() { _, err = handshake(a, tt.leader, l2Key, "") })
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v to refuse", d)
			}
			pe := wantLayer(t, err, "prologue")
			theirs := prologueLeader
			if tt.leader {
				theirs = prologueFollower
			}
			want := fmt.Sprintf("dilation prologue: expected %q, got %q", theirs, tt.got)
			if pe.Error() != want {
				t.Errorf("message\n %s\nwant\n %s", pe.Error(), want)
			}
		})
	}
}

// The message quotes the bytes that arrived, not a re-encoding of them: a
// peer sending 0xff must not be reported as having sent "ÿ" (0xc3 0xbf).
func TestL2WrongPrologueQuotesNonASCIIBytesExactly(t *testing.T) {
	a, b := l2Loopback(t)
	go func() {
		b.Write([]byte("Magic\xff\x80"))
		io.Copy(io.Discard, b)
	}()
	var err error
	within(t, 5*time.Second, "handshake", func() { _, err = handshake(a, false, l2Key, "") })
	pe := wantLayer(t, err, "prologue")
	if want := `got "Magic\xff"`; !strings.Contains(pe.Error(), want) {
		t.Errorf("message %q does not contain %s", pe.Error(), want)
	}
}

// A peer that hangs up mid-prologue is an error at once (not a
// ProtocolError: nothing wrong was said).
func TestL2PrologueCutShort(t *testing.T) {
	for _, n := range []int{0, 1, len(prologueLeader) - 1} {
		a, b := l2Loopback(t)
		go func() {
			io.WriteString(b, prologueLeader[:n])
			b.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, b)
		}()
		var err error
		within(t, 5*time.Second, "handshake", func() { _, err = handshake(a, false, l2Key, "") })
		var pe *ProtocolError
		if err == nil || errors.As(err, &pe) || !errors.Is(err, io.EOF) {
			t.Errorf("%d prologue bytes then EOF: err = %v", n, err)
		}
	}
}

// trickleConn writes one byte per Write call.
type trickleConn struct{ net.Conn }

func (c trickleConn) Write(b []byte) (int, error) {
	for i := range b {
		if _, err := c.Conn.Write(b[i : i+1]); err != nil {
			return i, err
		}
		time.Sleep(50 * time.Microsecond)
	}
	return len(b), nil
}

// The prologue, relay line and frames may arrive a byte at a time.
func TestL2HandshakeByteByByte(t *testing.T) {
	a, b := l2Loopback(t)
	leader, follower, errL, errF := l2Handshake(t, trickleConn{a}, trickleConn{b}, l2Key, l2Key, "", "")
	if errL != nil || errF != nil {
		t.Fatalf("handshake: %v / %v", errL, errF)
	}
	go leader.writeRecord(kcmRecord{})
	if err := follower.awaitSelection(); err != nil {
		t.Fatal(err)
	}
}

// scriptedPeer speaks L2 from a test: raw bytes, or Noise with flynn/noise
// directly.
type scriptedPeer struct {
	conn       net.Conn
	r          *bufio.Reader
	send, recv *noise.CipherState
}

// scriptFollower does a Follower's handshake by hand, up to (not
// including) its KCM.
func scriptFollower(t testing.TB, conn net.Conn, key []byte) *scriptedPeer {
	t.Helper()
	p := &scriptedPeer{conn: conn, r: bufio.NewReader(conn)}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, prologueFollower); err != nil {
		t.Error(err)
		return nil
	}
	if err := expect(p.r, prologueLeader, "prologue"); err != nil {
		t.Error(err)
		return nil
	}
	hs, err := noise.NewHandshakeState(noise.Config{CipherSuite: noiseSuite, Pattern: noise.HandshakeNN, PresharedKey: key})
	if err != nil {
		t.Error(err)
		return nil
	}
	msg1, err := readFrame(p.r, nil, 48)
	if err != nil {
		t.Error(err)
		return nil
	}
	if _, _, _, err := hs.ReadMessage(nil, msg1); err != nil {
		t.Error(err)
		return nil
	}
	msg2, toFollower, toLeader, err := hs.WriteMessage(nil, nil)
	if err != nil {
		t.Error(err)
		return nil
	}
	p.send, p.recv = toLeader, toFollower
	if _, err := conn.Write(frameOf(msg2)); err != nil {
		t.Error(err)
		return nil
	}
	return p
}

// sendRecord may run on any goroutine: it reports with t.Error.
func (p *scriptedPeer) sendRecord(t testing.TB, r record) {
	t.Helper()
	ct, err := p.send.Encrypt(nil, nil, appendRecord(nil, r))
	if err != nil {
		t.Error(err)
		return
	}
	if _, err := p.conn.Write(frameOf(ct)); err != nil {
		t.Error(err)
	}
}

// The Leader's handshake needs the Follower's KCM first; the Follower's
// awaitSelection needs the Leader's.
func TestL2FirstRecordMustBeKCM(t *testing.T) {
	t.Run("leader", func(t *testing.T) {
		a, b := l2Loopback(t)
		go func() {
			if p := scriptFollower(t, b, l2Key); p != nil {
				p.sendRecord(t, pingRecord{})
			}
		}()
		var err error
		within(t, 5*time.Second, "handshake", func() { _, err = handshake(a, true, l2Key, "") })
		if pe := wantLayer(t, err, "record"); !strings.Contains(pe.Reason, "pingRecord") {
			t.Errorf("reason %q", pe.Reason)
		}
	})
	t.Run("follower", func(t *testing.T) {
		a, b := l2Loopback(t)
		leader, follower, errL, errF := l2Handshake(t, a, b, l2Key, l2Key, "", "")
		if errL != nil || errF != nil {
			t.Fatalf("handshake: %v / %v", errL, errF)
		}
		go leader.writeRecord(openRecord{1, 0, "x"})
		wantLayer(t, follower.awaitSelection(), "record")
	})
}

// Handshake frames of the wrong size or content.
func TestL2BadHandshakeMessages(t *testing.T) {
	for _, tt := range []struct {
		name   string
		leader bool // our role; the script plays the other
		frame  []byte
		layer  string
	}{
		{"msg1 of zeros", false, make([]byte, 48), "noise"},
		{"msg1 too short", false, make([]byte, 47), "noise"},
		{"msg1 empty", false, nil, "noise"},
		{"msg1 too long", false, make([]byte, 49), "frame"},
		{"msg2 of zeros", true, make([]byte, 48), "noise"},
		{"msg2 too short", true, make([]byte, 32), "noise"},
		{"msg2 too long", true, make([]byte, 1<<20), "frame"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := l2Loopback(t)
			theirs := prologueLeader
			if tt.leader {
				theirs = prologueFollower
			}
			go func() {
				b.Write(append([]byte(theirs), frameOf(tt.frame)...))
				io.Copy(io.Discard, b)
			}()
			var err error
			within(t, 5*time.Second, "handshake", func() { _, err = handshake(a, tt.leader, l2Key, "") })
			wantLayer(t, err, tt.layer)
		})
	}
}

// A huge length prefix after the handshake is refused before anything is
// allocated for it.
func TestL2HostileLengthAfterHandshake(t *testing.T) {
	for _, n := range []uint32{0xffffffff, maxFrameSize + 1, 1 << 31} {
		leader, follower := l2Linked(t)
		// From the authenticated peer: a prefix, then silence.
		if _, err := follower.conn.Write(binary.BigEndian.AppendUint32(nil, n)); err != nil {
			t.Fatal(err)
		}
		var before, after runtime.MemStats
		var err error
		within(t, 5*time.Second, "readRecord", func() {
			runtime.ReadMemStats(&before)
			_, err = leader.readRecord()
			runtime.ReadMemStats(&after)
		})
		pe := wantLayer(t, err, "frame")
		if !strings.Contains(pe.Reason, fmt.Sprint(n)) {
			t.Errorf("reason %q does not name the length", pe.Reason)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
			t.Errorf("length %d: %d bytes allocated before refusing", n, grew)
		}
	}
}

func TestReadFrameRefusesWithoutAllocating(t *testing.T) {
	for _, n := range []uint32{0xffffffff, maxFrameSize + 1} {
		prefix := binary.BigEndian.AppendUint32(nil, n)
		r := bytes.NewReader(nil)
		var err error
		allocs := testing.AllocsPerRun(100, func() {
			r.Reset(prefix)
			_, err = readFrame(r, nil, maxFrameSize)
		})
		wantLayer(t, err, "frame")
		// Only the error itself (the ProtocolError and its message).
		if allocs > 8 {
			t.Errorf("length %d: %.0f allocations per refusal", n, allocs)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 100 {
			r.Reset(prefix)
			readFrame(r, nil, maxFrameSize)
		}
		runtime.ReadMemStats(&after)
		if per := (after.TotalAlloc - before.TotalAlloc) / 100; per > 1024 {
			t.Errorf("length %d: %d bytes allocated per refusal", n, per)
		}
	}
}

func TestReadFrameBoundaries(t *testing.T) {
	const max = 100
	for _, tt := range []struct {
		name  string
		in    []byte
		frame []byte
		err   error  // for io errors
		layer string // for ProtocolErrors
	}{
		{"nothing", nil, nil, io.EOF, ""},
		{"half a prefix", []byte{0, 0}, nil, io.ErrUnexpectedEOF, ""},
		{"empty frame", []byte{0, 0, 0, 0}, []byte{}, nil, ""},
		{"one byte", []byte{0, 0, 0, 1, 'x', 'y'}, []byte("x"), nil, ""},
		{"exactly max", frameOf(bytes.Repeat([]byte{'m'}, max)), bytes.Repeat([]byte{'m'}, max), nil, ""},
		{"max plus one", frameOf(bytes.Repeat([]byte{'m'}, max+1)), nil, nil, "frame"},
		{"truncated body", []byte{0, 0, 0, 9, 'a', 'b'}, nil, io.ErrUnexpectedEOF, ""},
		{"prefix only", []byte{0, 0, 0, 9}, nil, io.ErrUnexpectedEOF, ""},
		{"all ones", []byte{0xff, 0xff, 0xff, 0xff, 1}, nil, nil, "frame"},
	} {
		frame, err := readFrame(bytes.NewReader(tt.in), nil, max)
		switch {
		case tt.layer != "":
			wantLayer(t, err, tt.layer)
		case tt.err != nil:
			if err != tt.err {
				t.Errorf("%s: err = %v, want %v", tt.name, err, tt.err)
			}
		case err != nil || !bytes.Equal(frame, tt.frame):
			t.Errorf("%s: %q, %v; want %q", tt.name, frame, err, tt.frame)
		}
	}
	// A buffer with room is reused; a small one is not written past.
	buf := make([]byte, 0, 8)
	frame, err := readFrame(bytes.NewReader([]byte{0, 0, 0, 3, 'a', 'b', 'c'}), buf, max)
	if err != nil || string(frame) != "abc" || &frame[0] != &buf[:1][0] {
		t.Errorf("with room: %q, %v, reused=%v", frame, err, err == nil && &frame[0] == &buf[:1][0])
	}
	small := make([]byte, 0, 2)
	frame, err = readFrame(bytes.NewReader([]byte{0, 0, 0, 3, 'a', 'b', 'c'}), small, max)
	if err != nil || string(frame) != "abc" || string(small[:2]) != "\x00\x00" {
		t.Errorf("small buffer: %q, %v, buffer now %q", frame, err, small[:2])
	}
}

// A frame cut short by the peer hanging up is an error, not a hang.
func TestL2TruncatedFrame(t *testing.T) {
	for _, tt := range []struct {
		name string
		send []byte
		err  error
	}{
		{"clean close between frames", nil, io.EOF},
		{"half a prefix", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"prefix then nothing", []byte{0, 0, 1, 0}, io.ErrUnexpectedEOF},
		{"short body", append([]byte{0, 0, 1, 0}, make([]byte, 100)...), io.ErrUnexpectedEOF},
		{"large frame cut short", append([]byte{0, 2, 0, 0}, make([]byte, 70000)...), io.ErrUnexpectedEOF},
	} {
		t.Run(tt.name, func(t *testing.T) {
			leader, follower := l2Linked(t)
			go func() {
				follower.conn.Write(tt.send)
				follower.conn.(*net.TCPConn).CloseWrite()
			}()
			var err error
			within(t, 5*time.Second, "readRecord", func() { _, err = leader.readRecord() })
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

// Frames that do not decrypt, whatever the reason, are a noise error.
func TestL2UndecryptableFrames(t *testing.T) {
	ping := pingRecord{[4]byte{1, 2, 3, 4}}
	for _, tt := range []struct {
		name string
		// frames returns what the follower's end sends after the
		// selection; the Leader must fail on the last one and read the
		// others.
		frames func(t *testing.T, leader, follower *link) [][]byte
	}{
		{"random bytes", func(t *testing.T, _, _ *link) [][]byte {
			b := make([]byte, 40)
			rand.Read(b)
			return [][]byte{frameOf(b)}
		}},
		{"empty frame", func(t *testing.T, _, _ *link) [][]byte { return [][]byte{frameOf(nil)} }},
		{"shorter than a tag", func(t *testing.T, _, _ *link) [][]byte { return [][]byte{frameOf(make([]byte, 15))} }},
		{"one bit flipped", func(t *testing.T, _, f *link) [][]byte {
			b, err := f.sealRecord(nil, ping)
			if err != nil {
				t.Fatal(err)
			}
			b[7] ^= 0x10
			return [][]byte{b}
		}},
		{"tag flipped", func(t *testing.T, _, f *link) [][]byte {
			b, err := f.sealRecord(nil, ping)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)-1] ^= 1
			return [][]byte{b}
		}},
		{"replayed", func(t *testing.T, _, f *link) [][]byte {
			b, err := f.sealRecord(nil, ping)
			if err != nil {
				t.Fatal(err)
			}
			return [][]byte{b, b}
		}},
		{"reordered", func(t *testing.T, _, f *link) [][]byte {
			first, err := f.sealRecord(nil, ping)
			if err != nil {
				t.Fatal(err)
			}
			second, err := f.sealRecord(nil, ackRecord{1})
			if err != nil {
				t.Fatal(err)
			}
			return [][]byte{second, first}
		}},
		{"the leader's own frame reflected", func(t *testing.T, l, _ *link) [][]byte {
			b, err := l.sealRecord(nil, ping)
			if err != nil {
				t.Fatal(err)
			}
			return [][]byte{b}
		}},
		{"split at the wrong size", func(t *testing.T, _, f *link) [][]byte {
			// A large record cut into 65000-byte pieces: each decrypts on
			// its own, but the receiver splits every 65535 bytes.
			plain := appendRecord(nil, dataRecord{scid: 1, seq: 1, payload: bigPayload(100000)})
			var body []byte
			for len(plain) > 0 {
				n := min(len(plain), 65000)
				var err error
				if body, err = f.send.Encrypt(body, nil, plain[:n]); err != nil {
					t.Fatal(err)
				}
				plain = plain[n:]
			}
			return [][]byte{frameOf(body)}
		}},
		{"last piece truncated", func(t *testing.T, _, f *link) [][]byte {
			b, err := f.sealRecord(nil, dataRecord{scid: 1, seq: 1, payload: bigPayload(70000)})
			if err != nil {
				t.Fatal(err)
			}
			b = b[:len(b)-1]
			binary.BigEndian.PutUint32(b, uint32(len(b)-4))
			return [][]byte{b}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			leader, follower := l2Linked(t)
			frames := tt.frames(t, leader, follower)
			go func() {
				for _, f := range frames {
					follower.conn.Write(f)
				}
			}()
			var err error
			within(t, 5*time.Second, "readRecord", func() {
				for range frames {
					if _, err = leader.readRecord(); err != nil {
						return
					}
				}
			})
			pe := wantLayer(t, err, "noise")
			if pe.Reason != "a frame failed to decrypt" {
				t.Errorf("reason %q", pe.Reason)
			}
		})
	}
}

// A frame that decrypts to something that is not a record fails in the
// record parser.
func TestL2DecryptedGarbage(t *testing.T) {
	for _, plain := range [][]byte{{0x07}, {typePing, 1}, {typeOpen, 0, 0, 0, 1, 0, 0, 0, 0, 0xff}} {
		leader, follower := l2Linked(t)
		b, err := follower.seal(nil, plain)
		if err != nil {
			t.Fatal(err)
		}
		go follower.conn.Write(b)
		within(t, 5*time.Second, "readRecord", func() { _, err = leader.readRecord() })
		// (Not a *ProtocolError: readRecord hands on the parser's error.)
		if !errors.Is(err, errBadRecord) {
			t.Errorf("%x: err = %v, want errBadRecord", plain, err)
		}
	}
}

// The largest inbound record is accepted; one byte more is refused as a
// frame that is too long, before it is read.
func TestL2MaxRecordSize(t *testing.T) {
	for _, tt := range []struct {
		size int
		ok   bool
	}{{MaxRecordSize, true}, {MaxRecordSize + 1, false}} {
		leader, follower := l2Linked(t)
		rec := dataRecord{scid: 1, seq: 1, payload: bytes.Repeat([]byte{0x5a}, tt.size-9)}
		go leader.writeRecord(rec)
		var got record
		var err error
		within(t, 30*time.Second, "readRecord", func() { got, err = follower.readRecord() })
		if tt.ok {
			if err != nil || !sameRecord(got, rec) {
				t.Errorf("%d-byte record: %v", tt.size, err)
			}
		} else {
			wantLayer(t, err, "frame")
		}
		leader.close()
		follower.close()
	}
}

// fakeRelay is a transit relay that reads each client's "please relay"
// line, makes sure nothing else arrives before it answers, then answers
// with answer (closing unless it is "ok\n") and pairs the first two
// clients. (It reads the line through a bufio.Reader and then uses the
// connection directly, which loses nothing only because a client sends
// nothing more until "ok\n": the check below.)
type fakeRelay struct {
	addr  string
	lines chan string
	errs  chan error
}

func startFakeRelay(t *testing.T, answer string) *fakeRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRelay{addr: ln.Addr().String(), lines: make(chan string, 2), errs: make(chan error, 4)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		var waiting net.Conn
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReaderSize(c, 16).ReadString('\n')
			if err != nil {
				r.errs <- err
				c.Close()
				continue
			}
			r.lines <- line
			// The client must wait for the answer.
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if n, _ := c.Read(make([]byte, 1)); n != 0 {
				r.errs <- errors.New("the client sent more before the relay answered")
			}
			c.SetReadDeadline(time.Time{})
			if answer != "ok\n" {
				io.WriteString(c, answer)
				c.Close()
				continue
			}
			if waiting == nil {
				waiting = c
				continue
			}
			io.WriteString(waiting, "ok\n")
			io.WriteString(c, "ok\n")
			wg.Add(2)
			go func(a, b net.Conn) { defer wg.Done(); io.Copy(a, b); a.Close() }(waiting, c)
			go func(a, b net.Conn) { defer wg.Done(); io.Copy(a, b); a.Close() }(c, waiting)
			waiting = nil
		}
	}()
	return r
}

func TestL2ThroughRelay(t *testing.T) {
	key := bytes.Repeat([]byte("k"), 32)
	relay := startFakeRelay(t, "ok\n")
	a, err := net.Dial("tcp", relay.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := net.Dial("tcp", relay.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	leaderLine := transit.RelayHandshake(key, "12345678abcdabcd")
	followerLine := transit.RelayHandshake(key, "0123456789abcdef")
	// The digest's vector (upstream test_connector.py::test_build).
	const want = "please relay 3f4147851dbd2589d25b654ee9fb35ed0d3e5f19c5c5403e8e6a195c70f0577a for side 12345678abcdabcd\n"
	if leaderLine != want {
		t.Fatalf("relay line %q, want %q", leaderLine, want)
	}
	leader, follower, errL, errF := l2Handshake(t, a, b, key, key, leaderLine, followerLine)
	if errL != nil || errF != nil {
		t.Fatalf("handshake through the relay: %v / %v", errL, errF)
	}
	seen := map[string]bool{<-relay.lines: true, <-relay.lines: true}
	if !seen[want] || !seen[strings.Replace(want, "12345678abcdabcd", "0123456789abcdef", 1)] {
		t.Fatalf("relay saw %v", seen)
	}
	select {
	case err := <-relay.errs:
		t.Fatal(err)
	default:
	}
	go leader.writeRecord(kcmRecord{})
	if err := follower.awaitSelection(); err != nil {
		t.Fatal(err)
	}
	go follower.writeRecord(dataRecord{scid: 2, seq: 0, payload: []byte("through the relay")})
	if rec, err := leader.readRecord(); err != nil || string(rec.(dataRecord).payload) != "through the relay" {
		t.Fatalf("%#v, %v", rec, err)
	}
}

func TestL2RelayRefusals(t *testing.T) {
	for _, tt := range []struct {
		answer string
		layer  string // "" for a plain I/O error
	}{
		{"impatient\n", "relay"},
		{"ok\r\n", "relay"},
		{"okay\n", "relay"},
		{"OK\n", "relay"},
		{"\n", "relay"},
		{"o", ""}, // then the relay hangs up
		{"", ""},  // hangs up at once
	} {
		relay := startFakeRelay(t, tt.answer)
		c, err := net.Dial("tcp", relay.addr)
		if err != nil {
			t.Fatal(err)
		}
		line := transit.RelayHandshake(l2Key, "0123456789abcdef")
		within(t, 5*time.Second, "handshake", func() { _, err = handshake(c, false, l2Key, line) })
		c.Close()
		if got := <-relay.lines; got != line {
			t.Errorf("relay got %q", got)
		}
		if tt.layer != "" {
			wantLayer(t, err, tt.layer)
			continue
		}
		var pe *ProtocolError
		if err == nil || errors.As(err, &pe) || !strings.HasPrefix(err.Error(), "dilation relay:") {
			t.Errorf("answer %q: err = %v", tt.answer, err)
		}
	}
}

// "ok\n" and the peer's prologue may arrive in one segment.
func TestL2RelayOKAndPrologueTogether(t *testing.T) {
	a, b := l2Loopback(t)
	go func() {
		bufio.NewReader(b).ReadString('\n')
		// ok, the Leader's prologue and a (bogus) msg1 in one write: the
		// handshake gets as far as Noise.
		b.Write(append([]byte("ok\n"+prologueLeader), frameOf(make([]byte, 48))...))
		io.Copy(io.Discard, b)
	}()
	var err error
	within(t, 5*time.Second, "handshake", func() {
		_, err = handshake(a, false, l2Key, transit.RelayHandshake(l2Key, "0123456789abcdef"))
	})
	wantLayer(t, err, "noise")
}

// noiseVectors is testdata/noise_vectors.json.
type noiseVectors struct {
	NoiseProtocol   string     `json:"noise_protocol"`
	PSK             string     `json:"psk"`
	LeaderE         string     `json:"leader_ephemeral_private"`
	FollowerE       string     `json:"follower_ephemeral_private"`
	LeaderSends     []wireStep `json:"leader_sends"`
	FollowerSends   []wireStep `json:"follower_sends"`
	RelayExample    relayLine  `json:"relay_example"`
	RelayPSKExample relayLine  `json:"relay_psk"`
}

type relayLine struct{ Key, Side, Line string }

// wireStep is one write of the reference: a prologue, a handshake frame or
// a record's frame, given whole (Hex) or, when large, by length and hash.
type wireStep struct {
	What   string     `json:"what"`
	Record *refRecord `json:"record"`
	Hex    string     `json:"hex"`
	Len    int        `json:"len"`
	SHA256 string     `json:"sha256"`
}

func (s wireStep) size() int {
	if s.Hex != "" {
		return len(s.Hex) / 2
	}
	return s.Len
}

func (s wireStep) check(t testing.TB, got []byte, who string) {
	t.Helper()
	if s.Hex != "" {
		if hex.EncodeToString(got) != s.Hex {
			t.Fatalf("%s %s %+v:\n got %x\nwant %s", who, s.What, s.Record, got, s.Hex)
		}
		return
	}
	if sum := sha256.Sum256(got); len(got) != s.Len || hex.EncodeToString(sum[:]) != s.SHA256 {
		t.Fatalf("%s %s %+v: %d bytes with SHA-256 %x, want %d bytes with %s", who, s.What, s.Record, len(got), sum, s.Len, s.SHA256)
	}
}

func loadNoiseVectors(t testing.TB) noiseVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/noise_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v noiseVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if v.NoiseProtocol != "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s" || len(v.LeaderSends) < 4 || len(v.FollowerSends) < 4 {
		t.Fatalf("noise_vectors.json: unexpected content")
	}
	return v
}

// readStep reads one step's worth of bytes from conn and checks them.
func readStep(t testing.TB, conn net.Conn, s wireStep, who string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, s.size())
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatalf("%s %s: %v", who, s.What, err)
	}
	s.check(t, got, who)
}

// The Noise configuration gander uses (l2.go's noiseSuite, NN, PSK at 0,
// empty prologue) produces the reference's exact handshake messages and
// KCMs. flynn/noise takes the ephemeral key from Config.Random (its
// Config.EphemeralKeypair is only for pre-messages: the "e" token always
// generates a fresh key), so a reader holding the key fixes it.
func TestNoiseConfigMatchesReference(t *testing.T) {
	v := loadNoiseVectors(t)
	psk := mustHex(t, v.PSK)
	ls, fs := v.LeaderSends, v.FollowerSends
	body := func(s wireStep) []byte { return mustHex(t, s.Hex)[4:] }

	initiator, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: noiseSuite, Pattern: noise.HandshakeNN, Initiator: true,
		PresharedKey: psk, PresharedKeyPlacement: 0, Random: bytes.NewReader(mustHex(t, v.LeaderE)),
	})
	if err != nil {
		t.Fatal(err)
	}
	responder, err := noise.NewHandshakeState(noise.Config{
		CipherSuite: noiseSuite, Pattern: noise.HandshakeNN,
		PresharedKey: psk, PresharedKeyPlacement: 0, Random: bytes.NewReader(mustHex(t, v.FollowerE)),
	})
	if err != nil {
		t.Fatal(err)
	}
	msg1, _, _, err := initiator.WriteMessage(nil, nil)
	if err != nil || !bytes.Equal(msg1, body(ls[1])) {
		t.Fatalf("msg1 %x, %v; reference %x", msg1, err, body(ls[1]))
	}
	if _, _, _, err := responder.ReadMessage(nil, msg1); err != nil {
		t.Fatal(err)
	}
	msg2, toFollowerF, toLeaderF, err := responder.WriteMessage(nil, nil)
	if err != nil || !bytes.Equal(msg2, body(fs[1])) {
		t.Fatalf("msg2 %x, %v; reference %x", msg2, err, body(fs[1]))
	}
	_, toFollowerL, toLeaderL, err := initiator.ReadMessage(nil, msg2)
	if err != nil {
		t.Fatal(err)
	}
	if kcm, _ := toLeaderF.Encrypt(nil, nil, []byte{0}); !bytes.Equal(kcm, body(fs[2])) {
		t.Fatalf("follower KCM %x; reference %x", kcm, body(fs[2]))
	}
	if kcm, _ := toFollowerL.Encrypt(nil, nil, []byte{0}); !bytes.Equal(kcm, body(ls[2])) {
		t.Fatalf("leader KCM %x; reference %x", kcm, body(ls[2]))
	}
	// And each side decrypts the other's.
	if p, err := toLeaderL.Decrypt(nil, nil, body(fs[2])); err != nil || !bytes.Equal(p, []byte{0}) {
		t.Fatalf("leader decrypting the reference's KCM: %x, %v", p, err)
	}
	if p, err := toFollowerF.Decrypt(nil, nil, body(ls[2])); err != nil || !bytes.Equal(p, []byte{0}) {
		t.Fatalf("follower decrypting the reference's KCM: %x, %v", p, err)
	}
}

// fixEphemeral makes crypto/rand deterministic for the rest of the test
// (testing/cryptotest) and checks that the first 32 bytes it yields, which
// handshake() takes as its ephemeral private key, are the vector's key.
func fixEphemeral(t *testing.T, seed uint64, want []byte) {
	cryptotest.SetGlobalRandom(t, seed)
	first := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, first); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, want) {
		t.Skipf("cryptotest.SetGlobalRandom(t, %d) now starts with %x, not the vector's ephemeral key %x: "+
			"update the keys in testdata/gen_noise_vectors.py and regenerate", seed, first, want)
	}
	cryptotest.SetGlobalRandom(t, seed) // start the stream again
}

// ephemeralDrawn skips the test if the handshake did not draw the expected
// key (something else in the process read crypto/rand first); the
// ephemeral key is random by design, so that is no failure of L2.
func ephemeralDrawn(t *testing.T, frame []byte, private []byte) {
	pub, err := curve25519.X25519(private, curve25519.Basepoint)
	if err != nil {
		t.Fatal(err)
	}
	if len(frame) >= 36 && !bytes.Equal(frame[4:36], pub) {
		t.Skipf("the handshake's ephemeral key %x is not the one the vector fixed (%x): crypto/rand was read by someone else", frame[4:36], pub)
	}
}

// gander's own handshake(), as Leader, against the reference Follower's
// recorded bytes: every byte gander writes (prologue, msg1, its KCM, every
// record including a three-message DATA) is the reference Leader's, and
// gander reads the reference Follower's records.
func TestHandshakeMatchesReferenceAsLeader(t *testing.T) {
	v := loadNoiseVectors(t)
	fixEphemeral(t, 1, mustHex(t, v.LeaderE))
	a, b := l2Loopback(t)
	ls, fs := v.LeaderSends, v.FollowerSends

	// The scripted Follower: its prologue, msg2 and KCM at once.
	go b.Write(stepsBytes(t, fs[:3]...))
	res := handshakeAsync(a, true, mustHex(t, v.PSK))
	readStep(t, b, ls[0], "leader")
	readEphemeralStep(t, b, ls[1], mustHex(t, v.LeaderE), "leader")
	r := <-res
	if r.err != nil {
		t.Fatalf("handshake against the reference follower: %v", r.err)
	}

	// Selection, then the Leader's records; then the Follower's.
	writesMatch(t, r.l, b, ls[2:], "leader")
	readsMatch(t, r.l, b, fs[3:])
}

// The same as Follower: gander's msg2, KCM and records (including DATA that
// fills one Noise message exactly, and one byte more) are the reference
// Follower's bytes.
func TestHandshakeMatchesReferenceAsFollower(t *testing.T) {
	v := loadNoiseVectors(t)
	fixEphemeral(t, 2, mustHex(t, v.FollowerE))
	a, b := l2Loopback(t)
	ls, fs := v.LeaderSends, v.FollowerSends

	go b.Write(stepsBytes(t, ls[:2]...))
	res := handshakeAsync(a, false, mustHex(t, v.PSK))
	readStep(t, b, fs[0], "follower")
	readEphemeralStep(t, b, fs[1], mustHex(t, v.FollowerE), "follower")
	readStep(t, b, fs[2], "follower") // its KCM
	r := <-res
	if r.err != nil {
		t.Fatalf("handshake against the reference leader: %v", r.err)
	}

	// The reference Leader selects the connection, then sends records.
	go b.Write(mustHex(t, ls[2].Hex))
	if err := r.l.awaitSelection(); err != nil {
		t.Fatalf("the reference leader's KCM: %v", err)
	}
	readsMatch(t, r.l, b, ls[3:])
	writesMatch(t, r.l, b, fs[3:], "follower")
}

// stepsBytes is the bytes of steps end to end: what the reference wrote
// at once.
func stepsBytes(t testing.TB, steps ...wireStep) []byte {
	t.Helper()
	var out []byte
	for _, s := range steps {
		out = append(out, mustHex(t, s.Hex)...)
	}
	return out
}

type handshakeResult struct {
	l   *link
	err error
}

// handshakeAsync runs gander's handshake on conn on a goroutine of its
// own, which ends with the handshake; the result comes on the channel.
func handshakeAsync(conn net.Conn, leader bool, psk []byte) <-chan handshakeResult {
	res := make(chan handshakeResult, 1)
	go func() {
		l, err := handshake(conn, leader, psk, "")
		res <- handshakeResult{l, err}
	}()
	return res
}

// readEphemeralStep is readStep for the handshake message that carries
// gander's ephemeral key: it skips the test if that key is not private's
// public key (see ephemeralDrawn) before it checks the bytes.
func readEphemeralStep(t *testing.T, conn net.Conn, s wireStep, private []byte, who string) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	msg := make([]byte, s.size())
	if _, err := io.ReadFull(conn, msg); err != nil {
		t.Fatalf("%s %s: %v", who, s.What, err)
	}
	ephemeralDrawn(t, msg, private)
	s.check(t, msg, who)
}

// writesMatch has l write each step's record and checks that conn reads
// the reference's bytes for it.
func writesMatch(t *testing.T, l *link, conn net.Conn, steps []wireStep, who string) {
	t.Helper()
	for _, s := range steps {
		rec := s.Record.toRecord(t)
		errc := make(chan error, 1)
		go func() { errc <- l.writeRecord(rec) }()
		readStep(t, conn, s, who)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// readsMatch writes each step's bytes to conn, as long as the vector has
// them (the largest are given by length and hash only), and checks that l
// reads the reference's record from them.
func readsMatch(t *testing.T, l *link, conn net.Conn, steps []wireStep) {
	t.Helper()
	for _, s := range steps {
		if s.Hex == "" {
			break
		}
		go conn.Write(mustHex(t, s.Hex))
		got, err := l.readRecord()
		if want := s.Record.toRecord(t); err != nil || !sameRecord(got, want) {
			t.Fatalf("reading the reference's %+v: %#v, %v", *s.Record, got, err)
		}
	}
}

func TestRelayLinesMatchReference(t *testing.T) {
	v := loadNoiseVectors(t)
	for _, ex := range []relayLine{v.RelayExample, v.RelayPSKExample} {
		if got := transit.RelayHandshake(mustHex(t, ex.Key), ex.Side); got != ex.Line {
			t.Errorf("transit.RelayHandshake(%s, %s) = %q, reference %q", ex.Key, ex.Side, got, ex.Line)
		}
	}
	// The digest's vectors, written out.
	if got := transit.RelayHandshake(bytes.Repeat([]byte("k"), 32), "12345678abcdabcd"); got != "please relay 3f4147851dbd2589d25b654ee9fb35ed0d3e5f19c5c5403e8e6a195c70f0577a for side 12345678abcdabcd\n" {
		t.Errorf("relay line %q", got)
	}
	if got := transit.RelayHandshake(mustHex(t, "676f8bcdf9a81a0b230165160353fc140322251e0a6ac5cc88c715e05f60c2dc"), "0123456789abcdef"); !strings.Contains(got, " 7d85c8526dd57ebb0932081b574aa03b5965b3b04e24eb3831a9a63919de9081 ") {
		t.Errorf("relay line %q", got)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add(uint16(16), false, []byte{0, 0, 0, 3, 'a', 'b', 'c'})        // a whole frame
	f.Add(uint16(16), true, []byte{0, 0, 0, 3, 'a', 'b', 'c', 'd'})    // a frame and a byte of the next, into a buffer
	f.Add(uint16(3), false, []byte{0, 0, 0, 3, 'a', 'b', 'c'})         // exactly the limit
	f.Add(uint16(2), false, []byte{0, 0, 0, 3, 'a', 'b', 'c'})         // one byte over the limit
	f.Add(uint16(16), false, []byte{0, 0, 0, 0})                       // an empty frame
	f.Add(uint16(16), false, []byte{0, 0, 0, 9, 'a'})                  // a truncated body
	f.Add(uint16(16), false, []byte{0, 0})                             // a truncated prefix
	f.Add(uint16(16), false, []byte{})                                 // nothing at all
	f.Add(uint16(4095), false, []byte{0xff, 0xff, 0xff, 0xff})         // a hostile length
	f.Add(uint16(0), true, []byte{0x00, 0xff, 0xff, 0xf1, 0xde, 0xad}) // a large length, zero limit
	f.Fuzz(func(t *testing.T, limit16 uint16, withBuf bool, data []byte) {
		limit := int(limit16 % 4096)
		var buf []byte
		if withBuf {
			buf = make([]byte, 0, 32)
		}
		claimed := -1
		if len(data) >= 4 {
			claimed = int(binary.BigEndian.Uint32(data))
		}
		measure := claimed > 1<<20
		var before, after runtime.MemStats
		if measure {
			runtime.ReadMemStats(&before)
		}
		frame, err := readFrame(bytes.NewReader(data), buf, limit)
		if measure {
			runtime.ReadMemStats(&after)
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
				t.Fatalf("claimed %d bytes (limit %d): %d bytes allocated", claimed, limit, grew)
			}
		}
		if len(frame) > limit || (err != nil && frame != nil) {
			t.Fatalf("%x (limit %d): %d-byte frame, %v", data, limit, len(frame), err)
		}
		switch {
		case len(data) == 0:
			if err != io.EOF {
				t.Fatalf("empty input: %v", err)
			}
		case claimed < 0:
			if err != io.ErrUnexpectedEOF {
				t.Fatalf("%x: %v", data, err)
			}
		case claimed > limit:
			var pe *ProtocolError
			if !errors.As(err, &pe) || pe.Layer != "frame" {
				t.Fatalf("%x (limit %d): %v", data, limit, err)
			}
		case claimed > len(data)-4:
			if err != io.ErrUnexpectedEOF {
				t.Fatalf("%x: %v", data, err)
			}
		default:
			if err != nil || !bytes.Equal(frame, data[4:4+claimed]) {
				t.Fatalf("%x: %x, %v", data, frame, err)
			}
		}
	})
}

// shortDeadlineConn caps every deadline, so that a handshake whose peer
// goes silent ends quickly whatever deadline handshake() sets.
type shortDeadlineConn struct {
	net.Conn
	d time.Duration
}

func (c shortDeadlineConn) cap(t time.Time) time.Time {
	if limit := time.Now().Add(c.d); t.IsZero() || t.After(limit) {
		return limit
	}
	return t
}
func (c shortDeadlineConn) SetDeadline(t time.Time) error { return c.Conn.SetDeadline(c.cap(t)) }
func (c shortDeadlineConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.cap(t))
}

func FuzzHandshake(f *testing.F) {
	// The reference Leader's prologue and msg1 for another key.
	v := loadNoiseVectors(f)
	refLeader := stepsBytes(f, v.LeaderSends[:2]...)
	refFollower := stepsBytes(f, v.FollowerSends[:3]...)

	f.Add(false, false, []byte{})                                                         // silence, then hang up
	f.Add(false, true, []byte(prologueLeader))                                            // a prologue, then silence
	f.Add(false, false, append([]byte(prologueLeader), 0, 0, 0, 48))                      // a frame header, no body
	f.Add(false, false, append([]byte(prologueLeader), 0xff, 0xff, 0xff, 0xff))           // a hostile length
	f.Add(false, false, append([]byte(prologueLeader), frameOf(make([]byte, 48))...))     // zeros as msg1
	f.Add(false, false, refLeader)                                                        // a real msg1 under another key
	f.Add(false, true, refLeader[:len(refLeader)-1])                                      // a real msg1 cut short, then silence
	f.Add(false, false, []byte(prologueFollower))                                         // our own role's prologue
	f.Add(false, false, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))                      // HTTP
	f.Add(false, false, []byte("ok\n"))                                                   // a relay's answer to a direct peer
	f.Add(true, false, refFollower)                                                       // a real msg2 and KCM under another key
	f.Add(true, false, append([]byte(prologueFollower), frameOf(make([]byte, 48))...))    // zeros as msg2
	f.Add(true, true, append([]byte(prologueFollower), 0, 0, 0, 48))                      // a frame header, then silence
	f.Add(true, false, append([]byte(prologueFollower), frameOf(make([]byte, 1<<16))...)) // an oversized msg2
	key := bytes.Repeat([]byte{0x5a}, 32)
	f.Fuzz(func(t *testing.T, leader, hold bool, peer []byte) {
		a, b := net.Pipe()
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { // drain what the handshake writes
			defer wg.Done()
			io.Copy(io.Discard, b)
		}()
		go func() {
			defer wg.Done()
			b.Write(peer)
			if !hold {
				b.Close()
			}
		}()
		done := make(chan error, 1)
		go func() {
			_, err := handshake(shortDeadlineConn{a, 20 * time.Millisecond}, leader, key, "")
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Fatalf("a handshake (leader=%v) succeeded with %x", leader, peer)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("handshake (leader=%v) hangs on %x", leader, peer)
		}
		a.Close()
		b.Close()
		wg.Wait()
	})
}
