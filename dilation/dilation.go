// Package dilation turns a wormhole into a durable, multiplexed, encrypted
// connection between the two peers: Magic Wormhole's Dilation protocol,
// byte-compatible with the Python reference (magic-wormhole 0.24, named
// subprotocols since 0.20).
//
// The layers, bottom up, each in its own file:
//
//	L1 messages.go    "please", hints, "reconnect" through the mailbox
//	   manager.go     the state machine, generations, reconnection
//	L2 l2.go          one TCP connection (direct or relay), Noise NNpsk0
//	L3 record.go      KCM, PING, PONG, OPEN, DATA, CLOSE, ACK
//	L4 l4.go          sequence numbers, acks, resending after reconnection, keepalive
//	   sched.go       the send scheduler: fair interleaving, numbering as records go out
//	   outbox.go      a connection's send queue, flushed by the writers
//	   flow.go        per-subchannel windows between gander peers (gander-flow-v1)
//	L5 l5.go          the subchannel table, OPEN and CLOSE, unclaimed opens
//	   subchannel.go  subchannels per named subprotocol, listeners
//
// Below L2, package transit finds the TCP connections: hints, the relay
// handshake, and the race of one generation's candidates (connector.go
// runs it with the L2 handshake; retry.go says when to start a new
// generation). A Conn reconnects by itself when its connection drops;
// subchannels carry on.
package dilation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/gander-pair/gander/transit"
)

// DefaultTransitRelay is the public relay the reference CLI uses.
const DefaultTransitRelay = transit.DefaultRelay

var (
	// ErrClosed is returned once the dilated connection has stopped;
	// errors.Is(err, net.ErrClosed) also holds for subchannel I/O.
	ErrClosed = fmt.Errorf("dilation: connection closed: %w", net.ErrClosed)
	// ErrPeerCannotDilate means the peer shares no Dilation version.
	ErrPeerCannotDilate = errors.New("dilation: the peer cannot dilate (no common version)")
)

// Mailbox is what Dilation needs from a wormhole; *wormhole.Wormhole
// provides it. The wormhole must be created with VersionFields() as its
// version extras on both sides.
type Mailbox interface {
	PeerVersion(ctx context.Context) (map[string]json.RawMessage, error)
	DeriveKey(purpose string, length int) ([]byte, error)
	SendDilation(ctx context.Context, msg []byte) error
	ReceiveDilation(ctx context.Context) ([]byte, error)
}

// Config tunes a dilated connection. The zero value uses no relay.
type Config struct {
	// TransitRelay is "tcp:HOST:PORT"; empty means none (both sides must
	// then reach each other directly, or the peer must offer a relay).
	TransitRelay string
	// NoDirect neither listens nor dials direct hints: relay only, for
	// networks where direct connections must not be attempted.
	NoDirect bool
	// PingInterval is the Leader's keepalive; a connection silent for two
	// intervals is replaced (the Follower gives up on one silent for
	// three). Zero means the reference's 30 s.
	PingInterval time.Duration
	// ExpectedSubprotocols, if not nil, lists the subprotocols the peer
	// may open; others are refused with CLOSE. With nil, an OPEN for a
	// subprotocol nobody listens for waits for a listener, within the
	// bounds of limits.go (a few seconds, a little data), and is then
	// refused the same way.
	ExpectedSubprotocols []string
	// Side is this side's Dilation id, 16 hex digits; empty picks a random
	// one. The larger side leads, so tests set it to choose the roles.
	Side string
	// NoFlowControl keeps to the reference's flow control even toward
	// another gander (which otherwise gets per-subchannel windows, see
	// flow.go); for comparisons and tests.
	NoFlowControl bool
	Logger        *slog.Logger
}

// State is the connection's condition, for display.
type State int

const (
	Waiting      State = iota // for the peer to agree to dilate
	Connecting                // first connection attempts
	Connected                 // a connection is in use
	Reconnecting              // the connection dropped; a new one is sought
	Stopped
)

func (s State) String() string {
	return [...]string{"waiting for peer", "connecting", "connected", "reconnecting", "stopped"}[s]
}

// Status describes the connection at one moment.
type Status struct {
	State      State
	Generation int    // how many connection races have started
	Leader     bool   // this side leads (pings, decides to reconnect)
	Via        string // the connection in use, e.g. "direct 10.0.0.2:4444"
	Relayed    bool

	// While Reconnecting: when the connection was lost, how many
	// connection attempts have failed since, and why the latest failed
	// (nil before the first failure).
	Since       time.Time
	Attempts    int
	LastFailure error
	// Once Connected again after a loss: how long the connection was
	// down (zero for the first connection).
	Outage time.Duration

	Err error // why it stopped: gander never gives up on its own, so this is Close, or what made reconnecting impossible
}

