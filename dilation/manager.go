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
	"sync/atomic"
	"time"

	"github.com/gander-pair/gander/transit"
)

// The manager is _dilation/manager.py's Manager. One goroutine (run) owns
// the L1 state machine and the connection's lifecycle (this file); the L4
// sequence numbers, acknowledgements and retransmission queue (l4.go) and
// the L5 subchannel table (l5.go) sit behind a mutex instead, so that records go
// straight from a subchannel's writer to the link, and from the link's
// reader to the subchannel, without a hop through run.
//
//	WAITING ─version─▶ WANTING ─peer please─▶ CONNECTING ─link─▶ CONNECTED
//	Leader:   CONNECTED ─lost─▶ PROBING ─path back─▶ FLUSHING (send reconnect) ─reconnecting─▶ CONNECTING
//	          CONNECTING ─nudge─▶ FLUSHING (send reconnect)
//	Follower: CONNECTED ─lost─▶ LONELY ─reconnect─▶ PROBING ─path back─▶ CONNECTING (send reconnecting)
//	          CONNECTED ─reconnect─▶ ABANDONING ─lost─▶ PROBING
//	          CONNECTING ─reconnect─▶ PROBING
//
// The reference has no PROBING and no nudge: it makes one attempt per hint
// per generation, so once an outage outlasts that attempt it never
// reconnects. gander retries every hint until the generation connects
// (transit.Race), probes the relay before asking for a new generation so
// that a reference peer's one attempt comes when the path is back, and as
// Leader starts a new generation when the peer seems to have stopped
// trying.
//
// Each connection in use has a reader goroutine, which handles the records
// it reads under mu, and a writer goroutine, which flushes its outbox when
// nobody else does (see sendQueue). Lock order: mu, then a Subchannel's
// or Listener's mu, then the outbox's, then the flow gate's.

type state int

const (
	stateWaiting state = iota
	stateWanting
	stateConnecting
	stateConnected
	stateFlushing
	stateLonely
	stateAbandoning
	stateProbing
	stateStopped
)

func (s state) String() string {
	return [...]string{"waiting", "wanting", "connecting", "connected", "flushing", "lonely", "abandoning", "probing", "stopped"}[s]
}

type managerEvent any

type (
	versionsKnown struct {
		canDilate []string
		flow      bool // the peer announced gander-flow-v1
	}
	l1Received struct{ data []byte }
	linkLost   struct {
		generation int
		err        error
	}
	mailboxGone struct{ err error }
)

