package forwards

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gander-pair/gander/dilation"
)

// dialTimeout bounds connecting to our own daemon for the peer: it is
// local, so a daemon that takes longer is not coming, and the peer (fowl
// or gander) is waiting for the reply.
const dialTimeout = 10 * time.Second

// forwardOut carries one local connection to the peer's daemon. A gander
// peer takes the connection's first bytes right behind the request, which
// saves a round trip on every connection; fowl reads nothing before its
// reply, so for a fowl peer they wait for it.
func (f *Forwarder) forwardOut(tcp *net.TCPConn, service string) {
	id := f.nextID.Add(1)
	c := f.newConnection(tcp, id, service, false)
	if c == nil {
		f.emit(ConnectionOpened{ID: id, Service: service})
		f.emit(ConnectionClosed{ID: id, Service: service, Err: net.ErrClosed})
		return
	}
	err := f.connectOut(c)
	f.emit(c.closed(err))
}

// connectOut asks the peer to connect c to its daemon, then splices them.
func (f *Forwarder) connectOut(c *connection) error {
	defer c.close()
	sc, err := f.conn.Open(f.ctx, forwardSubprotocol)
	if err == nil && c.adopt(sc) {
		err = c.sendRequest(forwardRequest{UniqueName: c.name}, !f.fowlPeer)
	} else if err == nil {
		err = net.ErrClosed
	}
	// Reported while the request travels.
	f.emit(c.opened())
	if err != nil {
		return err
	}
	if !f.fowlPeer {
		c.startToPeer()
	}
	// A peer that never answers would hold the connection, and its
	// socket, for ever: the client's close is not read until it does.
	timeout := f.limits.handshakeTimeout
	timer := time.AfterFunc(timeout, func() { sc.Close() })
	fromPeer := bufio.NewReader(sc)
	body, err := readFrame(fromPeer)
	if !timer.Stop() {
		err = handshakeTimeoutError(timeout)
	}
	var reply forwardReply
	if err == nil {
		err = decodeMessage(body, &reply)
	}
	if err == nil && !reply.Connected {
		err = f.refusedByPeer(c.name, reply.Reason)
	}
	if err != nil {
		return err
	}
	if f.fowlPeer {
		c.startToPeer()
	}
	return c.copyFromPeer(fromPeer)
}

// serveForward handles one forwarding subchannel the peer opened: it
// connects to our daemon for the named service, if the policy allows.
func (f *Forwarder) serveForward(sc *dilation.Subchannel, fromPeer *bufio.Reader, first []byte) {
	defer sc.Close()
	var req forwardRequest
	if err := decodeMessage(first, &req); err != nil {
		f.reportOnce("bad handshake", fmt.Errorf("forwarding handshake: %w", err))
		return
	}
	service := req.UniqueName
	if err := checkPeerName(service); err != nil {
		reason := fmt.Sprintf("Bad service name: %v", err)
		f.reportOnce("bad name", fmt.Errorf("refused a connection for %s: %s", printableName(service), reason))
		writeFrame(sc, forwardReply{Connected: false, Reason: reason})
		return
	}
	id := f.nextID.Add(1)
	remote, err := f.policy.connect(service)
	if err != nil {
		writeFrame(sc, forwardReply{Connected: false, Reason: err.Error()})
		f.refused(Refused{Service: service, Reason: err.Error()}, ConnectionClosed{ID: id, Service: service, Incoming: true, Err: err})
		return
	}
	release, err := take(f.peerConnections, &LimitError{What: "connections from the peer", Limit: f.limits.connections})
	if err != nil {
		f.limitReached(err)
		writeFrame(sc, forwardReply{Connected: false, Reason: err.Error()})
		return
	}
	defer release()
	dialer := net.Dialer{Timeout: dialTimeout, KeepAlive: -1}
	conn, err := dialer.DialContext(f.ctx, "tcp4", net.JoinHostPort(remote.Address, strconv.Itoa(remote.ConnectPort)))
	if err != nil {
		f.emit(ConnectionOpened{ID: id, Service: service, Incoming: true})
		writeFrame(sc, forwardReply{Connected: false, Reason: err.Error()})
		f.emit(ConnectionClosed{ID: id, Service: service, Incoming: true, Err: err})
		return
	}
	c := f.newConnection(conn.(*net.TCPConn), id, service, true)
	if c == nil {
		f.emit(ConnectionOpened{ID: id, Service: service, Incoming: true})
		f.emit(ConnectionClosed{ID: id, Service: service, Incoming: true, Err: net.ErrClosed})
		return
	}
	err = f.connectIn(c, sc, fromPeer)
	f.emit(c.closed(err))
}

