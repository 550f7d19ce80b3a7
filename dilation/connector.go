package dilation

import (
	"context"
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

	mu        sync.Mutex
	won       bool
	pending   map[net.Conn]bool
	inbound   int // accepted connections still handshaking
	peerHints int // the peer's hints dialled so far
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
		pending: map[net.Conn]bool{},
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
	c.dial(relays, 0)
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
			c.attempt(conn, "direct "+conn.RemoteAddr().String()+" (inbound)", false, true)
		}
	}()
	var hints []hint
	for _, addr := range localAddresses() {
		hints = append(hints, hint{host: addr, port: port})
	}
	return hints, nil
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
	c.dial(direct, 0)
	delay := time.Duration(0)
	if len(direct) > 0 && !c.noListen {
		delay = relayDelay
	}
	c.dial(relays, delay)
}

func (c *connector) dial(hints []hint, delay time.Duration) {
	for _, h := range hints {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			if delay > 0 {
				select {
				case <-time.After(delay):
				case <-c.ctx.Done():
					return
				}
			}
			dialer := net.Dialer{Timeout: 15 * time.Second}
			conn, err := dialer.DialContext(c.ctx, "tcp", h.address())
			if err != nil {
				c.log.Debug("dial failed", "hint", h.String(), "err", err)
				return
			}
			relay := ""
			if h.relay {
				relay = relayHandshake(c.key, c.side)
			}
			c.attempt(conn, h.String(), relay != "", false)
		}()
	}
}

// attempt handshakes one connection in its own goroutine and offers it.
// An inbound one, admitted by admitInbound, has a shorter deadline.
func (c *connector) attempt(conn net.Conn, description string, relayed, inbound bool) {
	if !c.track(conn) {
		conn.Close()
		if inbound {
			c.inboundDone()
		}
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		relay := ""
		if relayed {
			relay = relayHandshake(c.key, c.side)
		}
		timeout := handshakeTimeout
		if inbound {
			timeout = inboundHandshakeTimeout
		}
		l, err := handshakeWithin(conn, c.leader, c.key, relay, timeout)
		if err == nil && !c.leader {
			err = l.awaitSelection()
		}
		if inbound {
			c.inboundDone()
		}
		if err != nil {
			c.log.Debug("connection attempt failed", "via", description, "err", err)
			c.untrack(conn)
			conn.Close()
			return
		}
		l.description, l.relayed = description, relayed
		c.offer(l)
	}()
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
func (c *connector) offer(l *link) {
	c.mu.Lock()
	if c.won || c.ctx.Err() != nil {
		c.mu.Unlock()
		l.close()
		return
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
			return
		}
	}
	c.log.Info("connected", "generation", c.generation, "via", l.description)
	if !c.emit(linkSelected{c.generation, l}) {
		l.close()
	}
	c.stopContext()
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
