package dilation

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flynn/noise"

	"github.com/gander-pair/gander/transit"
)

// A manager connected to a scripted peer that speaks L2 and L3 by hand, so
// that tests can send it any record, in any number, and read (or refuse to
// read) what it answers.

const (
	sideHigh = "ffffffffffffff00" // leads against sideLow
	sideLow  = "0000000000000001"
)

var hostileKey = []byte("hostile peer test dilation key!!")

// fakeMailbox is the wormhole as the manager sees it: the peer can dilate,
// and dilate-N messages travel through two channels.
type fakeMailbox struct {
	toGander   chan []byte
	fromGander chan []byte
	flow       bool // the peer announces gander-flow-v1, as a gander peer does
}

func newFakeMailbox() *fakeMailbox {
	return &fakeMailbox{toGander: make(chan []byte, 64), fromGander: make(chan []byte, 64)}
}

func (f *fakeMailbox) PeerVersion(ctx context.Context) (map[string]json.RawMessage, error) {
	v := map[string]json.RawMessage{"can-dilate": json.RawMessage(`["ged"]`)}
	if f.flow {
		v[flowAbilitiesKey] = json.RawMessage(`["` + flowAbility + `"]`)
	}
	return v, nil
}

// send hands gander m as the peer's next L1 message.
func (f *fakeMailbox) send(m l1Message) {
	data, _ := json.Marshal(m)
	f.toGander <- data
}

