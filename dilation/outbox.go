package dilation

import (
	"fmt"
	"sync"
	"time"
)

// maxBatch bounds how much one flush encrypts before one syscall. The
// scheduler chooses between batches, so a keystroke waits behind at most
// one batch (and TCP_NOTSENT_LOWAT's worth in the kernel): 256 KiB keeps
// that wait short and costs bulk nothing measurable (the encryption, not
// the syscall, is the cost).
const maxBatch = 256 << 10

// Acknowledgements wait a little for a record to ride with: one goes out
// with the next batch of records, or once ackEvery records await one, or
// flushDelay after the first of them arrived. The reference's ACK retires
// every record up to its number, so one ACK does the work of many, and a
// request answered at once carries its ACK in the answer's syscall.
// An OPEN waits the same way for the subchannel's first Write, unless its
// first Read comes first (see Subchannel.openPending).
const (
	ackEvery   = 16
	flushDelay = 2 * time.Millisecond
)

// A write smaller than inlineWrite is encrypted and sent on the writer's
// own goroutine, which spares a small request or reply the wake-up of the
// link's writer goroutine; a larger one is left to the writer goroutine,
// so that encrypting it overlaps with the caller producing the next.
const inlineWrite = 16 << 10

// sendQueue is one link's outbox. Records are pushed under the manager's
// lock and never block it, and are sent by a flush: on the goroutine of a
// subchannel's small Write, or on the link's writer goroutine when kick
// wakes it (large writes, CLOSE, pongs, resends) or soon's timer fires
// (ACKs and OPENs, which wait for a ride). One goroutine flushes at a
// time.
type sendQueue struct {
	link      *link
	onDrained func() // runs after a flush took the backlog under maxBacklog
	// refill, called without q.mu before each batch, has the scheduler
	// number and push up to budget more bytes of records (sched.go) and
	// reports whether more wait.
	refill func(q *sendQueue, budget int) (more bool)
	signal chan struct{}
	timer  *time.Timer // the writer goroutine flushes when it fires

	mu     sync.Mutex
	idle   sync.Cond // broadcast when a flush ends
	items  []record
	batch  []record // the last batch's, cleared, for the next one
	bytes  int
	ackSeq uint32
	acks   int   // records awaiting the ACK for ackSeq
	sealed int64 // highest sequence number encrypted for this link, or -1
	armed  bool  // the timer is running
	// The latest PING and PONG to send, ahead of everything queued: only
	// the latest of each needs to go (a peer flooding PINGs gets one
	// PONG per flush, not one per PING), and keepalive traffic must not
	// wait behind bulk data.
	ping, pong *[4]byte
	// windows are the WINDOW limits to announce, by subchannel; like
	// PONGs they go ahead of data, and only the latest of each counts.
	windows  map[uint32]uint64
	blocked  map[uint32]uint64 // BLOCKEDs to send, the same way
	flushing bool
	again    bool // kicked during a flush: look for records once more
	closed   bool
}

func newSendQueue(l *link, onDrained func()) *sendQueue {
	q := &sendQueue{link: l, onDrained: onDrained, signal: make(chan struct{}, 1), sealed: -1}
	q.idle.L = &q.mu
	q.timer = time.NewTimer(time.Hour)
	q.timer.Stop()
	return q
}

// push appends records; nothing is sent until a flush. A nil queue (no
// connection) drops them: they wait in the manager's unacked list.
func (q *sendQueue) push(rs ...record) {

	if q == nil || len(rs) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.items = append(q.items, rs...)
	for _, r := range rs {
		q.bytes += recordSize(r)
	}
}

// pushControl sets the PING or PONG to send next, replacing one not sent
// yet, and wakes the writer. A nil queue drops it, as the reference drops
// keepalives while disconnected.
func (q *sendQueue) pushControl(r record) {
	if q == nil {
		return
	}
	q.mu.Lock()
	switch r := r.(type) {
	case pingRecord:
		q.ping = &r.id
	case pongRecord:
		q.pong = &r.id
	default:
		panic(fmt.Sprintf("dilation: pushControl(%T)", r))
	}
	q.mu.Unlock()
	q.kick()
}

