package dilation

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// relayDelay holds relay connections back while direct ones have a chance,
// as the reference's Connector.RELAY_DELAY does.
const relayDelay = 2 * time.Second

// connector runs one generation's race: it listens (advertising direct
// hints), dials the peer's hints and the relays, handshakes every
// connection, and reports the first one selected. Everything else it
// opened is closed when it stops.
type connector struct {
	generation  int
	leader      bool
	key         []byte
	side        string
	noListen    bool
	log         *slog.Logger
	events      chan<- managerEvent
	ctx         context.Context
	stopContext context.CancelFunc

	port int // where we listen for direct connections; 0 if we do not

	mu        sync.Mutex
	won       bool
	pending   map[net.Conn]bool
	inbound   int           // accepted connections still handshaking
	peerHints int           // the peer's hints dialled so far
	kick      chan struct{} // closed (and replaced) to retry every hint at once
	wg        sync.WaitGroup
}

// linkSelected is the connector's result, tagged with its generation so
// that the manager can ignore a result it no longer wants.
type linkSelected struct {
	generation int
	link       *link
}

// startConnector starts a generation and returns the hints to send the
// peer: our direct addresses (unless noListen) and our relays.
func startConnector(parent context.Context, generation int, leader bool, key []byte, side string,
	relays []hint, noListen bool, log *slog.Logger, events chan<- managerEvent) (*connector, []hint) {
	ctx, cancel := context.WithCancel(parent)
	c := &connector{
		generation: generation, leader: leader, key: key, side: side, noListen: noListen,
		log: log, events: events, ctx: ctx, stopContext: cancel,
		pending: map[net.Conn]bool{}, kick: make(chan struct{}),
	}
	var own []hint
	if !noListen {
		if direct, err := c.listen(); err != nil {
			log.Warn("cannot listen for direct connections", "err", err)
		} else {
			own = append(own, direct...)
		}
	}
	own = append(own, relays...)
	c.keepTrying(relays, 0)
	return c, own
}

// listen accepts peer connections on an ephemeral port on every interface
// and returns a direct hint for each local IPv4 address, loopback only if
// it is the sole address (the reference's rule).
func (c *connector) listen() ([]hint, error) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	c.port = port
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		<-c.ctx.Done()
		ln.Close()
	}()
	go func() {
		defer c.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			// Anyone can connect to the port: only a few connections may
			// handshake at once, briefly each.
			if !c.admitInbound() {
				c.log.Debug("refusing inbound connection: too many handshakes under way",
					"from", conn.RemoteAddr().String(), "limit", maxInboundHandshakes)
				conn.Close()
				continue
			}
			c.wg.Add(1)
			go func() {
				defer c.wg.Done()
				defer c.inboundDone()
				err := c.handshake(conn, "direct "+conn.RemoteAddr().String()+" (inbound)", "", true)
				if err != nil {
					c.log.Debug("inbound connection attempt failed", "from", conn.RemoteAddr().String(), "err", err)
				}
			}()
		}
	}()
	return c.directHints(), nil
}

// directHints are our listening port on each of the machine's addresses
// (see localAddresses), or nil if we do not listen.
func (c *connector) directHints() []hint {
	if c.port == 0 {
		return nil
	}
	var hints []hint
	for _, addr := range localAddresses() {
		hints = append(hints, hint{host: addr, port: c.port})
	}
	return hints
}

func (c *connector) admitInbound() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inbound >= maxInboundHandshakes {
		return false
	}
	c.inbound++
	return true
}

func localAddresses() []string {
	addrs, _ := net.InterfaceAddrs()
	var out []string
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok || ipnet.IP.To4() == nil || ipnet.IP.IsLoopback() || ipnet.IP.IsLinkLocalUnicast() {
			continue
		}
		out = append(out, ipnet.IP.String())
	}
	if len(out) == 0 {
		out = []string{"127.0.0.1"}
	}
	return out
}

// addHints dials the peer's hints: direct ones at once, relays after
// relayDelay if a direct attempt was made.
func (c *connector) addHints(hints []hint) {
	c.mu.Lock()
	room := max(0, maxPeerHints-c.peerHints)
	if len(hints) > room {
		c.log.Info("ignoring some of the peer's connection hints", "ignored", len(hints)-room, "limit", maxPeerHints)
		hints = hints[:room]
	}
	c.peerHints += len(hints)
	c.mu.Unlock()
	var direct, relays []hint
	for _, h := range hints {
		if h.relay {
			relays = append(relays, h)
		} else {
			direct = append(direct, h)
		}
	}
	c.keepTrying(direct, 0)
	delay := time.Duration(0)
	if len(direct) > 0 && !c.noListen {
		delay = relayDelay
	}
	c.keepTrying(relays, delay)
}