// connectIn answers the peer and splices its subchannel to our daemon.
func (f *Forwarder) connectIn(c *connection, sc *dilation.Subchannel, fromPeer *bufio.Reader) error {
	defer c.close()
	if !c.adopt(sc) {
		f.emit(c.opened())
		return net.ErrClosed
	}
	frame, err := encodeFrame(forwardReply{Connected: true})
	if err == nil && !f.fowlPeer {
		frame = c.withFirstAnswer(frame, fromPeer)
	}
	if err == nil {
		_, err = sc.Write(frame)
	}
	if err == nil {
		c.startToPeer()
	}
	f.emit(c.opened())
	if err != nil {
		return err
	}
	return c.copyFromPeer(fromPeer)
}

// connection is one forwarded connection: a local socket spliced to a
// subchannel, each closed by Forwarder.Close while it lasts. What the
// socket sends is copied by a goroutine of its own, what the peer sends by
// the connection's goroutine (one fewer to start and wake); each direction
// ends in a half-close. fowl peers turn a half-close into a full close,
// which ends the other direction too.
type connection struct {
	f        *Forwarder
	id       int64
	name     string // the service's
	incoming bool
	since    time.Time
	tcp      *net.TCPConn
	sc       *dilation.Subchannel
	untrack  []func()
	service  *serviceCounters
	in, out  atomic.Int64 // bytes from and to the peer
	copies   chan error
	running  int
	finished bool
}

// newConnection tracks tcp, or closes it and returns nil if the forwarder
// is closing.
func (f *Forwarder) newConnection(tcp *net.TCPConn, id int64, service string, incoming bool) *connection {
	untrack, ok := f.track(tcp)
	if !ok {
		return nil
	}
	c := &connection{
		f: f, id: id, name: service, incoming: incoming, since: time.Now(),
		tcp: tcp, untrack: []func(){untrack}, service: f.counters(service), copies: make(chan error, 2),
	}
	c.service.open.Add(1)
	c.service.total.Add(1)
	f.mu.Lock()
	f.open[id] = c
	f.mu.Unlock()
	return c
}

// adopt tracks sc as the connection's subchannel, or closes it and
// reports false if the forwarder is closing.
func (c *connection) adopt(sc *dilation.Subchannel) bool {
	untrack, ok := c.f.track(sc)
	if !ok {
		return false
	}
	c.sc = sc
	c.untrack = append(c.untrack, untrack)
	return true
}

// firstBytesMax bounds what rides with a forwarding request.
const firstBytesMax = 16 << 10

// sendRequest writes the forwarding request; with firstBytes, what the
// socket has already received goes in the same write (a gander peer reads
// the request from a buffered stream, unlike fowl), so that a client that
// speaks first costs one record and one system call less.
func (c *connection) sendRequest(req forwardRequest, firstBytes bool) error {
	frame, err := encodeFrame(req)
	if err != nil {
		return err
	}
	if firstBytes {
		frame = slices.Grow(frame, firstBytesMax)
		n := readReady(c.tcp, frame[len(frame):cap(frame)])
		frame = frame[:len(frame)+n]
		c.out.Add(int64(n))
		c.service.bytesOut.Add(int64(n))
	}
	_, err = c.sc.Write(frame)
	return err
}

// firstAnswerWait is how long the reply to a gander peer waits for the
// daemon's answer to the first bytes that came with the request.
const firstAnswerWait = 2 * time.Millisecond

