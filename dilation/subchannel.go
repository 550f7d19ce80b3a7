package dilation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// maxDataPayload keeps each DATA record within one Noise message.
const maxDataPayload = noiseMaxPlaintext - 9

// MaxWriteChunk is the largest write that becomes a single DATA record;
// callers copying streams use it as their buffer size.
const MaxWriteChunk = maxDataPayload

// subchannelBufferLimit is how much unread data one subchannel may hold
// before the connection stops reading from the peer, which is how the
// reference pauses its transport when any consumer is slow.
const subchannelBufferLimit = 1 << 20

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

	mu          sync.Mutex
	chunks      [][]byte
	buffered    int
	readable    chan struct{} // token while chunks or EOF is pending
	remoteEOF   bool
	writeClosed bool
	closed      bool
	err         error // the connection stopped
}

func newSubchannel(m *manager, scid uint32, subprotocol string) *Subchannel {
	return &Subchannel{m: m, scid: scid, subprotocol: subprotocol, readable: make(chan struct{}, 1)}
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
			n := copy(p, s.chunks[0])
			if n == len(s.chunks[0]) {
				s.chunks[0] = nil
				s.chunks = s.chunks[1:]
			} else {
				s.chunks[0] = s.chunks[0][n:]
			}
			wasOver := s.buffered >= subchannelBufferLimit
			s.buffered -= n
			if wasOver && s.buffered < subchannelBufferLimit {
				s.m.gate.set(s, false)
			}
			s.signalLocked()
			s.mu.Unlock()
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
			chunk := s.chunks[0]
			s.chunks[0] = nil
			s.chunks = s.chunks[1:]
			wasOver := s.buffered >= subchannelBufferLimit
			s.buffered -= len(chunk)
			if wasOver && s.buffered < subchannelBufferLimit {
				s.m.gate.set(s, false)
			}
			s.signalLocked()
			s.mu.Unlock()
			n, err := w.Write(chunk)
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
		<-s.readable
	}
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
// of unacknowledged data is full, including while reconnecting.
func (s *Subchannel) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), maxDataPayload)
		if err := s.m.write(s, prepareData(s.scid, p[:n])); err != nil {
			return written, err
		}
		written += n
		p = p[n:]
	}
	return written, nil
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
	s.chunks = nil
	if s.buffered >= subchannelBufferLimit {
		s.m.gate.set(s, false)
	}
	s.buffered = 0
	s.signalLocked()
	s.mu.Unlock()
	if errors.Is(err, ErrClosedWrite) {
		return nil
	}
	return err
}

// deliver is called by the manager with a DATA payload it owns.
func (s *Subchannel) deliver(data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(data) == 0 {
		return
	}
	s.chunks = append(s.chunks, data)
	wasUnder := s.buffered < subchannelBufferLimit
	s.buffered += len(data)
	if wasUnder && s.buffered >= subchannelBufferLimit {
		s.m.gate.set(s, true)
	}
	s.signalLocked()
}

func (s *Subchannel) remoteClose() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remoteEOF = true
	s.signalLocked()
}

func (s *Subchannel) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
	if s.buffered >= subchannelBufferLimit {
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
// unread data than subchannelBufferLimit.
type flowGate struct {
	mu   sync.Mutex
	over map[*Subchannel]bool
	open chan struct{} // closed while no subchannel is over its limit
}

func newFlowGate() *flowGate {
	open := make(chan struct{})
	close(open)
	return &flowGate{over: map[*Subchannel]bool{}, open: open}
}

func (g *flowGate) set(s *Subchannel, over bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	wasBlocked := len(g.over) > 0
	if over {
		g.over[s] = true
	} else {
		delete(g.over, s)
	}
	switch blocked := len(g.over) > 0; {
	case blocked && !wasBlocked:
		g.open = make(chan struct{})
	case !blocked && wasBlocked:
		close(g.open)
	}
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
