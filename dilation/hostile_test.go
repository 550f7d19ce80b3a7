package dilation

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gander-pair/gander/transit"
)

// Records, frames and handshakes against what a broken or hostile peer
// can send.

func TestRecordEncodingsMatchTheReference(t *testing.T) {
	tests := []struct {
		rec record
		hex string
	}{
		{kcmRecord{}, "00"},
		{pingRecord{[4]byte{1, 2, 3, 4}}, "0101020304"},
		{pongRecord{[4]byte{1, 2, 3, 4}}, "0201020304"},
		// The two examples from upstream's test_parse.py.
		{openRecord{scid: 65536, seq: 16, subprotocol: "proto"}, "030001000000000010" + hex.EncodeToString([]byte("proto"))},
		{ackRecord{seq: 19}, "0600000013"},
		{dataRecord{scid: 3, seq: 7, payload: []byte("hi")}, "04000000030000000768" + "69"},
		{closeRecord{scid: 3, seq: 8}, "050000000300000008"},
	}
	for _, tt := range tests {
		got := appendRecord(nil, tt.rec)
		if hex.EncodeToString(got) != tt.hex {
			t.Errorf("%T: encoded %x, want %s", tt.rec, got, tt.hex)
		}
		if recordSize(tt.rec) != len(got) {
			t.Errorf("%T: recordSize %d, encoded %d", tt.rec, recordSize(tt.rec), len(got))
		}
		back, err := parseRecord(got)
		if err != nil || hex.EncodeToString(appendRecord(nil, back)) != tt.hex {
			t.Errorf("%T: parse back = %#v, %v", tt.rec, back, err)
		}
		// Every strict prefix of a fixed-size record is malformed; the
		// variable ones (OPEN, DATA) need at least their 9-byte header.
		for n := range len(got) {
			_, err := parseRecord(got[:n])
			variable := got[0] == typeOpen || got[0] == typeData
			if (!variable || n < 9) && !errors.Is(err, errBadRecord) {
				t.Errorf("%T: prefix of %d bytes parsed (%v)", tt.rec, n, err)
			}
		}
	}
	for _, bad := range [][]byte{{0x07}, {0xff, 1, 2}, append([]byte{typeOpen, 0, 0, 0, 1, 0, 0, 0, 1}, 0xff, 0xfe)} {
		if _, err := parseRecord(bad); !errors.Is(err, errBadRecord) {
			t.Errorf("parseRecord(%x) = %v, want errBadRecord", bad, err)
		}
	}
}

func FuzzRecordDecoding(f *testing.F) {
	f.Add([]byte{typeKCM})                                      // a KCM
	f.Add(appendRecord(nil, openRecord{1, 0, "fowl-commands"})) // an OPEN with a name
	f.Add(appendRecord(nil, dataRecord{scid: 1, seq: 2, payload: []byte("x")}))
	f.Add([]byte{typeAck, 0, 0})                                // a truncated ACK
	f.Add([]byte{0x42})                                         // an unknown type
	f.Add([]byte{typeOpen, 0, 0, 0, 1, 0, 0, 0, 1, 0xc3, 0x28}) // invalid UTF-8 name
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := parseRecord(b)
		if err != nil {
			return
		}
		if again := appendRecord(nil, rec); !bytes.Equal(again, b) || recordSize(rec) != len(b) {
			t.Fatalf("%x parsed as %#v, which encodes as %x", b, rec, again)
		}
	})
}

// A length prefix is checked before anything is allocated for the frame.
func TestHugeLengthPrefixIsRefusedWithoutAllocating(t *testing.T) {
	for _, n := range []uint32{0xffffffff, maxFrameSize + 1} {
		prefix := []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := readFrame(bytes.NewReader(append(prefix, 1, 2, 3)), nil, maxFrameSize)
		runtime.ReadMemStats(&after)
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Layer != "frame" {
			t.Fatalf("length %d: err = %v, want a frame ProtocolError", n, err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
			t.Fatalf("length %d: %d bytes allocated before refusing", n, grew)
		}
	}
}

func FuzzFrameLength(f *testing.F) {
	f.Add([]byte{0, 0, 0, 3, 'a', 'b', 'c'}) // a whole frame
	f.Add([]byte{0, 0, 0, 9, 'a'})           // a truncated frame
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})    // a hostile length
	f.Add([]byte{0, 0})                      // a truncated prefix
	f.Fuzz(func(t *testing.T, b []byte) {
		const max = 1024
		frame, err := readFrame(bytes.NewReader(b), nil, max)
		if err == nil && (len(frame) > max || cap(frame) > max) {
			t.Fatalf("accepted a %d-byte frame over the %d limit", len(frame), max)
		}
	})
}

