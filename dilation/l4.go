package dilation

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"
)

// L4 of the manager: every OPEN, DATA and CLOSE gets a sequence number (as
// the scheduler sends it, see sched.go) and is kept until the peer
// acknowledges it, so that it can be sent again on
// the next connection after a loss; records from the peer are acknowledged
// and delivered once each. Writers wait for room (flow control), and
// keepalive drops a connection on which the peer went quiet. All of it is
// guarded by manager.mu (see the lock order in manager.go).

// Writers block, as the reference pauses its producers, while the
// connection's send backlog exceeds maxBacklog, or while disconnected
// once window bytes await acknowledgement. While connected, unacknowledged
// data is limited by maxUnackedBytes, and while our reader is paused only
// by the larger maxUnackedWhilePaused: acks travel behind the peer's own
// data, so waiting for them would tie the two directions together and
// deadlock an echo whose reader is paused.
const (
	maxBacklog = 2 << 20
	window     = 8 << 20
)

type parkedWrite struct {
	sc    *Subchannel
	rec   dataRecord
	reply chan error
}

// errOverWindow is a subchannel's peer sending beyond its credit.
var errOverWindow = errors.New("data beyond the flow-control window")

// gotRecord handles a record read from q's link, unless another link has
// replaced it since, and reports whether it kept buf (a DATA payload
// handed to its subchannel). An error is a ProtocolError that stops the
// connection.
func (m *manager) gotRecord(q *sendQueue, rec record, buf *[]byte) (kept bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.outbox != q {
		return false, nil
	}
	if _, pong := rec.(pongRecord); !pong {
		m.lastHeard = time.Now()
	}
	switch r := rec.(type) {
	case openRecord:
		if m.acceptLocked(r.seq) {
			m.gotOpenLocked(r.scid, r.subprotocol)
		}
	case dataRecord:
		if m.acceptLocked(r.seq) {
			return m.gotDataLocked(r, buf)
		}
	case closeRecord:
		if m.acceptLocked(r.seq) {
			m.gotCloseLocked(r.scid)
		}
	case ackRecord:
		m.retireLocked(r.seq)
	case pingRecord:
		q.pushControl(pongRecord{r.id})
	case pongRecord:
		// Only an answer to one of our PINGs says the peer reads what
		// we send.
		if i := slices.Index(m.pings, r.id); i >= 0 {
			m.lastHeard = time.Now()
			m.rtt.sample(m.lastHeard.Sub(m.pingSent[i]), m.lastHeard)
			m.rttNanos.Store(int64(m.rtt.min))
			m.pings, m.pingSent = m.pings[i+1:], m.pingSent[i+1:]
		}
	case windowRecord:
		if !m.flow {
			return false, &ProtocolError{Layer: "record", Reason: "WINDOW from a peer that did not announce " + flowAbility}
		}
		m.gotWindowLocked(r)
	case blockedRecord:
		if !m.flow {
			return false, &ProtocolError{Layer: "record", Reason: "BLOCKED from a peer that did not announce " + flowAbility}
		}
		if sc := m.subchannels[r.scid]; sc != nil {
			sc.senderBlocked(r.limit)
		}
	case kcmRecord:
		m.log.Debug("unexpected KCM on a selected connection")
	}
	return false, nil
}

// gotWindowLocked raises a subchannel's sending credit. Limits only grow:
// a stale or duplicate WINDOW changes nothing.
func (m *manager) gotWindowLocked(r windowRecord) {
	sc := m.subchannels[r.scid]
	if sc == nil {
		sc = m.draining[r.scid]
	}
	if sc == nil || !sc.out.limited {
		return
	}
	limit := int64(min(r.limit, 1<<62))
	if limit <= sc.out.credit {
		return
	}
	sc.out.credit = limit
	if sc.out.blocked && sc.out.sendable(sc.out.queue[0]) {
		m.sched.unblock(&sc.out)
		m.outbox.kick()
	}
}

// refill is the outbox's: the scheduler numbers up to budget bytes of
// queued records for q's link (if q is still the link in use), and
// writers waiting for room are let in.
func (m *manager) refill(q *sendQueue, budget int) (more bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.outbox != q {
		return false
	}
	// What is numbered is kept until acknowledged: numbering stops at
	// the cap on unacknowledged data (see canWriteLocked), and goes on
	// when acknowledgements retire some.
	budget = min(budget, m.unackedCapLocked()-m.unackedBytes)
	if budget <= 0 {
		return false
	}
	before := m.sched.bytes
	m.sched.take(budget, m.emitLocked, func(st *stream) {
		q.pushBlocked(st.scid, st.credit)
	})
	if m.sched.bytes < before && len(m.parked) > 0 {
		m.admitParkedLocked()
	}
	return len(m.sched.newFlows)+len(m.sched.oldFlows) > 0
}

