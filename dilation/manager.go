package dilation

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"
)

// The manager is _dilation/manager.py's Manager: one goroutine owns the
// L1 state machine, the L4 sequence numbers and retransmission queue, and
// the subchannel table. Connections (L2/L3) are used by a reader and a
// writer goroutine each, which talk to the manager through events.
//
//	WAITING ─version─▶ WANTING ─peer please─▶ CONNECTING ─link─▶ CONNECTED
//	Leader:   CONNECTED ─lost─▶ FLUSHING (send reconnect) ─reconnecting─▶ CONNECTING
//	Follower: CONNECTED ─lost─▶ LONELY ─reconnect─▶ CONNECTING (send reconnecting)
//	          CONNECTED ─reconnect─▶ ABANDONING ─lost─▶ CONNECTING (send reconnecting)
//	          CONNECTING ─reconnect─▶ CONNECTING (new generation, send reconnecting)

type state int

const (
	stateWaiting state = iota
	stateWanting
	stateConnecting
	stateConnected
	stateFlushing
	stateLonely
	stateAbandoning
	stateStopped
)

func (s state) String() string {
	return [...]string{"waiting", "wanting", "connecting", "connected", "flushing", "lonely", "abandoning", "stopped"}[s]
}

// Writers block, as the reference pauses its producers, while the
// connection's send backlog exceeds maxBacklog, or while disconnected
// once window bytes await acknowledgement. Unacknowledged data is not
// limited while connected: acks travel behind the peer's own data, so
// waiting for them would tie the two directions together and deadlock
// an echo whose reader is paused.
const (
	maxBacklog = 2 << 20
	window     = 8 << 20
)

// maxBatch bounds how much the writer encrypts before one syscall.
const maxBatch = 1 << 20

type managerEvent any

type (
	versionsKnown struct{ canDilate []string }
	l1Received    struct{ data []byte }
	recordIn      struct {
		generation int
		rec        record
	}
	linkLost struct {
		generation int
		err        error
	}
	backlogDrained struct{ generation int }
)

type manager struct {
	cfg Config
	log *slog.Logger
	mb  Mailbox

	events   chan managerEvent
	requests chan func()
	gate     *flowGate
	ready    chan struct{} // closed on the first connection
	role     chan struct{} // closed once leader is decided
	done     chan struct{} // closed when run returns
	err      error         // why it stopped; read after done
	stop     context.CancelFunc

	statusMu sync.Mutex
	status   Status
	updates  chan Status

	// Owned by the run goroutine.
	state      state
	side       string
	key        []byte
	leader     bool
	relays     []hint
	generation int
	connector  *connector
	link       *link
	outbox     *sendQueue
	stopLink   context.CancelFunc
	linkDone   sync.WaitGroup
	lastPong   time.Time
	connectors sync.WaitGroup

	nextSeq      uint32
	unacked      []record
	unackedBytes int
	parked       []parkedWrite
	highestSeen  int64

	nextSCID     uint32
	subchannels  map[uint32]*Subchannel
	listeners    map[string]*Listener
	pendingOpens map[string][]*Subchannel
}

type parkedWrite struct {
	sc    *Subchannel
	rec   dataRecord
	reply chan error
}

func newSide() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (m *manager) run(ctx context.Context) {
	defer m.shutdown()
	ticker := time.NewTicker(m.cfg.PingInterval)
	defer ticker.Stop()
	go m.pumpMailbox(ctx)
	for m.state != stateStopped {
		select {
		case <-ctx.Done():
			m.fail(ErrClosed)
		case f := <-m.requests:
			f()
		case ev := <-m.events:
			m.handle(ev)
		case <-ticker.C:
			m.keepalive()
		}
	}
}

