package transfer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"time"
)

// closeGrace bounds how long a side waits for the peer to read its last
// frames and close, and for a blocked write to finish after a cancel.
const closeGrace = 5 * time.Second

// conn is one end of a transfer. A goroutine reads and decodes frames
// into two alternating buffers (so reading the next chunk overlaps with
// writing the last to disk); the caller's goroutine consumes them and
// writes. The first reason to end the transfer wins, and the peer hears
// about it once.
type conn struct {
	ch Channel
	// idle bounds a wait for the peer's next frame mid-transfer, and a
	// write the peer does not read.
	idle     time.Duration
	frames   chan frame    // from readLoop
	free     chan []byte   // read buffers given back after use
	quit     chan struct{} // closed by close: readLoop discards the rest
	readDone chan struct{}

	wmu     sync.Mutex
	wbuf    []byte // whole frames not written yet
	wclosed bool

	mu      sync.Mutex
	ended   bool
	result  error
	stopped chan struct{} // closed when the transfer ends in error
	force   *time.Timer   // closes ch if the peer or a write hangs
}

type frame struct {
	msg message
	buf []byte // what a DATA message aliases; give it back with release
	err error
}

func newConn(ch Channel) *conn {
	c := &conn{
		ch:       ch,
		idle:     idleTimeout,
		frames:   make(chan frame),
		free:     make(chan []byte, 2),
		quit:     make(chan struct{}),
		readDone: make(chan struct{}),
		wbuf:     make([]byte, 0, frameHeaderLen+maxData),
		stopped:  make(chan struct{}),
	}
	c.free <- make([]byte, maxData)
	c.free <- make([]byte, maxData)
	go c.readLoop()
	return c
}

func (c *conn) readLoop() {
	defer close(c.readDone)
	r := bufio.NewReaderSize(c.ch, 64<<10)
	for {
		var buf []byte
		select {
		case buf = <-c.free:
		case <-c.quit:
			io.Copy(io.Discard, r)
			return
		}
		m, err := readMessage(r, buf)
		f := frame{msg: m, err: err}
		if _, ok := m.(dataMsg); ok {
			f.buf = buf
		} else {
			c.free <- buf
		}
		select {
		case c.frames <- f:
		case <-c.quit:
			io.Copy(io.Discard, r)
			return
		}
		if err != nil {
			return
		}
	}
}

// next returns the peer's next message, or why the transfer ended. With
// wait unset it returns a nil message if none is ready. A CANCEL or the
// peer closing ends the transfer; a DATA message's buffer must be given
// back with release.
func (c *conn) next(wait bool) (message, []byte, error) {
	if wait {
		select {
		case f := <-c.frames:
			return c.interpret(f)
		case <-c.stopped:
			return nil, nil, c.err()
		}
	}
	select {
	case f := <-c.frames:
		return c.interpret(f)
	case <-c.stopped:
		return nil, nil, c.err()
	default:
		return nil, nil, nil
	}
}

// await waits at most timeout for the peer's next message, as next(true)
// does. If none comes the transfer ends with a *TimeoutError whose reason,
// made from format and timeout, the peer is told.
func (c *conn) await(timeout time.Duration, format string) (message, []byte, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case f := <-c.frames:
		return c.interpret(f)
	case <-c.stopped:
		return nil, nil, c.err()
	case <-t.C:
		c.abort(timeoutErrorf(timeout, format))
		return nil, nil, c.err()
	}
}

// interpret turns the end of the peer's stream into errors.
func (c *conn) interpret(f frame) (message, []byte, error) {
	var err error
	switch m := f.msg.(type) {
	case cancelMsg:
		err = &CanceledError{Reason: m.Reason, ByPeer: true}
	case nil:
		var perr *ProtocolError
		switch {
		case errors.Is(f.err, io.EOF):
			err = &CanceledError{Reason: "closed the channel", ByPeer: true, cause: io.ErrUnexpectedEOF}
		case errors.As(f.err, &perr):
			return nil, nil, perr // ours to report: the caller aborts
		default:
			err = fmt.Errorf("transfer: reading: %w", f.err)
		}
	default:
		return f.msg, f.buf, nil
	}
	c.end(err)
	return nil, nil, c.err()
}

func (c *conn) release(buf []byte) {
	if buf != nil {
		c.free <- buf
	}
}

// send queues m, writing the queue out when it is full.
func (c *conn) send(m message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return c.closedErr()
	}
	if len(c.wbuf)+frameHeaderLen+maxControl > cap(c.wbuf) {
		if err := c.flushLocked(); err != nil {
			return err
		}
	}
	c.wbuf = appendFrame(c.wbuf, m)
	return nil
}

// sendData sends the next n bytes of r as DATA frames, read straight into
// the write queue. Each chunk is hashed into h and reported to chunk, which
// may stop the transfer by returning an error.
func (c *conn) sendData(r io.Reader, n int64, h io.Writer, chunk func(int) error) error {
	for n > 0 {
		k, err := c.sendChunk(r, n, h)
		if err != nil {
			return err
		}
		n -= int64(k)
		if err := chunk(k); err != nil {
			return err
		}
	}
	return nil
}