// emitLocked numbers a record the scheduler chose. A CLOSE is the last
// of its stream: a subchannel forgotten meanwhile is gone for good.
func (m *manager) emitLocked(rec record) {
	if c, ok := rec.(closeRecord); ok {
		delete(m.draining, c.scid)
	}
	m.sendSequencedLocked(rec)
}

// announceWindow sends the peer a subchannel's new receive limit (none if
// limit is 0), and, as the receiver tunes windows by the round trip,
// measures it now and then with a PING.
func (m *manager) announceWindow(sc *Subchannel, limit int64) {
	if limit <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.outbox == nil || m.subchannels[sc.scid] != sc {
		return
	}
	if now := time.Now(); now.Sub(m.lastProbe) >= rttProbeInterval {
		m.lastProbe = now
		m.sendPingLocked()
	}
	m.outbox.pushWindow(sc.scid, limit)
}

// smoothedRTT is the latest round-trip estimate, 0 before the first.
func (m *manager) smoothedRTT() time.Duration { return time.Duration(m.rttNanos.Load()) }

// growWindows accounts for the receive windows growing by delta (or,
// negative, shrinking), and refuses growth beyond maxFlowWindowsTotal.
func (m *manager) growWindows(delta int64) bool {
	if m.windowsTotal.Add(delta) > maxFlowWindowsTotal && delta > 0 {
		m.windowsTotal.Add(-delta)
		return false
	}
	return true
}

// acceptLocked acknowledges a sequenced record (always, duplicates
// included) and reports whether it is new.
func (m *manager) acceptLocked(seq uint32) bool {
	m.outbox.ack(seq)
	if int64(seq) <= m.highestSeen {
		return false
	}
	m.highestSeen = int64(seq)
	return true
}

// sendSequencedLocked numbers a record, keeps it until acknowledged and
// queues it if connected. The caller flushes or kicks the outbox.
func (m *manager) sendSequencedLocked(rec record) {
	seq := m.nextSeq
	m.nextSeq++
	switch r := rec.(type) {
	case openRecord:
		r.seq = seq
		rec = r
	case dataRecord:
		r.seq = seq
		if r.wire != nil {
			r.encode()
		}
		rec = r
	case closeRecord:
		r.seq = seq
		rec = r
	}
	m.unacked = append(m.unacked, rec)
	m.unackedBytes += recordSize(rec)
	m.outbox.push(rec)
}

func seqOf(rec record) uint32 {
	switch r := rec.(type) {
	case openRecord:
		return r.seq
	case dataRecord:
		return r.seq
	case closeRecord:
		return r.seq
	}
	panic(fmt.Sprintf("dilation: seqOf(%T)", rec))
}

// retireLocked drops every queued record up to seq and lets parked writes
// in. A record is released only once its link has encrypted it, so an ack
// for records not sent yet (which no honest peer sends) retires no more.
func (m *manager) retireLocked(seq uint32) {
	sealed, ok := m.outbox.sealedUpTo()
	if !ok {
		return
	}
	seq = min(seq, sealed)
	i := 0
	for i < len(m.unacked) && seqOf(m.unacked[i]) <= seq {
		m.unackedBytes -= recordSize(m.unacked[i])
		if d, ok := m.unacked[i].(dataRecord); ok {
			putBuffer(d.buf)
		}
		m.unacked[i] = nil
		i++
	}
	m.unacked = m.unacked[i:]
	n := 0
	for n < len(m.refusals) && m.refusals[n] <= seq {
		n++
	}
	m.refusals = m.refusals[n:]
	m.admitParkedLocked()
	m.kickSchedLocked()
}

// unackedCapLocked is how much unacknowledged data may be held now.
func (m *manager) unackedCapLocked() int {
	if shut, _ := m.gate.shut(); shut {
		return maxUnackedWhilePaused
	}
	return maxUnackedBytes
}

// kickSchedLocked wakes the writer if the scheduler holds records that a
// change (room for unacknowledged data, credit) may now let out.
func (m *manager) kickSchedLocked() {
	if len(m.sched.newFlows)+len(m.sched.oldFlows) > 0 {
		m.outbox.kick()
	}
}

// canWriteLocked says whether a new DATA record of sc may be queued now:
// its stream and the scheduler as a whole have room (a subchannel waiting
// for the peer's credit fills only its own stream), and so does the
// connection.
func (m *manager) canWriteLocked(sc *Subchannel) bool {
	if sc.out.bytes >= maxStreamQueue || m.sched.bytes >= maxQueuedTotal {
		return false
	}
	if m.outbox != nil {
		if m.outbox.size() >= maxBacklog {
			return false
		}
		// A peer that reads but never acknowledges would have us keep
		// everything sent; but while our reader pauses, its ACKs wait
		// unread behind the data we do not read, so they cannot count
		// up to the larger maxUnackedWhilePaused (and keepalive drops a
		// link stuck there).
		if m.unackedBytes < maxUnackedBytes {
			return true
		}
		shut, _ := m.gate.shut()
		return shut && m.unackedBytes < maxUnackedWhilePaused
	}
	return m.unackedBytes+m.sched.bytes < window
}

