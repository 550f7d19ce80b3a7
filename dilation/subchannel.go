package dilation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// maxDataPayload keeps each DATA record within one Noise message.
const maxDataPayload = noiseMaxPlaintext - 9

// MaxWriteChunk is the largest write that becomes a single DATA record;
// callers copying streams use it as their buffer size.
const MaxWriteChunk = maxDataPayload

// subchannelBufferLimit is how much memory unread data may hold in one
// subchannel before the connection stops reading from the peer, which is
// how the reference pauses its transport when any consumer is slow. What
// counts is the memory held (each chunk's buffer and chunkOverhead), not
// the payload, so that small records cannot hold more than their share.
const subchannelBufferLimit = 1 << 20

// Received payloads are kept so that memory held stays close to the data:
// a payload that fits in the spare room of the subchannel's last unread
// chunk is appended there; else one of at most compactBelow bytes is
// copied into a fresh compactChunkSize buffer (later small ones fill it);
// a bigger one stays in the frame's buffer, uncopied, as honest bulk
// transfers need. chunkOverhead is what each chunk costs besides its
// buffer (its slice header and bookkeeping), counted with it.
const (
	compactBelow     = 2 << 10
	flowCompactBelow = 16 << 10
	compactChunkSize = 8 << 10
	chunkOverhead    = 128
)

// ErrClosedWrite is returned by Write after CloseWrite or Close.
var ErrClosedWrite = errors.New("dilation: write on a subchannel closed for writing")

// Subchannel is one stream within the dilated connection, opened by either
// side for a named subprotocol. It survives reconnections: what is written
// is delivered once, in order. Close sends CLOSE (as CloseWrite does) and
// discards what the peer sends until its own CLOSE arrives.
type Subchannel struct {
	m           *manager
	scid        uint32
	subprotocol string

	writeClosed bool // guarded by the manager's mu
	// peerOpened: the peer opened it, so it counts against
	// maxPeerSubchannels. unclaimed: nobody listens for its subprotocol
	// yet; claimTimer refuses it after unclaimedOpenTimeout. Guarded by
	// the manager's mu.
	peerOpened bool
	unclaimed  bool
	claimTimer *time.Timer
	// openPending: we opened the subchannel and its OPEN waits in the
	// outbox for the first Write to take it along.
	openPending atomic.Bool
	// out is its queue in the send scheduler and its sending credit;
	// parked counts its writes waiting for room. Guarded by the
	// manager's mu.
	out    stream
	parked int

	// flow: gander-flow-v1 governs it (fixed at creation): win is its
	// receive window, and the per-subchannel pause of the connection's
	// reader does not apply. announce is a new limit to send the peer,
	// or 0. Guarded by mu.
	flow     bool
	win      recvWindow
	announce int64

	mu     sync.Mutex
	chunks []chunk
	// buffered is the payload bytes not read yet; held the memory they
	// hold (see chunk.held), which the limits count.
	buffered  int
	held      int
	readable  chan struct{} // token while chunks or EOF is pending
	remoteEOF bool
	closed    bool
	err       error // the connection stopped
}

// chunk is received data and the buffer it lives in, which goes back to
// the pool once the data has been read; held is the memory it was counted
// at (its buffer's capacity and chunkOverhead).
type chunk struct {
	data []byte
	buf  *[]byte
	held int
}

// newSubchannel is called with the manager's mu held.
func newSubchannel(m *manager, scid uint32, subprotocol string) *Subchannel {
	s := &Subchannel{m: m, scid: scid, subprotocol: subprotocol, readable: make(chan struct{}, 1)}
	s.out.scid = scid
	if m.flow {
		s.flow = true
		s.win = newRecvWindow(time.Now())
		s.out.limited, s.out.credit = true, initialFlowWindow
		if size := m.pathWindow.Load(); size > initialFlowWindow && m.growWindows(size-initialFlowWindow) {
			s.win.startAt(size)
		}
	}
	return s
}

// Subprotocol is the name the subchannel was opened for.
func (s *Subchannel) Subprotocol() string { return s.subprotocol }

func (s *Subchannel) String() string {
	return fmt.Sprintf("subchannel %d (%s)", s.scid, s.subprotocol)
}

