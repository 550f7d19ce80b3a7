package dilation

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flynn/noise"

	"github.com/gander-pair/gander/transit"
)

// L2 is one TCP connection, direct or through a transit relay, as
// _dilation/connection.py speaks it:
//
//	relay only: → "please relay <token hex> for side <side>\n"   ← "ok\n"   (transit.AwaitRelay)
//	both:       → own prologue                                  ← peer's prologue
//	then frames: u32 BE length ‖ bytes
//	  Leader → Noise msg1 (48 B)   Follower → msg2 (48 B), KCM
//	  Leader, once it selects this connection → KCM
//	  records, each one frame of one or more Noise messages
//
// Roles come from Leader/Follower, never from who dialled.

const (
	prologueLeader   = "Magic-Wormhole Dilation Handshake v1 Leader\n\n"
	prologueFollower = "Magic-Wormhole Dilation Handshake v1 Follower\n\n"

	// A Noise message carries at most 65535 bytes of ciphertext; a record
	// longer than one message's plaintext is split into several messages
	// concatenated in one frame.
	noiseMaxCiphertext = noise.MaxMsgLen
	noiseMaxPlaintext  = noiseMaxCiphertext - 16

	// MaxRecordSize bounds one inbound record. The protocol allows 4 GiB;
	// honest peers write records of at most a socket read (Python) or
	// maxDataPayload (gander), so a larger length prefix is refused before
	// anything is allocated.
	MaxRecordSize = 16 << 20
	maxFrameSize  = MaxRecordSize + (MaxRecordSize/noiseMaxPlaintext+1)*16

	handshakeFrameSize = 48
	handshakeTimeout   = 30 * time.Second

	// maxHandshakeRecordFrame bounds a frame read before the connection
	// is selected: the only records then are the KCMs, a type byte
	// sealed in one Noise message (17 bytes, as the reference sends
	// them). A longer length prefix is refused before anything is
	// allocated, so that each of the many candidate connections of a
	// generation holds no more than its small read buffer.
	maxHandshakeRecordFrame = 64

	// linkWriteTimeoutIntervals bounds, in PingIntervals, how long a write
	// on the selected connection may go without the peer accepting a
	// byte (a zero TCP window): the connection is then dropped, and
	// reconnection takes over.
	linkWriteTimeoutIntervals = 2
)

var noiseSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)

// ProtocolError is the peer, or whatever answered on a connection,
// breaking the Dilation protocol. The connection is dropped.
type ProtocolError struct {
	Layer  string // "relay", "prologue", "frame", "noise", "record", "L4"
	Reason string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("dilation %s: %s", e.Layer, e.Reason)
}

// expect reads exactly the bytes of want, failing at the first byte that
// differs so that a peer speaking something else is dropped at once.
func expect(r *bufio.Reader, want, layer string) error {
	for i := 0; i < len(want); i++ {
		c, err := r.ReadByte()
		if err != nil {
			return fmt.Errorf("dilation %s: %w", layer, err)
		}
		if c != want[i] {
			return &ProtocolError{Layer: layer, Reason: fmt.Sprintf("expected %q, got %q", want, append([]byte(want[:i]), c))}
		}
	}
	return nil
}

// readFrame reads one length-prefixed frame into buf (grown as needed),
// refusing lengths above max before allocating.
func readFrame(r io.Reader, buf []byte, max int) ([]byte, error) {
	n, err := readFrameLength(r, max)
	if err != nil {
		return nil, err
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	return readFrameBody(r, buf[:n])
}

// readFrameLength reads a frame's length prefix and checks it against max.
func readFrameLength(r io.Reader, max int) (int, error) {
	var prefix [4]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return 0, err
	}
	n := binary.BigEndian.Uint32(prefix[:])
	if uint64(n) > uint64(max) {
		return 0, &ProtocolError{Layer: "frame", Reason: fmt.Sprintf("frame of %d bytes exceeds the %d-byte limit", n, max)}
	}
	return int(n), nil
}