func (m *manager) admitParked() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.admitParkedLocked()
}

// admitParkedLocked lets in the parked writes that now have room, in
// order for each subchannel.
func (m *manager) admitParkedLocked() {
	if len(m.parked) == 0 {
		return
	}
	admitted := false
	var skipped []*Subchannel
	kept := m.parked[:0]
	for _, p := range m.parked {
		if !slices.Contains(skipped, p.sc) && m.canWriteLocked(p.sc) {
			p.sc.parked--
			p.reply <- m.admitWriteLocked(p.sc, p.rec)
			admitted = true
			continue
		}
		if !slices.Contains(skipped, p.sc) {
			skipped = append(skipped, p.sc)
		}
		kept = append(kept, p)
	}
	clear(m.parked[len(kept):])
	m.parked = kept
	if admitted {
		m.outbox.kick()
	}
}

// admitWriteLocked queues a DATA record in sc's stream; it is numbered
// when the scheduler sends it.
func (m *manager) admitWriteLocked(sc *Subchannel, rec dataRecord) error {
	if sc.writeClosed {
		putBuffer(rec.buf)
		return ErrClosedWrite
	}
	m.sched.enqueue(&sc.out, rec)
	return nil
}

func (m *manager) sendPingLocked() {
	var id [4]byte
	rand.Read(id[:])
	if len(m.pings) >= maxOutstandingPings {
		m.pings = slices.Delete(m.pings, 0, 1)
		m.pingSent = slices.Delete(m.pingSent, 0, 1)
	}
	m.pings = append(m.pings, id)
	m.pingSent = append(m.pingSent, time.Now())
	m.outbox.pushControl(pingRecord{id})
}

// keepalive drops a connection on which the peer went quiet, so that
// reconnection starts: the Leader pings every interval and drops one on
// which nothing arrived for two; the Follower drops one on which nothing
// arrived for followerSilence intervals. Time during which our own
// reader was paused does not count: the peer may have answered.
func (m *manager) keepalive() {
	if m.link == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	shut, openedAt := m.gate.shut()
	if shut {
		m.dropStuckPausedLocked()
		return
	}
	m.stuckSince = time.Time{}
	// Any record proves the peer alive, not only a PONG: on a busy link
	// a PONG may wait behind much data, and so may our PINGs.
	last, limit := m.lastHeard, followerSilence*m.cfg.PingInterval
	if m.leader {
		limit = 2 * m.cfg.PingInterval
	}
	if openedAt.After(last) {
		last = openedAt
	}
	if time.Since(last) > limit {
		m.log.Info("the peer went silent; dropping the connection", "leader", m.leader, "silent", time.Since(last).Round(time.Millisecond))
		m.link.close()
		return
	}
	if m.leader {
		m.sendPingLocked()
	}
}

// dropStuckPausedLocked drops a paused connection on which writers have
// waited at maxUnackedWhilePaused for pausedStallIntervals: the peer pulls
// our data and keeps its ACKs behind data we do not read, so the wait
// could last for ever.
func (m *manager) dropStuckPausedLocked() {
	if m.unackedBytes < maxUnackedWhilePaused {
		m.stuckSince = time.Time{}
		return
	}
	if m.stuckSince.IsZero() {
		m.stuckSince = time.Now()
		return
	}
	if stuck := time.Since(m.stuckSince); stuck >= pausedStallIntervals*m.cfg.PingInterval {
		m.log.Info("the peer's acknowledgements are stuck behind data nobody reads; dropping the connection",
			"unacknowledged", m.unackedBytes, "stuck", stuck.Round(time.Millisecond))
		m.stuckSince = time.Time{}
		m.link.close()
	}
}

// write queues one DATA record, prepared (copied) by the caller, and
// returns the outbox it went to (nil while disconnected) for the caller
// to flush. It waits while the backlog is full.
func (m *manager) write(sc *Subchannel, rec dataRecord) (*sendQueue, error) {
	m.mu.Lock()
	if m.stopped != nil {
		m.mu.Unlock()
		putBuffer(rec.buf)
		return nil, m.stopped
	}
	// The OPEN, queued before, goes with this record.
	sc.openPending.Store(false)
	if sc.parked == 0 && m.canWriteLocked(sc) {
		err := m.admitWriteLocked(sc, rec)
		q := m.outbox
		m.mu.Unlock()
		return q, err
	}
	reply := make(chan error, 1)
	sc.parked++
	m.parked = append(m.parked, parkedWrite{sc, rec, reply})
	m.outbox.kick()
	m.mu.Unlock()
	select {
	case err := <-reply:
		return nil, err
	case <-m.done:
		return nil, m.stoppedErr()
	}
}