// pushWindow queues a WINDOW for scid and wakes the writer.
func (q *sendQueue) pushWindow(scid uint32, limit int64) {
	if q.addWindow(scid, limit) {
		q.kick()
	}
}

// pushWindowSoon queues a WINDOW for scid to ride with the next records
// (within flushDelay): one the peer does not wait for, whose write of its
// own could be held back by a relay's Nagle behind the next small write.
func (q *sendQueue) pushWindowSoon(scid uint32, limit int64) {
	if q.addWindow(scid, limit) {
		q.soon()
	}
}

func (q *sendQueue) addWindow(scid uint32, limit int64) bool {
	if q == nil {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.windows == nil {
		q.windows = map[uint32]uint64{}
	}
	q.windows[scid] = max(q.windows[scid], uint64(limit))
	return true
}

// pushBlocked queues a BLOCKED for scid; the flush under way sends it.
func (q *sendQueue) pushBlocked(scid uint32, limit int64) {
	q.mu.Lock()
	if q.blocked == nil {
		q.blocked = map[uint32]uint64{}
	}
	q.blocked[scid] = uint64(limit)
	q.mu.Unlock()
}

// ack queues an acknowledgement of seq, which stands in for every earlier
// one, and sees that it goes out soon.
func (q *sendQueue) ack(seq uint32) {
	if q == nil {
		return
	}
	q.mu.Lock()
	if q.acks == 0 || seq > q.ackSeq {
		q.ackSeq = seq
	}
	q.acks++
	n := q.acks
	q.mu.Unlock()
	if n >= ackEvery {
		q.kick()
	} else {
		q.soon()
	}
}

// soon has the writer goroutine flush within flushDelay, unless somebody
// flushes first.
func (q *sendQueue) soon() {
	if q == nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.armed {
		q.armed = true
		q.timer.Reset(flushDelay)
	}
}

// timerFired is the writer goroutine's, when the timer fires.
func (q *sendQueue) timerFired() {
	q.mu.Lock()
	q.armed = false
	q.mu.Unlock()
}

// send has a subchannel's records sent: flushed on its own goroutine if
// inline, else by the writer goroutine.
func (q *sendQueue) send(inline bool) {
	if inline {
		q.flush(true)
	} else {
		q.kick()
	}
}

// kick wakes the link's writer goroutine unless a flush is under way
// (which will take whatever was pushed before it ends).
func (q *sendQueue) kick() {
	if q == nil {
		return
	}
	q.mu.Lock()
	busy := q.flushing
	if busy {
		q.again = true
	}
	q.mu.Unlock()
	if busy {
		return
	}
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *sendQueue) size() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// sealedUpTo is the highest sequence number encrypted for this link: the
// records up to it are no longer read by a flush.
func (q *sendQueue) sealedUpTo() (uint32, bool) {
	if q == nil {
		return 0, false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return uint32(q.sealed), q.sealed >= 0
}

// flush writes the queue out, a batch per syscall, unless another
// goroutine is flushing already. A subchannel's writer (own) writes one
// batch and leaves the rest, if others keep pushing, to the writer
// goroutine. A failed write closes the link; its reader reports that.
func (q *sendQueue) flush(own bool) {
	if q == nil {
		return
	}
	q.mu.Lock()
	if q.flushing {
		q.again = true
		q.mu.Unlock()
		return
	}
	q.flushLocked(own)
	q.mu.Unlock()
}

// flushLocked is flush with q.mu held and no flush under way; it unlocks
// q.mu while writing.
func (q *sendQueue) flushLocked(own bool) {
	q.flushing = true
	for !q.closed {
		q.again = false
		more := false
		if q.refill != nil && q.bytes < maxBatch {
			budget := maxBatch - q.bytes
			if own {
				// A small write's own goroutine takes little besides
				// its record: bulk is the writer goroutine's to encrypt.
				budget = min(budget, inlineWrite)
			}
			q.mu.Unlock()
			more = q.refill(q, budget)
			q.mu.Lock()
			if q.closed {
				break
			}
		}
		if !q.pendingLocked() {
			if more || q.again {
				continue
			}
			break
		}
		batch, last, drained := q.takeLocked()
		q.mu.Unlock()
		err := q.link.writeBatch(batch, func() {
			if last >= 0 {
				q.mu.Lock()
				q.sealed = max(q.sealed, last)
				q.mu.Unlock()
			}
		})
		clear(batch)
		if err != nil {
			q.link.close()
		}
		if drained && q.onDrained != nil {
			q.onDrained()
		}
		q.mu.Lock()
		q.batch = batch[:0]
		if err != nil {
			q.closed = true
		}
		if own && (len(q.items) > 0 || more || q.again) {
			// Others keep pushing: their records are the writer
			// goroutine's to send, not this subchannel's.
			select {
			case q.signal <- struct{}{}:
			default:
			}
			break
		}
	}
	if q.armed && !q.pendingLocked() {
		// What the timer was for has gone: no need to wake the writer.
		q.timer.Stop()
		q.armed = false
	}
	q.flushing = false
	q.idle.Broadcast()
}

// pendingLocked says whether anything waits to be sent.
func (q *sendQueue) pendingLocked() bool {
	return len(q.items) > 0 || q.acks > 0 || q.ping != nil || q.pong != nil || len(q.windows) > 0 || len(q.blocked) > 0
}

// takeLocked removes up to about maxBatch bytes of records, with the
// pending ACK at the end, and returns them, the highest sequence number
// among them (or -1), and whether that took the backlog under maxBacklog.
func (q *sendQueue) takeLocked() (batch []record, last int64, drained bool) {
	n, size := 0, 0
	for n < len(q.items) && (n == 0 || size < maxBatch) {
		size += recordSize(q.items[n])
		n++
	}
	control := q.ping != nil || q.pong != nil || len(q.windows) > 0 || len(q.blocked) > 0
	switch {
	case n == len(q.items) && !control:
		// Everything: the two slices swap, so neither grows again.
		batch, q.items = q.items, q.batch[:0]
	default:
		batch = q.batch[:0]
		if q.ping != nil {
			batch = append(batch, pingRecord{*q.ping})
			q.ping = nil
		}
		if q.pong != nil {
			batch = append(batch, pongRecord{*q.pong})
			q.pong = nil
		}
		for scid, limit := range q.windows {
			batch = append(batch, windowRecord{scid, limit})
		}
		clear(q.windows)
		for scid, limit := range q.blocked {
			batch = append(batch, blockedRecord{scid, limit})
		}
		clear(q.blocked)
		batch = append(batch, q.items[:n]...)
		clear(q.items[:n])
		if n == len(q.items) {
			q.items = q.items[:0]
		} else {
			q.items = q.items[n:]
		}
	}
	drained = q.bytes >= maxBacklog && q.bytes-size < maxBacklog
	q.bytes -= size
	if q.acks > 0 {
		batch = append(batch, ackRecord{q.ackSeq})
		q.acks = 0
	}
	last = -1
	for _, r := range batch {
		switch r.(type) {
		case openRecord, dataRecord, closeRecord:
			last = int64(seqOf(r))
		}
	}
	return batch, last, drained
}

// close stops the queue for good and waits for a flush under way, which
// the closed link makes short: after it returns, nothing reads the
// records that were queued.
func (q *sendQueue) close() {
	if q == nil {
		return
	}
	q.timer.Stop()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	for q.flushing {
		q.idle.Wait()
	}
	q.items = nil
}
