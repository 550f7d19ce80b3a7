package classic

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gander-pair/gander/transit"
)

func testKeys(t testing.TB) (sender, receiver keys) {
	tk := bytes.Repeat([]byte{7}, 32)
	return deriveKeys(tk, true), deriveKeys(tk, false)
}

func TestRecordsRoundTrip(t *testing.T) {
	s, r := testKeys(t)
	var wire bytes.Buffer
	seal := sealer{key: s.sealKey}
	for _, p := range [][]byte{[]byte("hello"), {}, bytes.Repeat([]byte{1}, sendRecordSize)} {
		wire.Write(seal.seal(p))
	}
	open := opener{key: r.openKey}
	for _, want := range [][]byte{[]byte("hello"), {}, bytes.Repeat([]byte{1}, sendRecordSize)} {
		got, err := open.open(&wire)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("open: %v, %d bytes, want %d", err, len(got), len(want))
		}
	}
	if _, err := open.open(&wire); err != io.EOF {
		t.Fatalf("after the last record: %v, want EOF", err)
	}
}

// The sender's and receiver's keys differ: a record cannot be reflected.
func TestRecordsDirectionsDiffer(t *testing.T) {
	s, _ := testKeys(t)
	seal := sealer{key: s.sealKey}
	open := opener{key: s.openKey}
	if _, err := open.open(bytes.NewReader(seal.seal([]byte("x")))); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("own record opened with the peer's key: %v", err)
	}
}

func TestRecordsRefused(t *testing.T) {
	s, r := testKeys(t)
	good := func(n int) []byte {
		seal := sealer{key: s.sealKey}
		var out []byte
		for i := 0; i < n; i++ {
			out = append(out, seal.seal([]byte("data"))...)
		}
		return out
	}
	second := good(2)[len(good(1)):] // a record with nonce 1, first
	tampered := good(1)
	tampered[len(tampered)-1] ^= 1
	huge := binary.BigEndian.AppendUint32(nil, MaxRecordSize+1)
	short := binary.BigEndian.AppendUint32(nil, 10)
	truncated := good(1)[:20]
	for _, tc := range []struct {
		name string
		wire []byte
		want error
	}{
		{"out of order", second, ErrBadRecord},
		{"tampered", tampered, ErrBadRecord},
		{"too large", huge, ErrRecordTooLarge},
		{"shorter than a nonce", append(short, make([]byte, 10)...), ErrBadRecord},
		{"truncated", truncated, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open := opener{key: r.openKey}
			if _, err := open.open(bytes.NewReader(tc.wire)); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzOpen(f *testing.F) {
	s, r := testKeys(f)
	seal := sealer{key: s.sealKey}
	f.Add(seal.seal([]byte("hello")))
	f.Add([]byte{0, 0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, wire []byte) {
		open := opener{key: r.openKey}
		rd := bytes.NewReader(wire)
		for i := 0; i < 100; i++ {
			if _, err := open.open(rd); err != nil {
				return
			}
		}
	})
}

// Both handshakes over a pipe: the receiver waits for "go", the sender
// gives it, and records flow both ways with the right keys.
func TestHandshake(t *testing.T) {
	s, r := testKeys(t)
	a, b := tcpPair(t)
	type result struct {
		rc  *recordConn
		err error
	}
	recv := make(chan result, 1)
	go func() {
		rc, err := r.handshake(b, transit.Attempt{Via: "test"})
		recv <- result{rc, err}
	}()
	src, err := s.handshake(a, transit.Attempt{Via: "test"})
	if err != nil {
		t.Fatal(err)
	}
	go selectConn(src)
	res := <-recv
	if res.err != nil {
		t.Fatal(res.err)
	}
	go src.writeRecord([]byte("payload"))
	got, err := res.rc.readRecord()
	if err != nil || string(got) != "payload" {
		t.Fatalf("record: %q, %v", got, err)
	}
}

// The receiver sends nothing until the sender's line has come, then its
// own at once: wormhole-william's sender needs that order (see
// keys.handshake).
func TestReceiverAnswersTheSendersLine(t *testing.T) {
	s, r := testKeys(t)
	peer, ours := tcpPair(t)
	done := make(chan error, 1)
	go func() {
		_, err := r.handshake(ours, transit.Attempt{Via: "test"})
		done <- err
	}()
	peer.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := peer.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the receiver spoke first: %d bytes, %v", n, err)
	}
	io.WriteString(peer, s.ours)
	peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	line := make([]byte, len(r.ours))
	if _, err := io.ReadFull(peer, line); err != nil || string(line) != r.ours {
		t.Fatalf("the receiver's answer %q, %v", line, err)
	}
	io.WriteString(peer, "go\n")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestHandshakeRefusesStrangers(t *testing.T) {
	_, r := testKeys(t)
	other := deriveKeys(bytes.Repeat([]byte{8}, 32), true)
	for _, tc := range []struct {
		name, peerSays string
		want           error
	}{
		{"another key", other.ours, ErrBadHandshake},
		{"nevermind", deriveKeys(bytes.Repeat([]byte{7}, 32), true).ours + "nevermind\n", ErrNevermind},
		{"garbage", "GET / HTTP/1.1\r\n\r\n", ErrBadHandshake},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := tcpPair(t)
			go func() {
				io.WriteString(a, tc.peerSays)
				io.Copy(io.Discard, a)
			}()
			if _, err := r.handshake(b, transit.Attempt{Inbound: true}); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			b.Close()
		})
	}
}

// The handshake lines are the reference's: transit_sender/receiver hex
// of HKDF(transit key), two newlines.
func TestHandshakeLines(t *testing.T) {
	s, r := testKeys(t)
	if s.ours != r.theirs || r.ours != s.theirs {
		t.Fatal("the two sides disagree on the lines")
	}
	if s.sealKey != r.openKey || r.sealKey != s.openKey || s.sealKey == s.openKey {
		t.Fatal("record keys are not the sender's and the receiver's")
	}
	br := bufio.NewReader(bytes.NewReader([]byte(s.ours)))
	line, _ := br.ReadString('\n')
	if len(line) != len("transit sender ")+64+len(" ready\n") {
		t.Fatalf("line %q", line)
	}
}

// The ceiling of the record format: seal → loopback TCP → open, as the
// e2e measurement (TestClassicGiB) compares against.
func BenchmarkSealLoopbackOpen(b *testing.B) {
	s, r := testKeys(b)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		open := opener{key: r.openKey}
		br := bufio.NewReaderSize(c, 64<<10)
		for {
			if _, err := open.open(br); err != nil {
				if err == io.EOF {
					err = nil
				}
				done <- err
				return
			}
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	rc := &recordConn{conn: c, s: sealer{key: s.sealKey}}
	buf := make([]byte, sendRecordSize)
	b.SetBytes(sendRecordSize)
	defer reportCPU(b, sendRecordSize)()
	for b.Loop() {
		if err := rc.writeRecord(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// tcpPair is two ends of a loopback TCP connection (a net.Pipe has no
// buffer: both sides writing their line first would block).
func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}