// startAsFollower starts gander with cfg over mb as the Follower (sideLow),
// closed when the test ends, and has the fake Leader say "please".
func startAsFollower(t testing.TB, mb *fakeMailbox, cfg Config) *Conn {
	t.Helper()
	cfg.Side = sideLow
	c, err := Start(mb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	mb.send(l1Message{Type: "please", Side: sideHigh, UseVersion: "ged"})
	return c
}

func (f *fakeMailbox) DeriveKey(purpose string, length int) ([]byte, error) { return hostileKey, nil }

func (f *fakeMailbox) SendDilation(ctx context.Context, msg []byte) error {
	select {
	case f.fromGander <- msg:
	default: // a test that stopped reading does not block the manager
	}
	return nil
}

func (f *fakeMailbox) ReceiveDilation(ctx context.Context) ([]byte, error) {
	select {
	case msg := <-f.toGander:
		return msg, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ganderHintPort waits for gander's connection-hints and returns the port
// it listens on.
func (f *fakeMailbox) ganderHintPort(t testing.TB) int {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case raw := <-f.fromGander:
			var msg l1Message
			if err := json.Unmarshal(raw, &msg); err != nil {
				t.Fatal(err)
			}
			if msg.Type != "connection-hints" {
				continue
			}
			for _, h := range transit.ParseHints(msg.Hints) {
				if !h.Relay {
					return h.Port
				}
			}
		case <-deadline:
			t.Fatal("gander sent no direct hint")
		}
	}
}

// hostilePeer is the scripted other side of a dilated connection.
type hostilePeer struct {
	*scriptedPeer
	mb      *fakeMailbox
	gander  *Conn
	leader  bool // the peer's role
	nextSeq uint32
	writeMu sync.Mutex
}

// dialHostile starts gander with cfg (its Side decides the roles: gander
// leads with sideHigh) and connects a scripted peer to it.
func dialHostile(t testing.TB, cfg Config) *hostilePeer {
	t.Helper()
	return dialHostileWith(t, cfg, 0)
}

// dialHostileWith is dialHostile with the peer's receive buffer set to
// rcvbuf bytes before connecting (0 keeps the default): a peer that reads
// nothing then holds little, and gander's writes back stall early.
func dialHostileWith(t testing.TB, cfg Config, rcvbuf int) *hostilePeer {
	t.Helper()
	return dialHostileMailbox(t, cfg, rcvbuf, newFakeMailbox())
}

// dialHostileMailbox is dialHostileWith over mb, which says what the
// peer's version message announces.
func dialHostileMailbox(t testing.TB, cfg Config, rcvbuf int, mb *fakeMailbox) *hostilePeer {
	t.Helper()
	if cfg.Side == "" {
		cfg.Side = sideHigh
	}
	peerSide := sideLow
	if cfg.Side == sideLow {
		peerSide = sideHigh
	}
	c, err := Start(mb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	mb.send(l1Message{Type: "please", Side: peerSide, UseVersion: "ged"})
	port := mb.ganderHintPort(t)
	dialer := net.Dialer{Timeout: 5 * time.Second}
	if rcvbuf > 0 {
		dialer.Control = func(network, address string, c syscall.RawConn) error {
			return c.Control(func(fd uintptr) {
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
		}
	}
	conn, err := dialer.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	p := &hostilePeer{mb: mb, gander: c, leader: peerSide > cfg.Side}
	if p.leader {
		p.scriptedPeer = scriptLeader(t, conn, hostileKey)
	} else {
		p.scriptedPeer = scriptFollower(t, conn, hostileKey)
		if p.scriptedPeer != nil {
			p.sendRecord(t, kcmRecord{})
		}
	}
	if p.scriptedPeer == nil {
		t.FailNow()
	}
	if !p.leader {
		// gander, leading, selects the connection with its KCM.
		if rec, err := p.readRecord(); err != nil || rec != (kcmRecord{}) {
			t.Fatalf("gander's KCM: %#v, %v", rec, err)
		}
	}
	conn.SetDeadline(time.Time{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return p
}

// scriptLeader does a Leader's handshake by hand, including both KCMs.
func scriptLeader(t testing.TB, conn net.Conn, key []byte) *scriptedPeer {
	t.Helper()
	p := &scriptedPeer{conn: conn, r: bufio.NewReader(conn)}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, prologueLeader); err != nil {
		t.Error(err)
		return nil
	}
	if err := expect(p.r, prologueFollower, "prologue"); err != nil {
		t.Error(err)
		return nil
	}
	hs, err := noise.NewHandshakeState(noise.Config{CipherSuite: noiseSuite, Pattern: noise.HandshakeNN, Initiator: true, PresharedKey: key})
	if err != nil {
		t.Error(err)
		return nil
	}
	msg1, _, _, err := hs.WriteMessage(nil, nil)
	if err != nil {
		t.Error(err)
		return nil
	}
	if _, err := conn.Write(frameOf(msg1)); err != nil {
		t.Error(err)
		return nil
	}
	msg2, err := readFrame(p.r, nil, 48)
	if err != nil {
		t.Error(err)
		return nil
	}
	_, toFollower, toLeader, err := hs.ReadMessage(nil, msg2)
	if err != nil {
		t.Error(err)
		return nil
	}
	p.send, p.recv = toFollower, toLeader
	if rec, err := p.readRecord(); err != nil || rec != (kcmRecord{}) {
		t.Errorf("follower's KCM: %#v, %v", rec, err)
		return nil
	}
	p.sendRecord(t, kcmRecord{})
	return p
}

// readRecord reads and decrypts one record gander sent.
func (p *scriptedPeer) readRecord() (record, error) {
	frame, err := readFrame(p.r, nil, maxFrameSize)
	if err != nil {
		return nil, err
	}
	var plain []byte
	for len(frame) > 0 {
		n := min(len(frame), noiseMaxCiphertext)
		if plain, err = p.recv.Decrypt(plain, nil, frame[:n]); err != nil {
			return nil, err
		}
		frame = frame[n:]
	}
	return parseRecord(plain)
}

// appendFrame appends the frame of one record, split into Noise messages
// as the reference does for long records.
func (p *scriptedPeer) appendFrame(dst []byte, r record) []byte {
	plain := appendRecord(nil, r)
	chunks := (len(plain) + noiseMaxPlaintext - 1) / noiseMaxPlaintext
	dst = appendFrameHeader(dst, len(plain)+16*chunks)
	for len(plain) > 0 {
		n := min(len(plain), noiseMaxPlaintext)
		dst, _ = p.send.Encrypt(dst, nil, plain[:n])
		plain = plain[n:]
	}
	return dst
}

// send writes records in one write, numbering OPEN, DATA and CLOSE.
func (p *hostilePeer) send(rs ...record) error {
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	var buf []byte
	for _, r := range rs {
		switch v := r.(type) {
		case openRecord:
			v.seq = p.nextSeq
			r = v
		case dataRecord:
			v.seq = p.nextSeq
			r = v
		case closeRecord:
			v.seq = p.nextSeq
			r = v
		}
		switch r.(type) {
		case openRecord, dataRecord, closeRecord:
			p.nextSeq++
		}
		buf = p.appendFrame(buf, r)
	}
	p.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := p.conn.Write(buf)
	return err
}

// keepSending has the peer send next(0), next(1), ... one every 20 ms on
// a goroutine of its own, until the test ends or a send fails.
func (p *hostilePeer) keepSending(t testing.TB, next func(i int) record) {
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if p.send(next(i)) != nil {
				return
			}
		}
	}()
}

// discardUntilGone reads and drops all gander sends; the channel closes
// when gander drops the link.
func (p *hostilePeer) discardUntilGone() <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		io.Copy(io.Discard, p.conn)
		close(gone)
	}()
	return gone
}

// peerSCID is the n-th subchannel id (from 0) the peer may choose: the
// Leader's are odd, the Follower's even, never 0.
func (p *hostilePeer) peerSCID(n int) uint32 {
	if p.leader {
		return uint32(2*n + 1)
	}
	return uint32(2*n + 2)
}

// collect reads gander's records in the background until the connection
// ends, and hands them to the test.
func (p *hostilePeer) collect(t testing.TB) <-chan record {
	out := make(chan record, 1<<16)
	go func() {
		defer close(out)
		for {
			p.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			rec, err := p.readRecord()
			if err != nil {
				return
			}
			select {
			case out <- rec:
			default:
			}
		}
	}()
	return out
}

// waitForClose waits for gander's CLOSE of scid among recs.
func waitForClose(t testing.TB, recs <-chan record, scid uint32, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case rec, ok := <-recs:
			if !ok {
				t.Fatalf("connection ended before gander closed subchannel %d", scid)
			}
			if c, isClose := rec.(closeRecord); isClose && c.scid == scid {
				return
			}
		case <-deadline:
			t.Fatalf("gander did not close subchannel %d within %v", scid, within)
		}
	}
}

// managerState is a snapshot of what the manager holds for the peer.
type managerState struct {
	subchannels, pending, unacked int
	outboxItems, outboxBytes      int
}

func (p *hostilePeer) state() managerState {
	m := p.gander.m
	m.mu.Lock()
	defer m.mu.Unlock()
	st := managerState{subchannels: len(m.subchannels), unacked: len(m.unacked)}
	for _, scs := range m.pendingOpens {
		st.pending += len(scs)
	}
	if q := m.outbox; q != nil {
		q.mu.Lock()
		st.outboxItems, st.outboxBytes = len(q.items), q.bytes
		q.mu.Unlock()
	}
	return st
}

// eventually polls cond for up to d.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

var errTimeout = errors.New("timed out")