type manager struct {
	cfg Config
	log *slog.Logger
	mb  Mailbox

	events chan managerEvent
	// raceEvents receives what the connection race, the relay prober and
	// the address watcher report.
	raceEvents chan transit.Event
	requests   chan func()
	gate       *flowGate
	ready      chan struct{} // closed on the first connection
	role       chan struct{} // closed once leader is decided
	done       chan struct{} // closed when run returns
	err        error         // why it stopped; read after done
	stop       context.CancelFunc

	statusMu sync.Mutex
	status   Status
	updates  chan Status

	// Owned by the run goroutine.
	state      state
	side       string
	key        []byte
	leader     bool
	relays     []transit.Hint
	generation int
	connector  *transit.Race[*link]
	link       *link
	stopLink   context.CancelFunc
	linkDone   sync.WaitGroup
	connectors sync.WaitGroup // connectors, probers and the address watcher

	// Reconnection, owned by run as well.
	lostAt      time.Time     // when the connection in use was lost; zero while connected
	attempts    int           // failed attempts since lostAt (or since the first race began)
	lastFailure error         // the latest of them
	outage      time.Duration // how long the last loss lasted, once connected again
	probe       *transit.Prober
	probeID     int
	nudge       *time.Timer // the Leader's: when to ask for a new generation
	nudgeDue    time.Time
	nudges      int            // new generations asked for since last connected
	peerRelays  []transit.Hint // the relays the peer announced, for probing
	peerDirect  bool           // the peer announced direct hints
	mailboxErr  error          // why the mailbox's dilation messages ended
	// The Follower acts on the peer's "reconnect" at most once per
	// minGenerationInterval: reconnectedAt is when it last did, and
	// laterReconnect fires when a reconnect held back (reconnectHeld,
	// while connected or not) is due.
	reconnectedAt       time.Time
	laterReconnect      *time.Timer
	reconnectHeld       bool
	reconnectHeldOnLink *link // the connection in use when it was held

	// Guarded by mu: L4 and L5. Nothing done under mu blocks; records
	// for the peer go to the outbox.
	mu        sync.Mutex
	stopped   error      // set by shutdown: subchannels fail with it
	outbox    *sendQueue // the connection in use's; nil while there is none
	lastHeard time.Time  // the last record that proves the peer alive (any but an unasked PONG)
	pings     [][4]byte  // ids of our PINGs not answered, newest last
	pingSent  []time.Time
	lastProbe time.Time // our last PING measuring the round trip (gander-flow-v1)
	rtt       rttEstimator
	flow      bool      // gander-flow-v1 was negotiated; set before any subchannel exists
	sched     scheduler // every subchannel's records not numbered yet
	// draining holds the subchannels forgotten while their streams still
	// hold records, for the peer's WINDOWs to reach them.
	draining     map[uint32]*Subchannel
	stuckSince   time.Time // since when writers wait at maxUnackedWhilePaused, paused
	nextSeq      uint32
	unacked      []record
	unackedBytes int
	parked       []parkedWrite
	highestSeen  int64
	nextSCID     uint32
	subchannels  map[uint32]*Subchannel
	listeners    map[string]*Listener
	pendingOpens map[string][]*Subchannel // unclaimed, by subprotocol
	// What the peer opened: how many are open, how many unclaimed, the
	// highest id it used (ids only grow), and the sequence numbers of
	// our refusals (CLOSEs) it has not acknowledged.
	peerSubchannels int
	unclaimed       int
	highestPeerSCID uint32
	refusals        []uint32
	refused         int // OPENs refused or ignored, for the log

	// rttNanos mirrors rtt.min and windowsTotal sums the receive
	// windows of flow-controlled subchannels, for their readers, which
	// do not take mu.
	rttNanos     atomic.Int64
	windowsTotal atomic.Int64
	// pathWindow is the receive window the path last sized a
	// subchannel's to, for new subchannels to start with (flow.go).
	pathWindow atomic.Int64
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
	m.nudge = time.NewTimer(time.Hour)
	m.nudge.Stop()
	defer m.nudge.Stop()
	m.laterReconnect = time.NewTimer(time.Hour)
	m.laterReconnect.Stop()
	defer m.laterReconnect.Stop()
	go m.pumpMailbox(ctx)
	m.connectors.Add(1)
	go func() {
		defer m.connectors.Done()
		transit.WatchAddresses(ctx, m.raceEvents)
	}()
	for m.state != stateStopped {
		select {
		case <-ctx.Done():
			m.fail(ErrClosed)
		case f := <-m.requests:
			f()
		case ev := <-m.events:
			m.handle(ev)
		case ev := <-m.raceEvents:
			m.handleRace(ev)
		case <-ticker.C:
			m.keepalive()
		case <-m.nudge.C:
			m.nudgeDue = time.Time{}
			m.nudgePeer()
		case <-m.laterReconnect.C:
			// A reconnect held while not connected, or on another
			// connection, predates the one in use: the Leader, waiting
			// for our "reconnecting", connects in no generation.
			heldOnThisLink := m.link == m.reconnectHeldOnLink
			m.reconnectHeld, m.reconnectHeldOnLink = false, nil
			if m.state != stateConnected || heldOnThisLink {
				m.peerAsksReconnect()
			}
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
	if !m.post(ctx, versionsKnown{canDilate, peerHasFlow(version)}) {
		return
	}
	for {
		msg, err := m.mb.ReceiveDilation(ctx)
		if err != nil {
			m.log.Debug("mailbox gone; no more reconnection messages", "err", err)
			m.post(ctx, mailboxGone{err})
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
		m.gotVersions(ev.canDilate, ev.flow)
	case l1Received:
		m.gotL1(ev.data)
	case linkLost:
		if m.link != nil && ev.generation == m.generation {
			m.lostLink(ev.err)
		}
	case mailboxGone:
		m.mailboxErr = ev.err
		if m.state != stateConnected && m.state != stateWaiting && m.state != stateWanting {
			m.cannotReconnect()
		}
	}
}

// handleRace handles what a generation's race (its ID the generation), a
// probe (its ID probeID) or the address watcher reports.
func (m *manager) handleRace(ev transit.Event) {
	switch ev := ev.(type) {
	case transit.Selected[*link]:
		m.gotLink(ev.ID, ev.Result)
	case transit.AttemptFailed:
		if m.link == nil {
			m.attempts++
			m.lastFailure = ev.Err
			m.setStatus()
		}
	case transit.RelayWaiting:
		if m.leader && m.state == stateConnecting && ev.ID == m.generation {
			m.nudgeWithin(nudgeAfterRelayWait)
		}
	case transit.PathBack:
		if m.state == stateProbing && ev.ID == m.probeID {
			m.probed()
		}
	case transit.AddressesChanged:
		m.gotAddresses(ev.Addrs)
	}
}

func (m *manager) gotVersions(canDilate []string, flow bool) {
	if m.state != stateWaiting {
		return
	}
	m.mu.Lock()
	m.flow = flow && !m.cfg.NoFlowControl
	m.mu.Unlock()
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
		m.mu.Lock()
		m.nextSCID = 2
		if m.leader {
			m.nextSCID = 1
		}
		m.mu.Unlock()
		close(m.role)
		m.startGeneration()
	case "connection-hints":
		if m.state != stateConnecting || m.connector == nil {
			return
		}
		hints := transit.ParseHints(msg.Hints)
		m.notePeerHints(hints)
		if m.cfg.NoDirect {
			hints = slices.DeleteFunc(hints, func(h transit.Hint) bool { return !h.Relay })
		}
		m.connector.AddHints(hints)
	case "reconnect":
		if !m.leader {
			m.peerAsksReconnect()
		}
	case "reconnecting":
		if m.leader && m.state == stateFlushing {
			m.startGeneration()
		}
	default:
		m.log.Debug("ignoring unknown dilation message", "type", msg.Type)
	}
}

// peerAsksReconnect is the Follower given the Leader's "reconnect" (or one
// held back until minGenerationInterval after it last acted on one):
// each generation dials the relay and up to transit.MaxPeerHints addresses
// the peer chose, and answers through the mailbox, so a peer flooding
// reconnects gets one generation per interval, not one per message. The
// reconnects arriving meanwhile count as one: the Leader waits for one
// "reconnecting", however many it sent.
func (m *manager) peerAsksReconnect() {
	if m.state != stateConnected && m.state != stateConnecting && m.state != stateLonely {
		return
	}
	if wait := minGenerationInterval - time.Since(m.reconnectedAt); wait > 0 {
		if !m.reconnectHeld {
			m.reconnectHeld, m.reconnectHeldOnLink = true, m.link
			m.laterReconnect.Reset(wait)
		}
		return
	}
	m.reconnectedAt = time.Now()
	if m.state == stateConnected {
		m.state = stateAbandoning
		m.link.close()
		return
	}
	m.stopConnector()
	m.startProbe()
}

// startGeneration starts a connector and sends our hints.
func (m *manager) startGeneration() {
	m.generation++
	m.state = stateConnecting
	if m.leader {
		m.nudgeWithin(m.nudgeDelay(generationPatience))
	}
	c, hints := startConnector(m.generation, m.leader, m.key, m.side,
		m.relays, m.cfg.NoDirect, m.log, m.raceEvents)
	m.connector = c
	m.connectors.Add(1)
	go func() {
		defer m.connectors.Done()
		c.Wait()
	}()
	if len(hints) > 0 {
		m.sendL1(l1Message{Type: "connection-hints", Hints: transit.EncodeHints(hints)})
	}
	m.setStatus()
}

func (m *manager) stopConnector() {
	if m.connector != nil {
		m.connector.Stop()
		m.connector = nil
	}
}

func (m *manager) gotLink(generation int, l *link) {
	if generation != m.generation || m.state != stateConnecting {
		l.close()
		return
	}
	m.connector = nil
	m.link = l
	m.link.writeTimeout = linkWriteTimeoutIntervals * m.cfg.PingInterval
	keepSendQueueShort(m.link.conn)
	m.state = stateConnected
	m.outage = 0
	if !m.lostAt.IsZero() {
		m.outage = time.Since(m.lostAt)
		m.log.Info("reconnected", "after", m.outage.Round(time.Millisecond), "failed attempts", m.attempts, "via", m.link.description)
	}
	m.lostAt, m.attempts, m.lastFailure, m.nudges = time.Time{}, 0, nil, 0
	m.stopNudge()
	ctx, cancel := context.WithCancel(context.Background())
	m.stopLink = cancel
	q := newSendQueue(m.link, m.admitParked)
	q.refill = m.refill
	m.mu.Lock()
	m.outbox = q
	m.lastHeard = time.Now()
	m.stuckSince, m.pings, m.pingSent = time.Time{}, nil, nil
	// Everything not yet acknowledged goes first, in sequence order: the
	// first new byte waits behind all of it (see maxUnackedBytes).
	q.push(m.unacked...)
	if len(m.unacked) > 0 {
		m.log.Info("resending what the peer has not acknowledged", "records", len(m.unacked), "bytes", m.unackedBytes)
	}
	if m.flow {
		// WINDOWs sent on the lost connection may not have arrived.
		for _, sc := range m.subchannels {
			if limit := sc.receiveLimit(); limit > initialFlowWindow {
				q.pushWindow(sc.scid, limit)
			}
		}
	}
	if m.leader {
		m.sendPingLocked()
	}
	m.mu.Unlock()
	q.kick()
	m.linkDone.Add(2)
	go m.readLink(ctx, m.generation, m.link, q)
	go m.writeLink(ctx, q)
	select {
	case <-m.ready:
	default:
		close(m.ready)
	}
	m.setStatus()
}

// readLink handles each record the link delivers, as long as q is the
// connection in use, and reports the link's end.
func (m *manager) readLink(ctx context.Context, generation int, l *link, q *sendQueue) {
	defer m.linkDone.Done()
	for {
		if !m.gate.wait(l.closed) {
			m.post(ctx, linkLost{generation, net.ErrClosed})
			return
		}
		rec, buf, err := l.receive()
		if err != nil {
			if l.stalled.Load() {
				err = ErrLinkStalled
			}
			m.post(ctx, linkLost{generation, err})
			return
		}
		kept, err := m.gotRecord(q, rec, buf)
		if !kept {
			putBuffer(buf)
		}
		if err != nil {
			m.log.Info("refusing the peer", "err", err)
			l.close()
			m.post(ctx, failure{err})
			return
		}
	}
}

// writeLink flushes q whenever records wait that no writer flushes itself.
func (m *manager) writeLink(ctx context.Context, q *sendQueue) {
	defer m.linkDone.Done()
	for {
		select {
		case <-q.signal:
		case <-q.timer.C:
			q.timerFired()
		case <-ctx.Done():
			return
		}
		q.flush(false)
	}
}

// dropLink closes the connection in use. Once it returns, nothing reads
// the records its outbox held.
// exitFlushTimeout bounds flushOnExit.
const exitFlushTimeout = 100 * time.Millisecond

// flushOnExit sends what waits for a ride (a CLOSE, an ACK: see
// closeWrite), so that the peer sees our subchannels closed rather than
// the connection lost, for at most exitFlushTimeout: the link's close
// ends a write the peer does not take.
func (m *manager) flushOnExit() {
	m.mu.Lock()
	q := m.outbox
	m.mu.Unlock()
	if q == nil {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.flush(false)
	}()
	select {
	case <-done:
	case <-time.After(exitFlushTimeout):
	}
}

func (m *manager) dropLink() {
	if m.link == nil {
		return
	}
	m.stopLink()
	m.link.close()
	m.mu.Lock()
	q := m.outbox
	m.outbox = nil
	m.mu.Unlock()
	q.close()
	m.link = nil
}

func (m *manager) lostLink(err error) {
	m.log.Info("connection lost", "generation", m.generation, "err", err)
	m.dropLink()
	m.lostAt, m.attempts, m.lastFailure, m.outage = time.Now(), 0, nil, 0
	switch {
	case m.mailboxErr != nil:
		m.cannotReconnect()
		return
	case m.leader, m.state == stateAbandoning:
		m.startProbe()
	default:
		m.state = stateLonely
	}
	m.admitParked()
	m.setStatus()
}

// startProbe enters PROBING: it waits until the relay accepts a TCP
// connection before asking for a new generation (see probed), so that the
// peer's attempts start once the path is back. A side that may connect
// directly waits at most directProbePatience; with no relay at all, it
// does not wait.
func (m *manager) startProbe() {
	m.state = stateProbing
	m.probeID++
	relays := slices.Clone(m.relays)
	for _, h := range m.peerRelays {
		if !slices.Contains(relays, h) {
			relays = append(relays, h)
		}
	}
	if len(relays) == 0 {
		m.probed()
		return
	}
	patience := time.Duration(0)
	if !m.cfg.NoDirect && m.peerDirect {
		patience = directProbePatience
	}
	p := transit.StartProber(m.probeID, relays, patience, m.log, m.raceEvents)
	m.probe = p
	m.connectors.Add(1)
	go func() {
		defer m.connectors.Done()
		p.Wait()
	}()
	m.setStatus()
}

// probed leaves PROBING: the Leader asks for a new generation, the
// Follower agrees to the one the Leader asked for.
func (m *manager) probed() {
	m.stopProbe()
	if m.leader {
		m.sendL1(l1Message{Type: "reconnect"})
		m.state = stateFlushing
		m.setStatus()
		return
	}
	m.sendL1(l1Message{Type: "reconnecting"})
	m.startGeneration()
}

func (m *manager) stopProbe() {
	if m.probe != nil {
		m.probe.Stop()
		m.probe = nil
	}
}

// nudgeWithin makes the Leader ask for a new generation within d, unless
// connected by then (or asked to sooner).
func (m *manager) nudgeWithin(d time.Duration) {
	due := time.Now().Add(d)
	if !m.nudgeDue.IsZero() && m.nudgeDue.Before(due) {
		return
	}
	m.stopNudge()
	m.nudgeDue = due
	m.nudge.Reset(d)
}

func (m *manager) stopNudge() {
	m.nudgeDue = time.Time{}
	if !m.nudge.Stop() {
		select {
		case <-m.nudge.C:
		default:
		}
	}
}

// nudgeDelay is d doubled for each new generation asked for since the
// last connection, up to maxNudgeDelay.
func (m *manager) nudgeDelay(d time.Duration) time.Duration {
	for range min(m.nudges, 8) {
		d *= 2
	}
	return min(d, maxNudgeDelay)
}

// nudgePeer is the Leader giving up on a generation that has not
// connected: the peer may have stopped trying (the reference tries each
// hint once) or its hints may be stale. A new generation makes it try
// again.
func (m *manager) nudgePeer() {
	if !m.leader || m.state != stateConnecting || m.link != nil {
		return
	}
	m.nudges++
	m.log.Info("no connection yet; asking the peer for a new generation", "generation", m.generation, "failed attempts", m.attempts)
	m.stopConnector()
	m.sendL1(l1Message{Type: "reconnect"})
	m.state = stateFlushing
	m.setStatus()
}

// notePeerHints remembers the peer's relays (to probe them after a loss)
// and whether it offered direct connections.
func (m *manager) notePeerHints(hints []transit.Hint) {
	for _, h := range hints {
		if !h.Relay {
			m.peerDirect = true
			continue
		}
		if !slices.Contains(m.peerRelays, h) && len(m.peerRelays) < transit.MaxPeerHints {
			m.peerRelays = append(m.peerRelays, h)
		}
	}
}

// gotAddresses reacts to the machine's addresses changing (a new network):
// a connection from an address that is gone is dropped at once, and a
// race under way announces the new direct hints and retries every hint.
func (m *manager) gotAddresses(addrs []string) {
	m.log.Info("the machine's addresses changed", "addresses", addrs)
	if m.link != nil {
		if ip, ok := m.link.conn.LocalAddr().(*net.TCPAddr); ok && !slices.Contains(addrs, ip.IP.String()) {
			m.log.Info("dropping the connection: its local address is gone", "address", ip.IP.String())
			m.link.close()
		}
	}
	if m.connector != nil && m.state == stateConnecting {
		if hints := m.connector.DirectHints(); len(hints) > 0 {
			m.sendL1(l1Message{Type: "connection-hints", Hints: transit.EncodeHints(hints)})
		}
		m.connector.RetryNow()
	}
	if m.probe != nil {
		m.probe.RetryNow()
	}
}

// ErrCannotReconnect is a connection lost once the mailbox connection, through
// which the peers agree on a new one, has ended for good.
var ErrCannotReconnect = errors.New("dilation: connection lost, and the mailbox connection needed to reconnect has ended")

func (m *manager) cannotReconnect() {
	m.fail(fmt.Errorf("%w: %w", ErrCannotReconnect, m.mailboxErr))
}

func (m *manager) setStatus() {
	st := Status{Generation: m.generation, Leader: m.leader, Since: m.lostAt, Attempts: m.attempts,
		LastFailure: m.lastFailure, Outage: m.outage}
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
	case stateFlushing, stateLonely, stateAbandoning, stateProbing:
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
	m.stopProbe()
	m.flushOnExit()
	m.dropLink()
	m.stop()
	m.linkDone.Wait()
	m.connectors.Wait()
	err := m.stoppedErr()
	m.mu.Lock()
	m.stopped = err
	for _, sc := range m.subchannels {
		sc.fail(err)
	}
	for _, pending := range m.pendingOpens {
		for _, sc := range pending {
			sc.claimTimer.Stop()
			sc.fail(err)
		}
	}
	for _, p := range m.parked {
		putBuffer(p.rec.buf)
		p.reply <- err
	}
	drop := func(rec record) {
		if d, ok := rec.(dataRecord); ok {
			putBuffer(d.buf)
		}
	}
	for _, sc := range m.subchannels {
		m.sched.drain(&sc.out, drop)
	}
	for _, sc := range m.draining {
		m.sched.drain(&sc.out, drop)
	}
	clear(m.draining)
	for _, list := range [][]*stream{m.sched.newFlows, m.sched.oldFlows} {
		for _, st := range slices.Clone(list) {
			m.sched.drain(st, drop)
		}
	}
	// Nothing of the peer's is needed any more: free it all now, as the
	// Conn may be kept long after it stopped.
	for _, rec := range m.unacked {
		if d, ok := rec.(dataRecord); ok {
			putBuffer(d.buf)
		}
	}
	m.parked, m.unacked, m.unackedBytes, m.refusals = nil, nil, 0, nil
	clear(m.subchannels)
	clear(m.pendingOpens)
	clear(m.listeners)
	m.peerSubchannels, m.unclaimed = 0, 0
	m.mu.Unlock()
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
