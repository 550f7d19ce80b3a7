package transit

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// RaceConfig is what a race needs from its owner. The owner's handshake
// (Dilation's Noise and KCM, classic Transit's records) runs on every
// connection; the race keeps the first one Select confirms and closes the
// others.
type RaceConfig[R any] struct {
	// ID is copied into every event, so that the owner can tell a race it
	// no longer wants (Dilation passes its generation).
	ID int
	// Key and Side make the relay line (RelayHandshake).
	Key  []byte
	Side string
	// Relays are ours: advertised with the direct hints, and dialled at
	// once.
	Relays []Hint
	// NoListen neither listens nor advertises direct hints, and dials the
	// peer's relays without RelayDelay.
	NoListen bool
	Log      *slog.Logger // nil discards
	// Events receives AttemptFailed, RelayWaiting and Selected. The race
	// blocks on it until the owner reads or the race stops.
	Events chan<- Event

	// Handshake turns a connected conn into the owner's result, or fails
	// (the race then closes conn). It runs on one of the race's
	// goroutines, one per connection, and must return once conn is
	// closed: Stop closes every connection still handshaking.
	Handshake func(conn net.Conn, a Attempt) (R, error)
	// Select confirms the first result whose handshake succeeded (the
	// Leader's KCM, the sender's "go"); nil confirms every result. If it
	// fails, the result is discarded and the race goes on.
	Select func(R) error
	// Discard releases a result the race does not keep: one that lost,
	// failed Select, or arrived after Stop. Nil does nothing.
	Discard func(R)
}

// Attempt says what a connection handed to Handshake is.
type Attempt struct {
	// Via describes it for the owner's status and logs: the hint's
	// String, or "direct <remote address> (inbound)".
	Via string
	// Hint is the hint dialled (zero for an inbound connection).
	Hint Hint
	// Inbound is a connection accepted on our listening port: it is
	// anyone's, so its handshake should be bounded by
	// InboundHandshakeTimeout.
	Inbound bool
	// RelayLine, for a relay hint, is to be sent first, waiting for the
	// relay's "ok" (AwaitRelay); "" otherwise.
	RelayLine string
	// AtRelay posts RelayWaiting: pass it to AwaitRelay.
	AtRelay func()
}

// Race runs one connection race: it listens (advertising direct hints),
// dials the peer's hints and the relays, each again and again with
// backoff, hands every connection to the owner's Handshake, and posts the
// first one selected. Every goroutine it starts is its own: Stop ends
// them, Wait awaits them.
type Race[R any] struct {
	cfg         RaceConfig[R]
	log         *slog.Logger
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

// StartRace starts a race and returns the hints to send the peer: our
// direct addresses (unless NoListen) and our relays.
func StartRace[R any](cfg RaceConfig[R]) (*Race[R], []Hint) {
	ctx, cancel := context.WithCancel(context.Background())
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Race[R]{
		cfg: cfg, log: log, ctx: ctx, stopContext: cancel,
		pending: map[net.Conn]bool{}, kick: make(chan struct{}),
	}
	var own []Hint
	if !cfg.NoListen {
		if direct, err := r.listen(); err != nil {
			log.Warn("cannot listen for direct connections", "err", err)
		} else {
			own = append(own, direct...)
		}
	}
	own = append(own, cfg.Relays...)
	r.keepTrying(cfg.Relays, 0)
	return r, own
}

// listen accepts peer connections on an ephemeral port on every interface
// and returns a direct hint for each local IPv4 address, loopback only if
// it is the sole address (the reference's rule).
func (r *Race[R]) listen() ([]Hint, error) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		return nil, err
	}
	r.port = ln.Addr().(*net.TCPAddr).Port
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		<-r.ctx.Done()
		ln.Close()
	}()
	go func() {
		defer r.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			// Anyone can connect to the port: only a few connections may
			// handshake at once, briefly each.
			if !r.admitInbound() {
				r.log.Debug("refusing inbound connection: too many handshakes under way",
					"from", conn.RemoteAddr().String(), "limit", MaxInboundHandshakes)
				conn.Close()
				continue
			}
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				defer r.inboundDone()
				a := Attempt{Via: "direct " + conn.RemoteAddr().String() + " (inbound)", Inbound: true}
				if err := r.handshake(conn, a); err != nil {
					r.log.Debug("inbound connection attempt failed", "from", conn.RemoteAddr().String(), "err", err)
				}
			}()
		}
	}()
	return r.DirectHints(), nil
}

// DirectHints are our listening port on each of the machine's addresses
// (see localAddresses), or nil if we do not listen: after the addresses
// change, the owner announces them again.
func (r *Race[R]) DirectHints() []Hint {
	if r.port == 0 {
		return nil
	}
	var hints []Hint
	for _, addr := range localAddresses() {
		hints = append(hints, Hint{Host: addr, Port: r.port})
	}
	return hints
}

func (r *Race[R]) admitInbound() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inbound >= MaxInboundHandshakes {
		return false
	}
	r.inbound++
	return true
}

func (r *Race[R]) inboundDone() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inbound--
}

// localAddresses are the machine's IPv4 addresses worth advertising:
// neither loopback nor link-local, unless there is nothing else (then
// 127.0.0.1).
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