// tcpPair returns the two ends of a loopback TCP connection. (net.Pipe
// does not do: it has no buffer, and both roles write before reading.)
func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	return a, b
}

// pipeHandshake runs both roles over a loopback connection.
func pipeHandshake(t *testing.T, leaderKey, followerKey []byte) (leader, follower *link, leaderErr, followerErr error) {
	t.Helper()
	a, b := tcpPair(t)
	t.Cleanup(func() { a.Close(); b.Close() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		follower, followerErr = handshake(b, false, followerKey, "")
		if followerErr != nil {
			b.Close()
		}
	}()
	leader, leaderErr = handshake(a, true, leaderKey, "")
	if leaderErr != nil {
		a.Close()
	}
	<-done
	return
}

func TestHandshakeAndRecordsOverLoopback(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	leader, follower, errL, errF := pipeHandshake(t, key, key)
	if errL != nil || errF != nil {
		t.Fatalf("handshake: %v / %v", errL, errF)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16) // spans several Noise messages
	go func() {
		leader.writeRecord(kcmRecord{}) // selects the connection
		leader.writeRecord(prepareDataFor(1, 0, big))
	}()
	if err := follower.awaitSelection(); err != nil {
		t.Fatal(err)
	}
	rec, err := follower.readRecord()
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := rec.(dataRecord); !ok || !bytes.Equal(d.payload, big) {
		t.Fatalf("got %T of %d bytes", rec, len(rec.(dataRecord).payload))
	}
}

func prepareDataFor(scid, seq uint32, payload []byte) dataRecord {
	d := prepareData(scid, payload)
	d.seq = seq
	d.encode()
	return d
}

func TestWrongKeyFailsTheNoiseHandshake(t *testing.T) {
	_, _, errL, errF := pipeHandshake(t, bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32))
	var pe *ProtocolError
	if !errors.As(errF, &pe) || pe.Layer != "noise" {
		t.Fatalf("follower: %v, want a noise ProtocolError", errF)
	}
	if errL == nil {
		t.Fatal("leader accepted a peer with another key")
	}
}

// Something that is not a Dilation peer is dropped at once, with a clear
// error, at the first byte that differs from the prologue.
func TestGarbagePeerIsDisconnected(t *testing.T) {
	for _, garbage := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		prologueFollower, // the peer claims our own role
		"Magic-Wormhole Dilation Handshake v2 Leader\n\n",
	} {
		a, b := tcpPair(t)
		go func() {
			io.WriteString(b, garbage)
			io.Copy(io.Discard, b)
		}()
		start := time.Now()
		_, err := handshake(a, false, make([]byte, 32), "")
		a.Close()
		b.Close()
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Layer != "prologue" || !strings.Contains(err.Error(), "expected") {
			t.Errorf("%q: err = %v, want a prologue ProtocolError", garbage, err)
		}
		if time.Since(start) > time.Second {
			t.Errorf("%q: took %v to refuse", garbage, time.Since(start))
		}
	}
}

// The relay handshake matches upstream's test_connector.py vector.
func TestRelayHandshakeVector(t *testing.T) {
	got := transit.RelayHandshake(bytes.Repeat([]byte("k"), 32), "12345678abcdabcd")
	want := "please relay 3f4147851dbd2589d25b654ee9fb35ed0d3e5f19c5c5403e8e6a195c70f0577a for side 12345678abcdabcd\n"
	if got != want {
		t.Fatalf("relay handshake %q, want %q", got, want)
	}
}

// Whatever a peer sends during the handshake ends in an error, never a
// panic or a hang.
func FuzzPeerHandshake(f *testing.F) {
	f.Add([]byte(prologueLeader))                                                              // a prologue, then silence
	f.Add(append([]byte(prologueLeader), 0, 0, 0, 48))                                         // a frame header, no body
	f.Add(append([]byte(prologueLeader), 0xff, 0xff, 0xff, 0xff))                              // a hostile length
	f.Add(append([]byte(prologueLeader), append([]byte{0, 0, 0, 48}, make([]byte, 48)...)...)) // zeros as msg1
	f.Add([]byte("please relay"))                                                              // talking relay to a peer
	f.Fuzz(func(t *testing.T, peer []byte) {
		a, b := tcpPair(t)
		defer a.Close()
		go func() {
			b.Write(peer)
			b.Close()
		}()
		a.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := handshake(a, false, make([]byte, 32), ""); err == nil {
			t.Fatalf("a handshake succeeded with %x", peer)
		}
	})
}
