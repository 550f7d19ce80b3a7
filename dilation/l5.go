package dilation

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"
)

// L5 of the manager: the subchannel table, the peer's OPENs and CLOSEs,
// listeners, and the subchannels the peer opened before anyone listened
// (unclaimed, bounded by limits.go). All of it is guarded by manager.mu
// (see the lock order in manager.go); the Subchannel itself is in
// subchannel.go.

// gotOpenLocked handles the peer's OPEN. Its id must have the peer's
// parity (the Leader's are odd, the Follower's even; 0 is the removed
// control channel) and be higher than any the peer used before, as both
// reference allocators count up: an id of ours, or one used before, is
// dropped (answering it with CLOSE would close ours). A valid OPEN
// beyond the limits is refused with CLOSE.
func (m *manager) gotOpenLocked(scid uint32, subprotocol string) {
	peerParity := uint32(1)
	if m.leader {
		peerParity = 0
	}
	switch {
	case scid == 0 || scid%2 != peerParity:
		m.logRefusalLocked("ignoring OPEN with an id that is not the peer's to choose", scid, subprotocol, "")
		return
	case scid <= m.highestPeerSCID:
		m.logRefusalLocked("ignoring OPEN reusing a subchannel id", scid, subprotocol, "")
		return
	}
	m.highestPeerSCID = scid
	l := m.listeners[subprotocol]
	switch {
	case len(subprotocol) > maxSubprotocolName:
		m.refuseLocked(scid, subprotocol, fmt.Sprintf("subprotocol name of %d bytes, over %d", len(subprotocol), maxSubprotocolName))
		return
	case m.cfg.ExpectedSubprotocols != nil && !slices.Contains(m.cfg.ExpectedSubprotocols, subprotocol):
		m.refuseLocked(scid, subprotocol, "unexpected subprotocol")
		return
	case m.peerSubchannels >= maxPeerSubchannels:
		m.refuseLocked(scid, subprotocol, fmt.Sprintf("the peer has %d subchannels open already", m.peerSubchannels))
		return
	case l == nil && m.unclaimed >= maxUnclaimedOpens:
		m.refuseLocked(scid, subprotocol, fmt.Sprintf("nobody listens, and %d subchannels wait for a listener already", m.unclaimed))
		return
	}
	sc := newSubchannel(m, scid, subprotocol)
	sc.peerOpened = true
	m.peerSubchannels++
	m.subchannels[scid] = sc
	if sc.flow && sc.win.size > initialFlowWindow {
		// A window learned from the path: the peer may send that much
		// at once, rather than after our first read. It rides with the
		// ACK of the OPEN.
		sc.win.limit = sc.win.size
		m.outbox.pushWindowSoon(scid, sc.win.limit)
	}
	if l != nil {
		l.enqueue(sc)
		return
	}
	sc.unclaimed = true
	m.unclaimed++
	m.pendingOpens[subprotocol] = append(m.pendingOpens[subprotocol], sc)
	sc.claimTimer = time.AfterFunc(unclaimedOpenTimeout, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if sc.unclaimed && m.stopped == nil {
			m.dropUnclaimedLocked(sc, fmt.Sprintf("nobody listened for %v", unclaimedOpenTimeout))
		}
	})
}

// gotDataLocked delivers a DATA payload, held in buf, to its subchannel
// and reports whether the subchannel kept buf. A peer that sent beyond
// the subchannel's window (gander-flow-v1) gets a ProtocolError.
func (m *manager) gotDataLocked(r dataRecord, buf *[]byte) (kept bool, err error) {
	sc := m.subchannels[r.scid]
	if sc == nil {
		m.log.Debug("dropping DATA for a subchannel that is not open", "scid", r.scid)
		return false, nil
	}
	kept, announce, err := sc.deliver(r.payload, buf)
	if err != nil {
		return false, &ProtocolError{Layer: "L4", Reason: fmt.Sprintf("the peer sent beyond subchannel %d's flow-control window", r.scid)}
	}
	if announce > 0 {
		m.outbox.pushWindow(sc.scid, announce)
	}
	if sc.unclaimed && sc.heldBytes() > maxUnclaimedBuffer {
		// Dropping it recycles buf if it was kept.
		m.dropUnclaimedLocked(sc, fmt.Sprintf("data holding more than %d bytes arrived before anyone listened", maxUnclaimedBuffer))
		return kept, nil
	}
	if shut, _ := m.gate.shut(); shut {
		// Our reader pauses, so the peer's ACKs go unread: writers
		// waiting for them must not wait (see canWriteLocked).
		m.admitParkedLocked()
		m.kickSchedLocked()
	}
	return kept, nil
}

// claimLocked hands an unclaimed subchannel to its new listener.
func (m *manager) claimLocked(sc *Subchannel, l *Listener) {
	sc.unclaimed = false
	sc.claimTimer.Stop()
	m.unclaimed--
	l.enqueue(sc)
}

// dropUnclaimedLocked refuses a subchannel nobody listened for: its data
// is dropped and the peer gets CLOSE.
func (m *manager) dropUnclaimedLocked(sc *Subchannel, reason string) {
	sc.unclaimed = false
	sc.claimTimer.Stop()
	m.unclaimed--
	m.pendingOpens[sc.subprotocol] = slices.DeleteFunc(m.pendingOpens[sc.subprotocol], func(o *Subchannel) bool { return o == sc })
	if len(m.pendingOpens[sc.subprotocol]) == 0 {
		delete(m.pendingOpens, sc.subprotocol)
	}
	m.abandonLocked(sc, reason)
}