// withFirstAnswer hands the daemon the first bytes a gander peer sent
// behind its request and appends to the reply frame what the daemon
// answers within firstAnswerWait (a request's response, a banner). Reply
// and answer then go in one write: as two small writes in a row, a relay
// without TCP_NODELAY (the stock transit relay) would hold the answer
// back until the reply is acknowledged, up to a delayed ACK (40 ms).
func (c *connection) withFirstAnswer(frame []byte, fromPeer *bufio.Reader) []byte {
	n := fromPeer.Buffered()
	if n == 0 {
		return frame
	}
	first, _ := fromPeer.Peek(n)
	c.tcp.SetWriteDeadline(time.Now().Add(firstAnswerWait))
	wrote, err := c.tcp.Write(first)
	c.tcp.SetWriteDeadline(time.Time{})
	fromPeer.Discard(wrote)
	c.in.Add(int64(wrote))
	c.service.bytesIn.Add(int64(wrote))
	if err != nil {
		return frame
	}
	frame = slices.Grow(frame, firstBytesMax)
	c.tcp.SetReadDeadline(time.Now().Add(firstAnswerWait))
	got, _ := c.tcp.Read(frame[len(frame):cap(frame)])
	c.tcp.SetReadDeadline(time.Time{})
	c.out.Add(int64(got))
	c.service.bytesOut.Add(int64(got))
	return frame[:len(frame)+got]
}

// startToPeer copies the socket to the subchannel (which reads straight
// into its records through ReadFrom).
func (c *connection) startToPeer() {
	c.running++
	go func() {
		_, err := io.Copy(c.sc, countingReader{c.tcp, &c.out, &c.service.bytesOut})
		c.sc.CloseWrite()
		c.copies <- err
	}()
}

// copyFromPeer copies what the peer sends, after the handshake that
// fromPeer has buffered, to the socket, and returns once the other
// direction is done too.
func (c *connection) copyFromPeer(fromPeer *bufio.Reader) error {
	_, err := io.Copy(countingWriter{c.tcp, &c.in, &c.service.bytesIn}, fromPeer)
	c.tcp.CloseWrite()
	return errors.Join(err, c.wait())
}

// wait returns once the copy to the peer, if running, is done.
func (c *connection) wait() error {
	var errs []error
	for ; c.running > 0; c.running-- {
		errs = append(errs, <-c.copies)
	}
	return errors.Join(errs...)
}

// close ends the connection and waits for its copies to stop.
func (c *connection) close() {
	if c.finished {
		return
	}
	c.finished = true
	c.tcp.Close()
	if c.sc != nil {
		c.sc.Close()
	}
	c.wait()
	for _, untrack := range c.untrack {
		untrack()
	}
	c.service.open.Add(-1)
	c.f.mu.Lock()
	delete(c.f.open, c.id)
	c.f.mu.Unlock()
}

// stats are the connection's counters so far.
func (c *connection) stats() ConnectionStats {
	return ConnectionStats{
		ID: c.id, Service: c.name, Incoming: c.incoming, Since: c.since,
		BytesIn: c.in.Load(), BytesOut: c.out.Load(),
	}
}

// opened is the event that reports the connection's start.
func (c *connection) opened() ConnectionOpened {
	return ConnectionOpened{ID: c.id, Service: c.name, Incoming: c.incoming}
}

// closed is the event that reports the connection's end.
func (c *connection) closed(err error) ConnectionClosed {
	return ConnectionClosed{
		ID: c.id, Service: c.name, Incoming: c.incoming, Err: err,
		BytesIn: c.in.Load(), BytesOut: c.out.Load(),
	}
}

// countingReader counts into a connection's and its service's counters.
// It hides the socket's WriteTo, so that io.Copy uses the subchannel's
// ReadFrom.
type countingReader struct {
	r             io.Reader
	conn, service *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.conn.Add(int64(n))
	c.service.Add(int64(n))
	return n, err
}

type countingWriter struct {
	w             io.Writer
	conn, service *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.conn.Add(int64(n))
	c.service.Add(int64(n))
	return n, err
}