// pumpMailbox feeds the manager the peer's version and then its dilate-N
// messages, in order.
func (m *manager) pumpMailbox(ctx context.Context) {
	version, err := m.mb.PeerVersion(ctx)
	if err != nil {
		m.post(ctx, failure{fmt.Errorf("waiting for the peer's version: %w", err)})
		return
	}
	var canDilate []string
	if raw, ok := version["can-dilate"]; ok {
		if err := json.Unmarshal(raw, &canDilate); err != nil {
			m.log.Debug("peer's can-dilate is not a list of strings", "value", string(raw))
		}
	}
	if !m.post(ctx, versionsKnown{canDilate}) {
		return
	}
	for {
		msg, err := m.mb.ReceiveDilation(ctx)
		if err != nil {
			m.log.Debug("mailbox gone; no more reconnection messages", "err", err)
			return
		}
		if !m.post(ctx, l1Received{msg}) {
			return
		}
	}
}

type failure struct{ err error }

func (m *manager) post(ctx context.Context, ev managerEvent) bool {
	select {
	case m.events <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

func (m *manager) handle(ev managerEvent) {
	switch ev := ev.(type) {
	case failure:
		m.fail(ev.err)
	case versionsKnown:
		m.gotVersions(ev.canDilate)
	case l1Received:
		m.gotL1(ev.data)
	case linkSelected:
		m.gotLink(ev)
	case recordIn:
		if m.link != nil && ev.generation == m.generation {
			m.gotRecord(ev.rec)
		}
	case linkLost:
		if m.link != nil && ev.generation == m.generation {
			m.lostLink(ev.err)
		}
	case backlogDrained:
		if ev.generation == m.generation {
			m.admitParked()
		}
	}
}

func (m *manager) gotVersions(canDilate []string) {
	if m.state != stateWaiting {
		return
	}
	key, err := m.mb.DeriveKey("dilation-v1", 32)
	if err != nil {
		m.fail(err)
		return
	}
	m.key = key
	version := chooseVersion(canDilate)
	m.sendL1(l1Message{Type: "please", Side: m.side, UseVersion: version})
	if version == "" {
		m.fail(ErrPeerCannotDilate)
		return
	}
	m.state = stateWanting
}

func (m *manager) sendL1(msg l1Message) {
	data, err := json.Marshal(msg)
	if err != nil {
		panic("dilation: encoding an L1 message: " + err.Error())
	}
	// SendDilation only queues: it does not block on the network.
	if err := m.mb.SendDilation(context.Background(), data); err != nil {
		m.log.Debug("cannot send through the mailbox", "type", msg.Type, "err", err)
	}
}

func (m *manager) gotL1(data []byte) {
	var msg l1Message
	if err := json.Unmarshal(data, &msg); err != nil {
		m.log.Debug("ignoring malformed dilation message", "err", err)
		return
	}
	switch msg.Type {
	case "please":
		if m.state != stateWanting {
			return
		}
		if msg.Side == m.side {
			m.fail(&ProtocolError{Layer: "L1", Reason: "the peer's dilation side equals ours (a reflection?)"})
			return
		}
		m.leader = m.side > msg.Side
		m.nextSCID = 2
		if m.leader {
			m.nextSCID = 1
		}
		close(m.role)
		m.startGeneration()
	case "connection-hints":
		if m.state != stateConnecting || m.connector == nil {
			return
		}
		hints := parseHints(msg.Hints)
		if m.cfg.NoDirect {
			hints = slices.DeleteFunc(hints, func(h hint) bool { return !h.relay })
		}
		m.connector.addHints(hints)
	case "reconnect":
		if m.leader {
			return
		}
		switch m.state {
		case stateConnected:
			m.state = stateAbandoning
			m.link.close()
		case stateConnecting, stateLonely:
			m.stopConnector()
			m.sendL1(l1Message{Type: "reconnecting"})
			m.startGeneration()
		}
	case "reconnecting":
		if m.leader && m.state == stateFlushing {
			m.startGeneration()
		}
	default:
		m.log.Debug("ignoring unknown dilation message", "type", msg.Type)
	}
}

// startGeneration starts a connector and sends our hints.
func (m *manager) startGeneration() {
	m.generation++
	m.state = stateConnecting
	c, hints := startConnector(context.Background(), m.generation, m.leader, m.key, m.side,
		m.relays, m.cfg.NoDirect, m.log, m.events)
	m.connector = c
	m.connectors.Add(1)
	go func() {
		defer m.connectors.Done()
		c.wait()
	}()
	if len(hints) > 0 {
		m.sendL1(l1Message{Type: "connection-hints", Hints: encodeHints(hints)})
	}
	m.setStatus()
}

func (m *manager) stopConnector() {
	if m.connector != nil {
		m.connector.stop()
		m.connector = nil
	}
}

func (m *manager) gotLink(ev linkSelected) {
	if ev.generation != m.generation || m.state != stateConnecting {
		ev.link.close()
		return
	}
	m.connector = nil
	m.link = ev.link
	m.state = stateConnected
	m.lastPong = time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	m.stopLink = cancel
	m.outbox = newSendQueue()
	// Everything not yet acknowledged goes first, in sequence order.
	m.outbox.push(m.unacked...)
	m.linkDone.Add(2)
	go m.readLink(ctx, m.generation, m.link)
	go m.writeLink(ctx, m.generation, m.link, m.outbox)
	if m.leader {
		m.sendPing()
	}
	select {
	case <-m.ready:
	default:
		close(m.ready)
	}
	m.setStatus()
}

func (m *manager) readLink(ctx context.Context, generation int, l *link) {
	defer m.linkDone.Done()
	for {
		if !m.gate.wait(l.closed) {
			m.post(ctx, linkLost{generation, net.ErrClosed})
			return
		}
		rec, err := l.readRecord()
		if err != nil {
			m.post(ctx, linkLost{generation, err})
			return
		}
		if !m.post(ctx, recordIn{generation, rec}) {
			return
		}
	}
}

func (m *manager) writeLink(ctx context.Context, generation int, l *link, q *sendQueue) {
	defer m.linkDone.Done()
	for {
		batch, drained, ok := q.take(ctx)
		if !ok {
			return
		}
		if drained {
			m.post(ctx, backlogDrained{generation})
		}
		if err := l.writeRecords(batch); err != nil {
			l.close()
			m.post(ctx, linkLost{generation, err})
			return
		}
	}
}

func (m *manager) dropLink() {
	if m.link == nil {
		return
	}
	m.stopLink()
	m.link.close()
	m.link, m.outbox = nil, nil
}

func (m *manager) lostLink(err error) {
	m.log.Info("connection lost", "generation", m.generation, "err", err)
	m.dropLink()
	switch {
	case m.leader:
		m.sendL1(l1Message{Type: "reconnect"})
		m.state = stateFlushing
	case m.state == stateAbandoning:
		m.sendL1(l1Message{Type: "reconnecting"})
		m.startGeneration()
	default:
		m.state = stateLonely
	}
	m.admitParked()
	m.setStatus()
}

func (m *manager) gotRecord(rec record) {
	switch r := rec.(type) {
	case openRecord:
		if m.accept(r.seq) {
			m.gotOpen(r.scid, r.subprotocol)
		}
	case dataRecord:
		if m.accept(r.seq) {
			if sc := m.subchannels[r.scid]; sc != nil {
				sc.deliver(r.payload)
			} else {
				m.log.Debug("DATA for unknown subchannel", "scid", r.scid)
			}
		}
	case closeRecord:
		if m.accept(r.seq) {
			m.gotClose(r.scid)
		}
	case ackRecord:
		m.retire(r.seq)
	case pingRecord:
		m.outbox.push(pongRecord{r.id})
	case pongRecord:
		m.lastPong = time.Now()
	case kcmRecord:
		m.log.Debug("unexpected KCM on a selected connection")
	}
}

// accept acknowledges a sequenced record (always, duplicates included) and
// reports whether it is new.
func (m *manager) accept(seq uint32) bool {
	m.outbox.push(ackRecord{seq})
	if int64(seq) <= m.highestSeen {
		return false
	}
	m.highestSeen = int64(seq)
	return true
}

func (m *manager) gotOpen(scid uint32, subprotocol string) {
	if _, dup := m.subchannels[scid]; dup {
		m.log.Debug("duplicate OPEN", "scid", scid)
		return
	}
	if m.cfg.ExpectedSubprotocols != nil && !slices.Contains(m.cfg.ExpectedSubprotocols, subprotocol) {
		m.log.Info("refusing subchannel for unexpected subprotocol", "subprotocol", subprotocol)
		m.sendSequenced(closeRecord{scid: scid})
		return
	}
	sc := newSubchannel(m, scid, subprotocol)
	m.subchannels[scid] = sc
	if l := m.listeners[subprotocol]; l != nil {
		l.enqueue(sc)
		return
	}
	m.pendingOpens[subprotocol] = append(m.pendingOpens[subprotocol], sc)
}

func (m *manager) gotClose(scid uint32) {
	sc := m.subchannels[scid]
	if sc == nil {
		m.log.Debug("CLOSE for unknown subchannel", "scid", scid)
		return
	}
	sc.remoteClose()
	if sc.writeClosed {
		delete(m.subchannels, scid)
	}
}

// sendSequenced numbers a record, keeps it until acknowledged and sends
// it if connected.
func (m *manager) sendSequenced(rec record) {
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
	if m.outbox != nil {
		m.outbox.push(rec)
	}
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

// retire drops every queued record up to seq and lets parked writes in.
func (m *manager) retire(seq uint32) {
	i := 0
	for i < len(m.unacked) && seqOf(m.unacked[i]) <= seq {
		m.unackedBytes -= recordSize(m.unacked[i])
		m.unacked[i] = nil
		i++
	}
	m.unacked = m.unacked[i:]
	m.admitParked()
}

// canWrite says whether a new DATA record may be queued now.
func (m *manager) canWrite() bool {
	if m.outbox != nil {
		return m.outbox.size() < maxBacklog
	}
	return m.unackedBytes < window
}

func (m *manager) admitParked() {
	for len(m.parked) > 0 && m.canWrite() {
		p := m.parked[0]
		m.parked = m.parked[1:]
		p.reply <- m.admitWrite(p.sc, p.rec)
	}
}

func (m *manager) admitWrite(sc *Subchannel, rec dataRecord) error {
	if sc.writeClosed {
		return ErrClosedWrite
	}
	m.sendSequenced(rec)
	return nil
}

func (m *manager) sendPing() {
	var id [4]byte
	rand.Read(id[:])
	m.outbox.push(pingRecord{id})
}

// keepalive is the Leader's: ping every interval, and drop a connection
// that has not answered for two intervals so that reconnection starts.
func (m *manager) keepalive() {
	if !m.leader || m.link == nil {
		return
	}
	if time.Since(m.lastPong) > 2*m.cfg.PingInterval {
		m.log.Info("peer stopped answering pings; reconnecting")
		m.link.close()
		return
	}
	m.sendPing()
}

func (m *manager) setStatus() {
	st := Status{Generation: m.generation, Leader: m.leader}
	switch m.state {
	case stateWaiting, stateWanting:
		st.State = Waiting
	case stateConnecting:
		st.State = Connecting
		if m.generation > 1 {
			st.State = Reconnecting
		}
	case stateConnected:
		st.State = Connected
		st.Via, st.Relayed = m.link.description, m.link.relayed
	case stateFlushing, stateLonely, stateAbandoning:
		st.State = Reconnecting
	case stateStopped:
		st.State = Stopped
		st.Err = m.err
	}
	m.statusMu.Lock()
	m.status = st
	m.statusMu.Unlock()
	select {
	case <-m.updates:
	default:
	}
	m.updates <- st
}

func (m *manager) fail(err error) {
	if m.state == stateStopped {
		return
	}
	if !errors.Is(err, ErrClosed) {
		m.log.Info("dilation stopped", "err", err)
	}
	m.err = err
	m.state = stateStopped
}

// shutdown runs on the manager goroutine as it exits: it closes every
// connection and wakes everyone waiting on a subchannel.
func (m *manager) shutdown() {
	m.stopConnector()
	m.dropLink()
	m.stop()
	m.linkDone.Wait()
	m.connectors.Wait()
	err := m.stoppedErr()
	for _, sc := range m.subchannels {
		sc.fail(err)
	}
	for _, pending := range m.pendingOpens {
		for _, sc := range pending {
			sc.fail(err)
		}
	}
	for _, p := range m.parked {
		p.reply <- err
	}
	m.setStatus()
	close(m.done)
}

func (m *manager) stoppedErr() error {
	if m.err == nil || errors.Is(m.err, ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrClosed, m.err)
}

// do runs f on the manager goroutine and waits for it.
func (m *manager) do(f func()) error {
	finished := make(chan struct{})
	select {
	case m.requests <- func() { f(); close(finished) }:
	case <-m.done:
		return m.stoppedErr()
	}
	select {
	case <-finished:
		return nil
	case <-m.done:
		return m.stoppedErr()
	}
}

// write queues one DATA record, prepared (copied) by the caller's
// goroutine so that the manager's stays free.
func (m *manager) write(sc *Subchannel, rec dataRecord) error {
	reply := make(chan error, 1)
	if err := m.do(func() {
		if len(m.parked) > 0 || !m.canWrite() {
			m.parked = append(m.parked, parkedWrite{sc, rec, reply})
			return
		}
		reply <- m.admitWrite(sc, rec)
	}); err != nil {
		return err
	}
	select {
	case err := <-reply:
		return err
	case <-m.done:
		return m.stoppedErr()
	}
}

func (m *manager) closeWrite(sc *Subchannel) error {
	var err error
	doErr := m.do(func() {
		if sc.writeClosed {
			err = ErrClosedWrite
			return
		}
		sc.writeClosed = true
		m.sendSequenced(closeRecord{scid: sc.scid})
		sc.mu.Lock()
		remoteEOF := sc.remoteEOF
		sc.mu.Unlock()
		if remoteEOF {
			delete(m.subchannels, sc.scid)
		}
	})
	if doErr != nil {
		return doErr
	}
	return err
}

func (m *manager) unlisten(l *Listener) {
	m.do(func() {
		if m.listeners[l.subprotocol] == l {
			delete(m.listeners, l.subprotocol)
		}
	})
}

// collapseAcks copies a batch, replacing its ACKs with one for the highest
// sequence number: the reference's ACK retires every record up to its
// number, so under load one ACK per batch does the work of dozens.
func collapseAcks(items []record) []record {
	batch := make([]record, 0, len(items))
	var top ackRecord
	acks := 0
	for _, r := range items {
		if a, ok := r.(ackRecord); ok {
			if acks == 0 || a.seq > top.seq {
				top = a
			}
			acks++
			continue
		}
		batch = append(batch, r)
	}
	if acks > 0 {
		batch = append(batch, top)
	}
	return batch
}

// sendQueue hands records from the manager to a link's writer goroutine
// without ever blocking the manager.
type sendQueue struct {
	mu     sync.Mutex
	items  []record
	bytes  int
	signal chan struct{}
}

func newSendQueue() *sendQueue { return &sendQueue{signal: make(chan struct{}, 1)} }

func (q *sendQueue) push(rs ...record) {
	if q == nil || len(rs) == 0 {
		return
	}
	q.mu.Lock()
	q.items = append(q.items, rs...)
	for _, r := range rs {
		q.bytes += recordSize(r)
	}
	q.mu.Unlock()
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

// take waits for records and returns up to about maxBatch bytes of them,
// and whether taking them brought the backlog under maxBacklog.
func (q *sendQueue) take(ctx context.Context) (batch []record, drained, ok bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			n, size := 0, 0
			for n < len(q.items) && (n == 0 || size < maxBatch) {
				size += recordSize(q.items[n])
				n++
			}
			batch := collapseAcks(q.items[:n])
			clear(q.items[:n])
			q.items = q.items[n:]
			drained := q.bytes >= maxBacklog && q.bytes-size < maxBacklog
			q.bytes -= size
			if len(q.items) > 0 {
				select {
				case q.signal <- struct{}{}:
				default:
				}
			}
			q.mu.Unlock()
			return batch, drained, true
		}
		q.mu.Unlock()
		select {
		case <-q.signal:
		case <-ctx.Done():
			return nil, false, false
		}
	}
}