// readFrameBody fills buf, the body of a frame whose length was read.
func readFrameBody(r io.Reader, buf []byte) ([]byte, error) {
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

func appendFrameHeader(dst []byte, n int) []byte {
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// link is an L2 connection after its handshake: records in, records out.
// One goroutine may read and another write at the same time.
type link struct {
	conn        net.Conn
	description string // e.g. "direct 127.0.0.1:4321" or "relay 127.0.0.1:4001"
	relayed     bool

	r    *bufio.Reader
	recv *noise.CipherState

	writeMu  sync.Mutex
	send     *noise.CipherState
	writeBuf []byte
	scratch  []byte
	// writeTimeout, once the connection is selected, bounds each wait for
	// the peer to accept more of a write (see linkWriteTimeoutIntervals);
	// stalled says a write gave up so.
	writeTimeout time.Duration
	stalled      atomic.Bool

	closeOnce sync.Once
	closed    chan struct{} // closed by close
}

// handshake runs L2 on a fresh connection up to and including the
// follower's key confirmation: the Leader returns once the Follower's KCM
// decrypted (the connection is viable; selecting it sends the Leader's
// KCM), the Follower once it has sent its KCM (it then waits for the
// Leader's with awaitSelection).
func handshake(conn net.Conn, leader bool, dilationKey []byte, relay string) (*link, error) {
	return handshakeWithin(conn, leader, dilationKey, relay, handshakeTimeout)
}

// handshakeWithin is handshake with the whole of it bounded by timeout.
func handshakeWithin(conn net.Conn, leader bool, dilationKey []byte, relay string, timeout time.Duration) (*link, error) {
	return handshakeVia(conn, leader, dilationKey, relay, nil, timeout)
}

// handshakeVia is handshake with the wait for the relay's "ok" (that is,
// for the peer's connection to reach the relay) bounded by
// transit.RelayPartnerTimeout and announced to atRelay (if not nil) as it starts,
// and the rest bounded by timeout.
func handshakeVia(conn net.Conn, leader bool, dilationKey []byte, relay string, atRelay func(), timeout time.Duration) (*link, error) {
	defer conn.SetDeadline(time.Time{})
	// A small read buffer: frames larger than it are read straight into
	// their own buffer, which readRecord hands on without copying.
	l := &link{conn: conn, r: bufio.NewReaderSize(conn, 16<<10), closed: make(chan struct{})}

	if relay != "" {
		if err := transit.AwaitRelay(conn, l.r, relay, atRelay, timeout); err != nil {
			return nil, relayError(err)
		}
	}
	conn.SetDeadline(time.Now().Add(timeout))
	mine, theirs := prologueFollower, prologueLeader
	if leader {
		mine, theirs = prologueLeader, prologueFollower
	}
	if _, err := io.WriteString(conn, mine); err != nil {
		return nil, err
	}
	if err := expect(l.r, theirs, "prologue"); err != nil {
		return nil, err
	}

	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:           noiseSuite,
		Pattern:               noise.HandshakeNN,
		Initiator:             leader,
		PresharedKey:          dilationKey,
		PresharedKeyPlacement: 0,
	})
	if err != nil {
		return nil, err
	}
	if leader {
		msg1, _, _, err := hs.WriteMessage(nil, nil)
		if err != nil {
			return nil, err
		}
		if err := l.writeFrame(msg1); err != nil {
			return nil, err
		}
		msg2, err := readFrame(l.r, nil, handshakeFrameSize)
		if err != nil {
			return nil, err
		}
		_, toFollower, toLeader, err := hs.ReadMessage(nil, msg2)
		if err != nil {
			return nil, &ProtocolError{Layer: "noise", Reason: "handshake failed (wrong dilation key?)"}
		}
		l.send, l.recv = toFollower, toLeader
		rec, err := l.readHandshakeRecord()
		if err != nil {
			return nil, err
		}
		if _, ok := rec.(kcmRecord); !ok {
			return nil, &ProtocolError{Layer: "record", Reason: fmt.Sprintf("expected the follower's KCM, got %T", rec)}
		}
		return l, nil
	}
	msg1, err := readFrame(l.r, nil, handshakeFrameSize)
	if err != nil {
		return nil, err
	}
	if _, _, _, err := hs.ReadMessage(nil, msg1); err != nil {
		return nil, &ProtocolError{Layer: "noise", Reason: "handshake failed (wrong dilation key?)"}
	}
	msg2, toFollower, toLeader, err := hs.WriteMessage(nil, nil)
	if err != nil {
		return nil, err
	}
	l.send, l.recv = toLeader, toFollower
	// msg2 and our KCM in one write: as two small writes in a row, a
	// relay without TCP_NODELAY would hold the KCM back until msg2 is
	// acknowledged (up to a delayed ACK, 40 ms).
	out := appendFrameHeader(make([]byte, 0, 4+len(msg2)+64), len(msg2))
	out = append(out, msg2...)
	if out, err = l.sealRecord(out, kcmRecord{}); err != nil {
		return nil, err
	}
	if err := l.write(out); err != nil {
		return nil, err
	}
	return l, nil
}

// relayError is transit.AwaitRelay's error as the rest of L2 reports
// them: a wrong answer is a ProtocolError, I/O errors say their layer.
func relayError(err error) error {
	var answer *transit.UnexpectedRelayAnswer
	switch {
	case errors.Is(err, ErrNoPartnerAtRelay):
		return err
	case errors.As(err, &answer):
		return &ProtocolError{Layer: "relay", Reason: fmt.Sprintf("expected %q, got %q", "ok\n", answer.Got)}
	}
	return fmt.Errorf("dilation relay: %w", err)
}

// awaitSelection is the Follower waiting for the Leader's KCM, which says
// the Leader chose this connection.
func (l *link) awaitSelection() error {
	l.conn.SetReadDeadline(time.Now().Add(handshakeTimeout))
	defer l.conn.SetReadDeadline(time.Time{})
	rec, err := l.readHandshakeRecord()
	if err != nil {
		return err
	}
	if _, ok := rec.(kcmRecord); !ok {
		return &ProtocolError{Layer: "record", Reason: fmt.Sprintf("expected the leader's KCM, got %T", rec)}
	}
	return nil
}

