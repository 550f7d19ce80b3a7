package dilation

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// The manager's L4/L5 state against any sequence of records a peer can
// send: no panic, and every bound and every count it keeps holds after
// each record.

// bareManager is a manager connected to nothing: records are handed to
// gotRecord directly and what it queues stays in the outbox.
func bareManager(leader bool) (*manager, *sendQueue) {
	m := &manager{
		cfg: Config{PingInterval: time.Second}, log: slog.New(slog.DiscardHandler),
		gate: newFlowGate(), done: make(chan struct{}), leader: leader, highestSeen: -1,
		subchannels: map[uint32]*Subchannel{}, listeners: map[string]*Listener{},
		pendingOpens: map[string][]*Subchannel{},
	}
	q := newSendQueue(nil, nil)
	m.outbox = q
	return m, q
}

func (m *manager) listenLocked(subprotocol string) *Listener {
	l := &Listener{m: m, subprotocol: subprotocol, signal: make(chan struct{}, 1), closed: make(chan struct{})}
	m.listeners[subprotocol] = l
	for _, sc := range m.pendingOpens[subprotocol] {
		m.claimLocked(sc, l)
	}
	delete(m.pendingOpens, subprotocol)
	return l
}

// checkInvariants fails the test if the manager's counts disagree with
// its tables or exceed a bound.
func (m *manager) checkInvariants(t *testing.T) {
	t.Helper()
	m.mu.Lock()
	msg := m.invariantsBrokenLocked()
	m.mu.Unlock()
	if msg != "" {
		t.Fatal(msg)
	}
}

func (m *manager) invariantsBrokenLocked() string {
	peer, unclaimed := 0, 0
	for scid, sc := range m.subchannels {
		if sc.scid != scid {
			return fmt.Sprintf("subchannel %d filed under %d", sc.scid, scid)
		}
		if !sc.peerOpened {
			continue
		}
		peer++
		if scid == 0 || (scid%2 == 1) == m.leader {
			return fmt.Sprintf("the peer opened subchannel %d, which is not its to choose (we lead: %v)", scid, m.leader)
		}
	}
	for _, scs := range m.pendingOpens {
		for _, sc := range scs {
			if !sc.unclaimed || m.subchannels[sc.scid] != sc {
				return fmt.Sprintf("pending subchannel %d: unclaimed %v, in the table %v", sc.scid, sc.unclaimed, m.subchannels[sc.scid] == sc)
			}
			if b := sc.bufferedBytes(); b > maxUnclaimedBuffer {
				return fmt.Sprintf("unclaimed subchannel %d buffers %d bytes", sc.scid, b)
			}
			unclaimed++
		}
	}
	if peer != m.peerSubchannels || unclaimed != m.unclaimed {
		return fmt.Sprintf("counted %d peer subchannels, %d unclaimed; the manager says %d, %d", peer, unclaimed, m.peerSubchannels, m.unclaimed)
	}
	if m.peerSubchannels > maxPeerSubchannels || m.unclaimed > maxUnclaimedOpens || len(m.refusals) > maxUnansweredRefusals {
		return fmt.Sprintf("over a limit: %d subchannels, %d unclaimed, %d refusals", m.peerSubchannels, m.unclaimed, len(m.refusals))
	}
	return ""
}

func FuzzManagerRecords(f *testing.F) {
	frame := func(rs ...record) []byte {
		var b []byte
		for _, r := range rs {
			enc := appendRecord(nil, r)
			b = binary.BigEndian.AppendUint16(b, uint16(len(enc)))
			b = append(b, enc...)
		}
		return b
	}
	f.Add(false, frame(openRecord{2, 0, "l"}, dataRecord{scid: 2, seq: 1, payload: []byte("hi")}, closeRecord{2, 2}, dataRecord{scid: 2, seq: 3, payload: []byte("late")}))
	f.Add(false, frame(openRecord{1, 0, "l"}, openRecord{0, 1, "u"}, openRecord{4, 2, "u"}, openRecord{4, 3, "u"}, dataRecord{scid: 4, seq: 4, payload: make([]byte, 70000)}))
	f.Add(true, frame(openRecord{3, 5, "u"}, closeRecord{3, 6}, openRecord{3, 7, "u"}, ackRecord{100}, pingRecord{}, pingRecord{[4]byte{1}}))
	f.Add(true, frame(openRecord{1, 0, string(make([]byte, 300))}, closeRecord{9, 1}, kcmRecord{}, pongRecord{}))
	f.Fuzz(func(t *testing.T, leader bool, input []byte) {
		m, q := bareManager(leader)
		m.mu.Lock()
		m.listenLocked("l")
		m.mu.Unlock()
		defer func() {
			m.mu.Lock()
			for _, scs := range m.pendingOpens {
				for _, sc := range scs {
					sc.claimTimer.Stop()
				}
			}
			m.mu.Unlock()
		}()
		for len(input) >= 2 {
			n := int(binary.BigEndian.Uint16(input))
			input = input[2:]
			if n > len(input) {
				break
			}
			b := append([]byte(nil), input[:n]...)
			input = input[n:]
			rec, err := parseRecord(b)
			if err != nil {
				continue
			}
			m.gotRecord(q, rec, nil)
			m.checkInvariants(t)
		}
		// Listeners arriving late claim what waits for them.
		m.mu.Lock()
		for subprotocol := range m.pendingOpens {
			m.listenLocked(subprotocol)
		}
		unclaimed := m.unclaimed
		m.mu.Unlock()
		m.checkInvariants(t)
		if unclaimed != 0 {
			t.Fatalf("%d still unclaimed after Listen", unclaimed)
		}
	})
}

// PING and PONG go ahead of queued data, and only the latest of each.
func TestKeepaliveGoesAheadOfBulk(t *testing.T) {
	q := newSendQueue(nil, nil)
	for i := range 100 {
		q.push(dataRecord{scid: 1, seq: uint32(i), payload: make([]byte, 60000)})
	}
	q.pushControl(pongRecord{[4]byte{1}})
	q.pushControl(pongRecord{[4]byte{2}})
	q.pushControl(pingRecord{[4]byte{3}})
	q.mu.Lock()
	batch, _, _ := q.takeLocked()
	q.mu.Unlock()
	if len(batch) < 3 || batch[0] != (pingRecord{[4]byte{3}}) || batch[1] != (pongRecord{[4]byte{2}}) {
		t.Fatalf("batch starts %#v %#v, want the PING and the latest PONG", batch[0], batch[1])
	}
	if _, ok := batch[2].(dataRecord); !ok {
		t.Fatalf("then %T", batch[2])
	}
}