// abandonLocked refuses a subchannel the peer opened and nobody took.
func (m *manager) abandonLocked(sc *Subchannel, reason string) {
	m.forgetLocked(sc)
	sc.mu.Lock()
	sc.closed = true
	sc.discardLocked()
	sc.mu.Unlock()
	m.refuseLocked(sc.scid, sc.subprotocol, reason)
}

// refuseLocked answers the peer's OPEN with CLOSE, unless the peer has
// left maxUnansweredRefusals of them unacknowledged: a peer flooding OPENs
// without reading is not worth answering, and its further OPENs are
// dropped (their ids are used up all the same).
func (m *manager) refuseLocked(scid uint32, subprotocol, reason string) {
	if len(m.refusals) >= maxUnansweredRefusals {
		m.logRefusalLocked("refusing subchannel without answering: the peer does not acknowledge our refusals", scid, subprotocol, reason)
		return
	}
	m.logRefusalLocked("refusing subchannel", scid, subprotocol, reason)
	m.refusals = append(m.refusals, m.nextSeq)
	m.sendSequencedLocked(closeRecord{scid: scid})
	if m.flow {
		// What the peer queued for it is dropped on arrival; credit
		// without end lets it through to its CLOSE.
		m.outbox.pushWindow(scid, 1<<62)
	}
	m.outbox.kick()
}

// logRefusalLocked logs a refused or ignored OPEN: at Info level the
// first few times and then once in a while, with the count so far.
func (m *manager) logRefusalLocked(msg string, scid uint32, subprotocol, reason string) {
	m.refused++
	level := slog.LevelDebug
	if m.refused <= refusalsLoggedInFull || m.refused%refusalLogEvery == 0 {
		level = slog.LevelInfo
	}
	if len(subprotocol) > 64 {
		subprotocol = fmt.Sprintf("%.64q... (%d bytes)", subprotocol, len(subprotocol))
	}
	attrs := []any{"scid", scid, "subprotocol", subprotocol, "refused so far", m.refused}
	if reason != "" {
		attrs = append(attrs, "reason", reason)
	}
	m.log.Log(context.Background(), level, msg, attrs...)
}

// forgetLocked removes a subchannel from the table once both sides have
// closed it (or it was refused).
func (m *manager) forgetLocked(sc *Subchannel) {
	if m.subchannels[sc.scid] != sc {
		return
	}
	delete(m.subchannels, sc.scid)
	if len(sc.out.queue) > 0 {
		// Its last records, the CLOSE among them, still wait for the
		// scheduler (and maybe for the peer's WINDOW).
		m.draining[sc.scid] = sc
	}
	if sc.peerOpened {
		m.peerSubchannels--
	}
	if sc.flow {
		// Its window no longer counts against maxFlowWindowsTotal.
		sc.mu.Lock()
		grown := sc.win.size - initialFlowWindow
		sc.win.size = initialFlowWindow
		sc.mu.Unlock()
		m.windowsTotal.Add(-grown)
	}
}

func (m *manager) gotCloseLocked(scid uint32) {
	sc := m.subchannels[scid]
	if sc == nil {
		m.log.Debug("dropping CLOSE for a subchannel that is not open", "scid", scid)
		return
	}
	if !sc.remoteClose() {
		m.log.Debug("dropping a second CLOSE", "scid", scid)
		return
	}
	if sc.writeClosed {
		m.forgetLocked(sc)
	}
}

// sendOpen has the writer goroutine send sc's OPEN now: sc is about to
// wait for the peer, which may need the OPEN to answer.
func (m *manager) sendOpen(sc *Subchannel) {
	if !sc.openPending.Swap(false) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outbox.kick()
}

// closeWrite queues sc's CLOSE to go within flushDelay, as an ACK does:
// nobody waits for it the way they wait for data, and a connection's end
// is often followed at once by another's OPEN (a client's next request)
// or by the ACK of the peer's last data, which it then rides with. Sent
// alone, two small writes in a row would have a relay without
// TCP_NODELAY (the stock transit relay) hold the second back until the
// first is acknowledged: up to the peer's delayed ACK, 40 ms.
func (m *manager) closeWrite(sc *Subchannel) error {
	q, err := m.queueClose(sc)
	q.soon()
	return err
}

func (m *manager) queueClose(sc *Subchannel) (*sendQueue, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped != nil {
		return nil, m.stopped
	}
	if sc.writeClosed {
		return nil, ErrClosedWrite
	}
	sc.writeClosed = true
	// Writes of sc waiting for room fail now rather than once room comes,
	// which a stalled peer may never make.
	m.parked = slices.DeleteFunc(m.parked, func(p parkedWrite) bool {
		if p.sc != sc {
			return false
		}
		putBuffer(p.rec.buf)
		p.reply <- ErrClosedWrite
		return true
	})
	sc.parked = 0
	m.sched.enqueue(&sc.out, closeRecord{scid: sc.scid})
	sc.mu.Lock()
	remoteEOF := sc.remoteEOF
	sc.mu.Unlock()
	if remoteEOF {
		m.forgetLocked(sc)
	}
	return m.outbox, nil
}

func (m *manager) unlisten(l *Listener) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.listeners[l.subprotocol] == l {
		delete(m.listeners, l.subprotocol)
	}
	// What the peer opened and nobody accepted will not be accepted now.
	l.mu.Lock()
	queued := l.queue
	l.queue = nil
	l.mu.Unlock()
	if m.stopped != nil {
		return
	}
	for _, sc := range queued {
		m.abandonLocked(sc, "the listener closed before accepting it")
	}
}

// subchannelFor is the subchannel with id scid, or nil.
func (m *manager) subchannelFor(scid uint32) *Subchannel {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.subchannels[scid]
}