// Read reads what the peer wrote. It returns io.EOF after the peer's CLOSE.
func (s *Subchannel) Read(p []byte) (int, error) {
	for {
		s.mu.Lock()
		if len(s.chunks) > 0 {
			n := copy(p, s.chunks[0].data)
			released := 0
			if n == len(s.chunks[0].data) {
				putBuffer(s.chunks[0].buf)
				released = s.chunks[0].held
				s.chunks[0] = chunk{}
				s.chunks = s.chunks[1:]
			} else {
				s.chunks[0].data = s.chunks[0].data[n:]
			}
			s.consumedLocked(n, released)
			s.signalLocked()
			limit := s.takeAnnounceLocked()
			s.mu.Unlock()
			s.m.announceWindow(s, limit)
			return n, nil
		}
		switch {
		case s.closed:
			s.mu.Unlock()
			return 0, net.ErrClosed
		case s.remoteEOF:
			s.mu.Unlock()
			return 0, io.EOF
		case s.err != nil:
			err := s.err
			s.mu.Unlock()
			return 0, err
		}
		s.mu.Unlock()
		s.m.sendOpen(s)
		<-s.readable
	}
}

// WriteTo writes what the peer sends to w until the peer closes, handing
// over received chunks without the copy Read needs; io.Copy uses it.
func (s *Subchannel) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		s.mu.Lock()
		if len(s.chunks) > 0 {
			c := s.chunks[0]
			s.chunks[0] = chunk{}
			s.chunks = s.chunks[1:]
			s.consumedLocked(len(c.data), c.held)
			s.signalLocked()
			limit := s.takeAnnounceLocked()
			s.mu.Unlock()
			s.m.announceWindow(s, limit)
			n, err := w.Write(c.data)
			putBuffer(c.buf)
			total += int64(n)
			if err != nil {
				return total, err
			}
			continue
		}
		switch {
		case s.closed:
			s.mu.Unlock()
			return total, net.ErrClosed
		case s.remoteEOF:
			s.mu.Unlock()
			return total, nil
		case s.err != nil:
			err := s.err
			s.mu.Unlock()
			return total, err
		}
		s.mu.Unlock()
		s.m.sendOpen(s)
		<-s.readable
	}
}

// consumedLocked accounts for n bytes read (or dropped) and for the
// release of chunks that held released bytes of memory.
func (s *Subchannel) consumedLocked(n, released int) {
	s.buffered -= n
	s.chargeLocked(-released)
	s.creditLocked(n)
}

// creditLocked gives the peer credit for n more bytes consumed (read or
// discarded), to be announced by whoever takes it (takeAnnounceLocked).
func (s *Subchannel) creditLocked(n int) {
	if !s.flow || n == 0 {
		return
	}
	size, rtt, samples := s.win.size, s.m.smoothedRTT(), s.win.samples
	if limit, ok := s.win.consume(n, time.Now(), rtt, s.m.growWindows); ok {
		s.announce = limit
		if s.win.pathSized {
			s.m.pathWindow.Store(s.win.size)
		}
	}
	if s.win.size != size {
		s.m.log.Debug("receive window tuned", "scid", s.scid, "from", size, "to", s.win.size,
			"credit round trips", samples, "rtt", rtt, "by path", s.win.pathSized)
	}
}

// takeAnnounceLocked returns the limit to announce, if any, and forgets it.
func (s *Subchannel) takeAnnounceLocked() int64 {
	limit := s.announce
	s.announce = 0
	return limit
}

// chargeLocked accounts for n more (or, negative, fewer) bytes of memory
// held, and pauses or resumes the connection's reader accordingly.
func (s *Subchannel) chargeLocked(n int) {
	if n == 0 {
		return
	}
	wasOver := s.held >= subchannelBufferLimit
	s.held += n
	s.m.gate.add(n)
	if s.flow {
		// Its window bounds it instead: one stopped reader holds back
		// its own subchannel only.
		return
	}
	if over := s.held >= subchannelBufferLimit; over != wasOver {
		s.m.gate.set(s, over)
	}
}

// discardLocked drops everything received and not read yet.
func (s *Subchannel) discardLocked() {
	for _, c := range s.chunks {
		putBuffer(c.buf)
	}
	s.chunks = nil
	s.consumedLocked(s.buffered, s.held)
}

