package plain

import (
	"io"
	"sync"
	"time"
)

// outputDelay is how long a line of --no-tui output may wait to be
// written together with the next ones.
const outputDelay = 50 * time.Millisecond

// batchedWriter collects what is written and passes it on within a delay:
// a burst of events (a thousand connections a second) then costs one
// write per batch instead of one per line, for gander and for whatever
// reads its output.
type batchedWriter struct {
	w     io.Writer
	delay time.Duration
	// failed is called once, with the first write error: output that
	// cannot be written (a full disk) ends the session rather than
	// vanishing while it goes on.
	failed func(error)

	mu      sync.Mutex
	buf     []byte
	pending *time.Timer // set while buf waits
	err     error       // the first write error; later writes are dropped
}

func newBatchedWriter(w io.Writer, delay time.Duration) *batchedWriter {
	return &batchedWriter{w: w, delay: delay}
}

func (b *batchedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	b.buf = append(b.buf, p...)
	if b.pending == nil {
		b.pending = time.AfterFunc(b.delay, func() { b.Flush() })
	}
	return len(p), nil
}

// Flush writes out what waits now.
func (b *batchedWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending != nil {
		b.pending.Stop()
		b.pending = nil
	}
	if b.err != nil || len(b.buf) == 0 {
		return b.err
	}
	_, err := b.w.Write(b.buf)
	b.buf = b.buf[:0]
	if err != nil {
		b.err = err
		if b.failed != nil {
			go b.failed(err) // not under mu: it may end the session, which writes
		}
	}
	return err
}