func (l *link) writeFrame(b []byte) error {
	buf := appendFrameHeader(make([]byte, 0, 4+len(b)), len(b))
	return l.write(append(buf, b...))
}

// ErrLinkStalled is a connection dropped because the peer accepted none of
// our data for linkWriteTimeoutIntervals PingIntervals.
var ErrLinkStalled = errors.New("dilation: the peer stopped accepting data")

// write writes b whole. Once the connection is selected, a write on which
// the peer accepts nothing for writeTimeout fails with ErrLinkStalled; a
// slow peer that keeps accepting some is waited for.
func (l *link) write(b []byte) error {
	for {
		if l.writeTimeout > 0 {
			l.conn.SetWriteDeadline(time.Now().Add(l.writeTimeout))
		}
		n, err := l.conn.Write(b)
		b = b[n:]
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, os.ErrDeadlineExceeded) || l.writeTimeout == 0:
			return err
		case n == 0:
			l.stalled.Store(true)
			return fmt.Errorf("%w: nothing written for %v", ErrLinkStalled, l.writeTimeout)
		}
	}
}

// readRecord reads, decrypts and parses the next record. Each frame gets a
// fresh buffer, so a DATA payload may be kept by the caller.
func (l *link) readRecord() (record, error) {
	rec, _, err := l.receive()
	return rec, err
}

// readHandshakeRecord is readRecord before the connection is selected,
// when only a KCM may come (see maxHandshakeRecordFrame).
func (l *link) readHandshakeRecord() (record, error) {
	rec, _, err := l.receiveUpTo(maxHandshakeRecordFrame)
	return rec, err
}

// receive is readRecord with the frame's buffer, which a DATA payload
// aliases, for the caller to putBuffer once done with the record.
func (l *link) receive() (record, *[]byte, error) { return l.receiveUpTo(maxFrameSize) }

// receiveUpTo is receive refusing frames longer than max.
func (l *link) receiveUpTo(max int) (record, *[]byte, error) {
	n, err := readFrameLength(l.r, max)
	if err != nil {
		return nil, nil, err
	}
	buf := getBuffer(n)
	frame, err := readFrameBody(l.r, (*buf)[:n])
	if err != nil {
		putBuffer(buf)
		return nil, nil, err
	}
	var plain []byte
	if len(frame) <= noiseMaxCiphertext {
		// One Noise message, decrypted in place.
		plain, err = l.recv.Decrypt(frame[:0], nil, frame)
	} else {
		plain = make([]byte, 0, len(frame))
		for len(frame) > 0 && err == nil {
			n := min(len(frame), noiseMaxCiphertext)
			plain, err = l.recv.Decrypt(plain, nil, frame[:n])
			frame = frame[n:]
		}
		putBuffer(buf)
		buf = nil
	}
	if err != nil {
		putBuffer(buf)
		return nil, nil, &ProtocolError{Layer: "noise", Reason: "a frame failed to decrypt"}
	}
	rec, err := parseRecord(plain)
	if err != nil {
		putBuffer(buf)
		return nil, nil, err
	}
	return rec, buf, nil
}

// writeRecord encrypts and writes one record.
func (l *link) writeRecord(r record) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	var err error
	if l.writeBuf, err = l.sealRecord(l.writeBuf[:0], r); err != nil {
		return err
	}
	return l.write(l.writeBuf)
}

// writeRecords encrypts several records and writes them in one syscall.
func (l *link) writeRecords(rs []record) error { return l.writeBatch(rs, nil) }

// writeBatch is writeRecords telling when the records have been encrypted
// (sealed, if not nil, runs then, before the write): from then on their
// plaintext is not read again.
func (l *link) writeBatch(rs []record, sealed func()) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	l.writeBuf = l.writeBuf[:0]
	for _, r := range rs {
		var err error
		if l.writeBuf, err = l.sealRecord(l.writeBuf, r); err != nil {
			return err
		}
	}
	if sealed != nil {
		sealed()
	}
	return l.write(l.writeBuf)
}

// sealRecord appends the frame for one record.
func (l *link) sealRecord(dst []byte, r record) ([]byte, error) {
	if d, ok := r.(dataRecord); ok && d.wire != nil {
		return l.seal(dst, d.wire)
	}
	l.scratch = appendRecord(l.scratch[:0], r)
	return l.seal(dst, l.scratch)
}

// seal appends one frame holding plaintext, split into Noise messages.
func (l *link) seal(dst, plaintext []byte) ([]byte, error) {
	chunks := (len(plaintext) + noiseMaxPlaintext - 1) / noiseMaxPlaintext
	dst = appendFrameHeader(dst, len(plaintext)+16*chunks)
	for len(plaintext) > 0 {
		n := min(len(plaintext), noiseMaxPlaintext)
		var err error
		if dst, err = l.send.Encrypt(dst, nil, plaintext[:n]); err != nil {
			return nil, err
		}
		plaintext = plaintext[n:]
	}
	return dst, nil
}

func (l *link) close() {
	l.closeOnce.Do(func() {
		close(l.closed)
		l.conn.Close()
	})
}