// AddHints dials the peer's hints, up to MaxPeerHints per race: direct
// ones at once, relays after RelayDelay if a direct attempt was made.
func (r *Race[R]) AddHints(hints []Hint) {
	r.mu.Lock()
	room := max(0, MaxPeerHints-r.peerHints)
	if len(hints) > room {
		r.log.Info("ignoring some of the peer's connection hints", "ignored", len(hints)-room, "limit", MaxPeerHints)
		hints = hints[:room]
	}
	r.peerHints += len(hints)
	r.mu.Unlock()
	var direct, relays []Hint
	for _, h := range hints {
		if h.Relay {
			relays = append(relays, h)
		} else {
			direct = append(direct, h)
		}
	}
	r.keepTrying(direct, 0)
	delay := time.Duration(0)
	if len(direct) > 0 && !r.cfg.NoListen {
		delay = RelayDelay
	}
	r.keepTrying(relays, delay)
}

// keepTrying connects to each hint, after delay, and tries again, with
// backoff, whenever an attempt fails, until the race has its connection
// or stops: one attempt in flight per hint.
func (r *Race[R]) keepTrying(hints []Hint, delay time.Duration) {
	for _, h := range hints {
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if delay > 0 && !r.sleep(delay, nil) {
				return
			}
			var b backoff
			for {
				err := r.try(h)
				if err == nil || r.over() {
					return
				}
				r.log.Debug("connection attempt failed", "via", h.String(), "err", err)
				failed := AttemptFailed{r.cfg.ID, &AttemptError{Via: h.String(), Relay: h.Relay, Err: err}}
				if !r.emit(failed) || !r.sleep(b.delay(), &b) {
					return
				}
			}
		}()
	}
}

// sleep waits d, or less if RetryNow is called (then resetting b, if not
// nil), and reports false if the race stopped meanwhile.
func (r *Race[R]) sleep(d time.Duration, b *backoff) bool {
	r.mu.Lock()
	kick := r.kick
	r.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-kick:
		if b != nil {
			b.reset()
		}
	case <-r.ctx.Done():
		return false
	}
	return true
}

// RetryNow ends every hint's wait for its next attempt: the machine's
// addresses changed, so a path may have appeared.
func (r *Race[R]) RetryNow() {
	r.mu.Lock()
	defer r.mu.Unlock()
	close(r.kick)
	r.kick = make(chan struct{})
}

// try makes one connection attempt to h: it returns nil once the
// connection was offered (selected or not), else why it failed.
func (r *Race[R]) try(h Hint) error {
	dialer := net.Dialer{Timeout: DialTimeout}
	conn, err := dialer.DialContext(r.ctx, "tcp", h.Address())
	if err != nil {
		return err
	}
	a := Attempt{Via: h.String(), Hint: h}
	if h.Relay {
		a.RelayLine = RelayHandshake(r.cfg.Key, r.cfg.Side)
	}
	return r.handshake(conn, a)
}

// ErrRaceOver is an attempt made after the race ended.
var ErrRaceOver = errors.New("transit: the connection race is over")

// handshake runs the owner's handshake on conn and offers the result.
func (r *Race[R]) handshake(conn net.Conn, a Attempt) error {
	if !r.track(conn) {
		conn.Close()
		return ErrRaceOver
	}
	a.AtRelay = func() { r.emit(RelayWaiting{r.cfg.ID}) }
	res, err := r.cfg.Handshake(conn, a)
	if err != nil {
		r.untrack(conn)
		conn.Close()
		return err
	}
	return r.offer(conn, res, a)
}

func (r *Race[R]) track(conn net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.won || r.ctx.Err() != nil {
		return false
	}
	r.pending[conn] = true
	return true
}

func (r *Race[R]) untrack(conn net.Conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pending, conn)
}

// over reports whether the race is won or abandoned.
func (r *Race[R]) over() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.won || r.ctx.Err() != nil
}

// offer selects res if it is the first viable connection, confirmed by
// Select. Every other connection is closed.
func (r *Race[R]) offer(conn net.Conn, res R, a Attempt) error {
	r.mu.Lock()
	if r.won || r.ctx.Err() != nil {
		r.mu.Unlock()
		r.discard(res)
		return nil
	}
	r.won = true
	delete(r.pending, conn)
	losers := r.pending
	r.pending = map[net.Conn]bool{}
	r.mu.Unlock()

	for conn := range losers {
		conn.Close()
	}
	if r.cfg.Select != nil {
		if err := r.cfg.Select(res); err != nil {
			r.log.Debug("selected connection failed", "err", err)
			r.discard(res)
			r.mu.Lock()
			r.won = false
			r.mu.Unlock()
			return err
		}
	}
	r.log.Info("connected", "race", r.cfg.ID, "via", a.Via)
	if !r.emit(Selected[R]{r.cfg.ID, res, a}) {
		r.discard(res)
	}
	r.stopContext()
	return nil
}

func (r *Race[R]) discard(res R) {
	if r.cfg.Discard != nil {
		r.cfg.Discard(res)
	}
}

func (r *Race[R]) emit(ev Event) bool { return post(r.ctx, r.cfg.Events, ev) }

// Stop abandons the race and closes every connection still pending.
func (r *Race[R]) Stop() {
	r.stopContext()
	r.mu.Lock()
	for conn := range r.pending {
		conn.Close()
	}
	r.pending = map[net.Conn]bool{}
	r.mu.Unlock()
}

// Wait blocks until every goroutine of the race has returned.
func (r *Race[R]) Wait() { r.wg.Wait() }