// senderBlocked is the peer's BLOCKED: it ran out of credit.
func (s *Subchannel) senderBlocked(limit uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flow {
		s.win.blocked(limit)
	}
}

// receiveLimit is the credit granted to the peer so far (gander-flow-v1).
func (s *Subchannel) receiveLimit() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.win.limit
}

// bufferedBytes is how much received data waits to be read.
func (s *Subchannel) bufferedBytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buffered
}

// heldBytes is how much memory received data not read yet holds.
func (s *Subchannel) heldBytes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

func (s *Subchannel) signalLocked() {
	if len(s.chunks) > 0 || s.remoteEOF || s.err != nil || s.closed {
		select {
		case s.readable <- struct{}{}:
		default:
		}
	}
}

// Write sends p as DATA records. It blocks while the connection's window
// of unacknowledged data is full, including while reconnecting, and while
// this subchannel's own queue is full (between gander peers, because the
// peer's reader has not made room in its window).
func (s *Subchannel) Write(p []byte) (int, error) {
	inline := len(p) < inlineWrite
	written := 0
	for len(p) > 0 {
		n := min(len(p), maxDataPayload)
		q, err := s.m.write(s, prepareData(s.scid, p[:n]))
		if err != nil {
			return written, err
		}
		q.send(inline)
		written += n
		p = p[n:]
	}
	return written, nil
}

// ReadFrom sends what r yields until EOF, reading it straight into the
// records' buffers (which saves Write's copy); io.Copy uses it.
func (s *Subchannel) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		d := newData(s.scid, maxDataPayload)
		n, err := r.Read(d.payload)
		if n > 0 {
			q, werr := s.m.write(s, d.truncate(n))
			q.send(n < inlineWrite)
			if werr != nil {
				return total, werr
			}
			total += int64(n)
		} else {
			putBuffer(d.buf)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// CloseWrite tells the peer we will write no more (a half-close); reading
// goes on until the peer closes too.
func (s *Subchannel) CloseWrite() error { return s.m.closeWrite(s) }

// Close ends the subchannel: it half-closes if not done yet and stops
// reading. Pending Reads return net.ErrClosed.
func (s *Subchannel) Close() error {
	err := s.m.closeWrite(s)
	s.mu.Lock()
	s.closed = true
	s.discardLocked()
	s.signalLocked()
	limit := s.takeAnnounceLocked()
	s.mu.Unlock()
	s.m.announceWindow(s, limit)
	if errors.Is(err, ErrClosedWrite) {
		return nil
	}
	return err
}

// deliver hands over a DATA payload and the buffer it lives in (nil if
// not pooled), and reports whether it kept buf (else the caller recycles
// it). See compactBelow for how payloads are kept.
//
// Under gander-flow-v1 it first counts the payload against the window
// and returns errOverWindow, keeping nothing, if the peer exceeded its
// credit; data it discards (after Close) is credited back at once, in
// announce, for the caller (which holds the manager's mu) to send.
func (s *Subchannel) deliver(data []byte, buf *[]byte) (kept bool, announce int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flow && !s.win.receive(len(data), time.Now()) {
		return false, 0, errOverWindow
	}
	if s.win.fresh > 0 {
		// The caller holds the manager's mu.
		s.m.rtt.sample(s.win.fresh, time.Now())
		s.m.rttNanos.Store(int64(s.m.rtt.min))
		s.win.fresh = 0
	}
	if s.closed || s.remoteEOF || len(data) == 0 {
		// After the peer's CLOSE nothing more is delivered.
		s.creditLocked(len(data))
		return false, s.takeAnnounceLocked(), nil
	}
	defer s.signalLocked()
	s.buffered += len(data)
	if n := len(s.chunks); n > 0 && cap(s.chunks[n-1].data)-len(s.chunks[n-1].data) >= len(data) {
		// The memory is held already.
		s.chunks[n-1].data = append(s.chunks[n-1].data, data...)
		return false, 0, nil
	}
	c := chunk{data: data, buf: buf}
	compact := compactBelow
	if s.flow {
		// The window counts payload, not the buffers it arrives in:
		// copy mid-sized records so that a stopped reader's full window
		// holds at most a few times its size.
		compact = flowCompactBelow
	}
	switch {
	case len(data) <= compact:
		c.data = append(make([]byte, 0, compactChunkSize), data...)
		c.buf = nil
	case buf != nil:
		kept = true
	}
	c.held = cap(c.data) + chunkOverhead
	if c.buf != nil {
		c.held = cap(*c.buf) + chunkOverhead
	}
	s.chunks = append(s.chunks, c)
	s.chargeLocked(c.held)
	return kept, 0, nil
}

// remoteClose is the peer's CLOSE; it reports false for a second one.
func (s *Subchannel) remoteClose() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.remoteEOF {
		return false
	}
	s.remoteEOF = true
	s.signalLocked()
	return true
}