// Conn is a dilated wormhole.
type Conn struct{ m *manager }

// Start begins dilating: it waits for the peer's version in the background,
// then negotiates and connects. Close it when done.
func Start(mb Mailbox, cfg Config) (*Conn, error) {
	if cfg.PingInterval == 0 {
		cfg.PingInterval = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &manager{
		cfg:          cfg,
		mb:           mb,
		events:       make(chan managerEvent),
		raceEvents:   make(chan transit.Event),
		requests:     make(chan func()),
		gate:         newFlowGate(),
		ready:        make(chan struct{}),
		role:         make(chan struct{}),
		done:         make(chan struct{}),
		updates:      make(chan Status, 1),
		side:         cfg.Side,
		highestSeen:  -1,
		subchannels:  map[uint32]*Subchannel{},
		draining:     map[uint32]*Subchannel{},
		listeners:    map[string]*Listener{},
		pendingOpens: map[string][]*Subchannel{},
	}
	if m.side == "" {
		m.side = newSide()
	}
	if !validSide(m.side) {
		return nil, fmt.Errorf("dilation: side %q is not 16 lowercase hex digits", m.side)
	}
	m.log = log.With("sub", "dilation", "side", m.side)
	if cfg.TransitRelay != "" {
		relay, err := transit.ParseRelayLocation(cfg.TransitRelay)
		if err != nil {
			return nil, err
		}
		m.relays = []transit.Hint{relay}
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	go m.run(ctx)
	return &Conn{m}, nil
}

// Dilate starts dilating and waits for the first connection.
func Dilate(ctx context.Context, mb Mailbox, cfg Config) (*Conn, error) {
	c, err := Start(mb, cfg)
	if err != nil {
		return nil, err
	}
	if err := c.WaitConnected(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// WaitConnected waits until the first connection is up.
func (c *Conn) WaitConnected(ctx context.Context) error {
	select {
	case <-c.m.ready:
		return nil
	case <-c.m.done:
		return c.m.stoppedErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Open opens a subchannel for subprotocol. It may be written to at once;
// the peer sees it when it listens for that subprotocol.
func (c *Conn) Open(ctx context.Context, subprotocol string) (*Subchannel, error) {
	if subprotocol == "" {
		return nil, errors.New("dilation: a subprotocol name is required")
	}
	select {
	case <-c.m.role:
	case <-c.m.done:
		return nil, c.m.stoppedErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	m := c.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped != nil {
		return nil, m.stopped
	}
	sc := newSubchannel(m, m.nextSCID, subprotocol)
	m.nextSCID += 2
	m.subchannels[sc.scid] = sc
	m.sched.enqueue(&sc.out, openRecord{scid: sc.scid, subprotocol: subprotocol})
	// The OPEN rides with the first Write, or goes before the first Read
	// waits, or after flushDelay.
	sc.openPending.Store(true)
	m.outbox.soon()
	return sc, nil
}

// Listen accepts the subchannels the peer opens for subprotocol, including
// any it opened before Listen was called.
func (c *Conn) Listen(subprotocol string) (*Listener, error) {
	m := c.m
	l := &Listener{m: m, subprotocol: subprotocol, signal: make(chan struct{}, 1), closed: make(chan struct{})}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped != nil {
		return nil, m.stopped
	}
	if m.listeners[subprotocol] != nil {
		return nil, errors.New("dilation: already listening for " + subprotocol)
	}
	m.listeners[subprotocol] = l
	for _, sc := range m.pendingOpens[subprotocol] {
		m.claimLocked(sc, l)
	}
	delete(m.pendingOpens, subprotocol)
	return l, nil
}

// Status is the connection's current status.
func (c *Conn) Status() Status {
	c.m.statusMu.Lock()
	defer c.m.statusMu.Unlock()
	return c.m.status
}

// StatusUpdates delivers the latest status after each change; a slow
// reader sees only the most recent one.
func (c *Conn) StatusUpdates() <-chan Status { return c.m.updates }

// Done is closed once the connection has stopped.
func (c *Conn) Done() <-chan struct{} { return c.m.done }

// Close stops the connection: every subchannel fails with ErrClosed.
func (c *Conn) Close() error {
	c.m.stop()
	<-c.m.done
	return nil
}

// validSide checks the form the transit relay requires (its regex is
// \w{16}) and that the reference generates.
func validSide(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