func (c *conn) sendChunk(r io.Reader, n int64, h io.Writer) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return 0, c.closedErr()
	}
	if cap(c.wbuf)-len(c.wbuf) < frameHeaderLen+4096 {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	start := len(c.wbuf)
	room := int(min(n, int64(cap(c.wbuf)-start-frameHeaderLen)))
	payload := c.wbuf[start+frameHeaderLen : start+frameHeaderLen+room]
	k, err := io.ReadFull(r, payload)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return 0, ErrFileChanged // shorter than when it was offered
	} else if err != nil {
		return 0, err
	}
	h.Write(payload[:k])
	c.wbuf = appendHeader(c.wbuf, typeData, k)[:start+frameHeaderLen+k]
	if len(c.wbuf) == cap(c.wbuf) {
		return k, c.flushLocked()
	}
	return k, nil
}

// write queues an encoded frame.
func (c *conn) write(frame []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return c.closedErr()
	}
	if len(c.wbuf)+len(frame) > cap(c.wbuf) {
		if err := c.flushLocked(); err != nil {
			return err
		}
	}
	c.wbuf = append(c.wbuf, frame...)
	return nil
}

// flush writes out what is queued: the peer must see it now.
func (c *conn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return c.closedErr()
	}
	return c.flushLocked()
}

func (c *conn) flushLocked() error {
	// A peer that stops reading blocks the write for good: after idle,
	// end the transfer and close the channel under the write.
	stalled := time.AfterFunc(c.idle, func() {
		if c.end(timeoutErrorf(c.idle, "the peer read nothing for %v")) {
			c.ch.Close()
		}
	})
	_, err := c.ch.Write(c.wbuf)
	stalled.Stop()
	c.wbuf = c.wbuf[:0]
	if err != nil {
		return c.writeErr(err)
	}
	return nil
}

// closeWrite flushes and half-closes: we have nothing more to say.
func (c *conn) closeWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return c.closedErr()
	}
	err := c.flushLocked()
	c.wclosed = true
	if cerr := c.ch.CloseWrite(); err == nil && cerr != nil {
		err = c.writeErr(cerr)
	}
	return err
}

// closedErr is what writing after the end returns: why it ended.
func (c *conn) closedErr() error {
	if err := c.err(); err != nil {
		return err
	}
	return errors.New("transfer: write after close")
}

func (c *conn) writeErr(err error) error {
	if cause := c.err(); cause != nil {
		return cause // a cancel closed the channel under the write
	}
	return fmt.Errorf("transfer: writing: %w", err)
}

// end records how the transfer ends (nil: it succeeded) and reports
// whether this call decided it.
func (c *conn) end(err error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return false
	}
	c.ended, c.result = true, err
	if err != nil {
		close(c.stopped)
	}
	return true
}

func (c *conn) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.result
}

// abort ends the transfer with a local error and tells the peer why.
func (c *conn) abort(err error) {
	if c.end(err) {
		c.tellPeer(reasonFor(err))
	}
}

// tellPeer sends CANCEL and half-closes. A peer that stops reading could
// block the write forever, so the force timer closes the channel.
func (c *conn) tellPeer(reason string) {
	c.armForce()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return
	}
	c.wclosed = true
	c.wbuf = appendFrame(c.wbuf, cancelMsg{Reason: truncateReason(reason)})
	if _, err := c.ch.Write(c.wbuf); err == nil {
		c.ch.CloseWrite()
	}
	c.wbuf = c.wbuf[:0]
}

func (c *conn) armForce() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.force == nil {
		c.force = time.AfterFunc(closeGrace, func() { c.ch.Close() })
	}
}

// watch aborts the transfer when ctx is done, until unwatch is called.
func (c *conn) watch(ctx context.Context) (unwatch func()) {
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		c.abort(&CanceledError{Reason: "canceled", cause: context.Cause(ctx)})
	})
	return func() {
		if !stop() {
			<-done
		}
	}
}

// finish ends the transfer with err (nil: success unless something else
// ended it first), closes the channel once the peer has read what we sent,
// and returns how the transfer ended.
func (c *conn) finish(err error) error {
	if err != nil {
		c.abort(err)
	} else {
		c.end(nil)
	}
	c.close()
	if result := c.err(); result != nil {
		return result
	}
	return err
}

// close half-closes, reads and discards until the peer closes too (so
// that what we sent last is not lost to a reset), then closes ch.
func (c *conn) close() {
	c.armForce()
	c.wmu.Lock()
	if !c.wclosed {
		c.wclosed = true
		c.ch.CloseWrite()
	}
	c.wmu.Unlock()
	close(c.quit)
	<-c.readDone
	c.mu.Lock()
	c.force.Stop()
	c.mu.Unlock()
	c.ch.Close()
}

// How a CANCEL's reason starts when a file system error stopped the
// transfer: the sender could not read its file, or the receiver could not
// write.
const (
	CouldNotRead = "could not read the file: "
	CouldNotSave = "could not save: "
)

// reasonFor is the text the peer gets for a local error: no local paths.
func reasonFor(err error) string {
	var (
		canceled *CanceledError
		pathErr  *fs.PathError
		limit    *LimitError
		timeout  *TimeoutError
	)
	switch {
	case errors.As(err, &canceled):
		return canceled.Reason
	case errors.As(err, &limit):
		return limit.Reason
	case errors.As(err, &timeout):
		return timeout.Reason
	case errors.As(err, &pathErr) && pathErr.Op == "read":
		return CouldNotRead + pathErr.Err.Error()
	case errors.As(err, &pathErr):
		// The receiver's writes: the sender must not read this as
		// its own file missing ("open: no such file or directory").
		return CouldNotSave + pathErr.Err.Error()
	}
	return err.Error()
}