func (s *Subchannel) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
	// What was received can still be read; only the gate forgets it.
	if s.held >= subchannelBufferLimit {
		s.m.gate.set(s, false)
	}
	s.signalLocked()
}

// Listener accepts the subchannels the peer opens for one subprotocol.
type Listener struct {
	m           *manager
	subprotocol string

	mu        sync.Mutex
	queue     []*Subchannel
	signal    chan struct{} // token while queue is non-empty
	closed    chan struct{}
	closeOnce sync.Once
}

// Subprotocol is the name this listener accepts.
func (l *Listener) Subprotocol() string { return l.subprotocol }

func (l *Listener) enqueue(sc *Subchannel) {
	l.mu.Lock()
	l.queue = append(l.queue, sc)
	l.mu.Unlock()
	select {
	case l.signal <- struct{}{}:
	default:
	}
}

// Accept waits for the peer to open a subchannel for this subprotocol.
func (l *Listener) Accept(ctx context.Context) (*Subchannel, error) {
	for {
		l.mu.Lock()
		if len(l.queue) > 0 {
			sc := l.queue[0]
			l.queue = l.queue[1:]
			if len(l.queue) > 0 {
				select {
				case l.signal <- struct{}{}:
				default:
				}
			}
			l.mu.Unlock()
			return sc, nil
		}
		l.mu.Unlock()
		select {
		case <-l.signal:
		case <-l.closed:
			return nil, net.ErrClosed
		case <-l.m.done:
			return nil, l.m.stoppedErr()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close stops accepting; subchannels already accepted are unaffected.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() {
		close(l.closed)
		l.m.unlisten(l)
	})
	return nil
}

// flowGate stops the connection reader while any subchannel holds more
// unread data than subchannelBufferLimit, or all of them together more
// than maxBufferedTotal.
type flowGate struct {
	mu       sync.Mutex
	over     map[*Subchannel]bool
	total    int
	open     chan struct{} // closed while no limit is exceeded
	openedAt time.Time     // when it last opened
}

func newFlowGate() *flowGate {
	open := make(chan struct{})
	close(open)
	return &flowGate{over: map[*Subchannel]bool{}, open: open, openedAt: time.Now()}
}

func (g *flowGate) set(s *Subchannel, over bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	wasBlocked := g.blockedLocked()
	if over {
		g.over[s] = true
	} else {
		delete(g.over, s)
	}
	g.updateLocked(wasBlocked)
}

// add accounts for n more (or, negative, fewer) bytes buffered.
func (g *flowGate) add(n int) {
	if n == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	wasBlocked := g.blockedLocked()
	g.total += n
	g.updateLocked(wasBlocked)
}

func (g *flowGate) blockedLocked() bool { return len(g.over) > 0 || g.total >= maxBufferedTotal }

func (g *flowGate) updateLocked(wasBlocked bool) {
	switch blocked := g.blockedLocked(); {
	case blocked && !wasBlocked:
		g.open = make(chan struct{})
	case !blocked && wasBlocked:
		close(g.open)
		g.openedAt = time.Now()
	}
}

// shut reports whether the reader is paused, and otherwise since when it
// has been reading.
func (g *flowGate) shut() (bool, time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.blockedLocked(), g.openedAt
}

// wait blocks while the gate is shut. It gives up when stop is closed: a
// paused reader must still notice that its connection was dropped.
func (g *flowGate) wait(stop <-chan struct{}) bool {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
		return true
	case <-stop:
		return false
	}
}