// keepTrying connects to each hint, after delay, and tries again, with
// backoff, whenever an attempt fails, until the generation has its
// connection or stops: one attempt in flight per hint.
func (c *connector) keepTrying(hints []hint, delay time.Duration) {
	for _, h := range hints {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			if delay > 0 && !c.sleep(delay, nil) {
				return
			}
			var b backoff
			for {
				err := c.try(h)
				if err == nil || c.over() {
					return
				}
				c.log.Debug("connection attempt failed", "via", h.String(), "err", err)
				failed := attemptFailed{&AttemptError{Via: h.String(), Relay: h.relay, Err: err}}
				if !c.emit(failed) || !c.sleep(b.delay(), &b) {
					return
				}
			}
		}()
	}
}

// sleep waits d, or less if retryNow is called (then resetting b, if not
// nil), and reports false if the connector stopped meanwhile.
func (c *connector) sleep(d time.Duration, b *backoff) bool {
	c.mu.Lock()
	kick := c.kick
	c.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-kick:
		if b != nil {
			b.reset()
		}
	case <-c.ctx.Done():
		return false
	}
	return true
}

// retryNow ends every hint's wait for its next attempt: the machine's
// addresses changed, so a path may have appeared.
func (c *connector) retryNow() {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.kick)
	c.kick = make(chan struct{})
}

// try makes one connection attempt to h: it returns nil once the
// connection was offered (selected or not), else why it failed.
func (c *connector) try(h hint) error {
	dialer := net.Dialer{Timeout: dialTimeout}
	conn, err := dialer.DialContext(c.ctx, "tcp", h.address())
	if err != nil {
		return err
	}
	relay := ""
	if h.relay {
		relay = relayHandshake(c.key, c.side)
	}
	return c.handshake(conn, h.String(), relay, false)
}

// errConnectorStopped is an attempt made after the race ended.
var errConnectorStopped = errors.New("dilation: the connection race is over")

// handshake handshakes conn and offers it if viable. An inbound one,
// admitted by admitInbound, has a shorter deadline.
func (c *connector) handshake(conn net.Conn, description, relay string, inbound bool) error {
	if !c.track(conn) {
		conn.Close()
		return errConnectorStopped
	}
	timeout := handshakeTimeout
	if inbound {
		timeout = inboundHandshakeTimeout
	}
	atRelay := func() { c.emit(relayWaiting{c.generation}) }
	l, err := handshakeVia(conn, c.leader, c.key, relay, atRelay, timeout)
	if err == nil && !c.leader {
		err = l.awaitSelection()
	}
	if err != nil {
		c.untrack(conn)
		conn.Close()
		return err
	}
	l.description, l.relayed = description, relay != ""
	return c.offer(l)
}

func (c *connector) track(conn net.Conn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.won || c.ctx.Err() != nil {
		return false
	}
	c.pending[conn] = true
	return true
}

// over reports whether the race is won or abandoned.
func (c *connector) over() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.won || c.ctx.Err() != nil
}

func (c *connector) inboundDone() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inbound--
}

func (c *connector) untrack(conn net.Conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.pending, conn)
}

// offer selects l if it is the first viable connection; the Leader then
// confirms with its KCM. Every other connection is closed.
func (c *connector) offer(l *link) error {
	c.mu.Lock()
	if c.won || c.ctx.Err() != nil {
		c.mu.Unlock()
		l.close()
		return nil
	}
	c.won = true
	delete(c.pending, l.conn)
	losers := c.pending
	c.pending = map[net.Conn]bool{}
	c.mu.Unlock()

	for conn := range losers {
		conn.Close()
	}
	if c.leader {
		if err := l.writeRecord(kcmRecord{}); err != nil {
			c.log.Debug("selected connection failed", "err", err)
			l.close()
			c.mu.Lock()
			c.won = false
			c.mu.Unlock()
			return err
		}
	}
	c.log.Info("connected", "generation", c.generation, "via", l.description)
	if !c.emit(linkSelected{c.generation, l}) {
		l.close()
	}
	c.stopContext()
	return nil
}

func (c *connector) emit(ev managerEvent) bool {
	select {
	case c.events <- ev:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// stop abandons the race and closes every connection still pending.
func (c *connector) stop() {
	c.stopContext()
	c.mu.Lock()
	for conn := range c.pending {
		conn.Close()
	}
	c.pending = map[net.Conn]bool{}
	c.mu.Unlock()
}

// wait blocks until every goroutine of the connector has returned.
func (c *connector) wait() { c.wg.Wait() }
