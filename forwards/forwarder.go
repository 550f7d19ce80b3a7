// Package forwards forwards TCP ports both ways over a dilated wormhole,
// like ssh -L and -R, speaking fowl's peer protocol (fowl ≥ 25.7, checked
// against 26.8) so that a gander user can pair with a fowl user.
//
// fowl's vocabulary, used here too: a service has a unique name. The side
// that runs the service's daemon *offers* it (fowl's --remote, "fledge")
// and asks the peer to listen for it; the side that lets the peer make it
// listen *accepts* it (fowl's --local, "roost"). Every connection to that
// listener becomes a subchannel to the offering side, which connects to
// the daemon. Nothing is listened on or connected to unless the policy
// (policy.go) allows it.
//
// The flow, for a service "web" that A offers and B accepts:
//
//  1. A's Offer opens a fowl-commands subchannel and asks B to listen for
//     "web" (offer.go). The subchannel stays open: closing it withdraws
//     the offer.
//  2. B's forwarder serves that subchannel (serveCommands, listen.go):
//     B's Policy decides, and B binds a local listener and answers.
//  3. Each connection to B's listener becomes a fowl subchannel to A
//     (forwardOut, conn.go); A's forwarder checks its Policy, dials the
//     daemon (serveForward) and the two are spliced until both ends
//     close.
//
// Every step is reported as an Event (events.go). The peer is trusted
// with nothing the local user did not allow, and whatever it can make us
// hold is bounded (limits.go). The wire format is in protocol.go.
package forwards

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gander-pair/gander/dilation"
)

// Config configures a Forwarder.
type Config struct {
	Policy *Policy
	// OnEvent receives events from the forwarder's goroutines; it must
	// not block for long. Nil drops them.
	OnEvent func(Event)
	Logger  *slog.Logger
	// PeerIsGander turns off the workarounds for fowl's races.
	PeerIsGander bool
	// limits overrides defaultLimits (tests).
	limits *limits
}

// Forwarder runs fowl's protocol over a dilated connection, both ways:
// it serves the subchannels the peer opens (its listen requests and its
// forwarded connections) and makes our own (Offer, and the connections to
// the listeners it made us open). It owns every goroutine, listener,
// subchannel and socket it starts; Close ends them all.
type Forwarder struct {
	conn   *dilation.Conn
	policy *Policy
	emit   func(Event)
	log    *slog.Logger
	// fowlPeer: work around fowl's races (see fowlSettle, fowlStartSettle,
	// offerRetryWindow).
	fowlPeer bool
	// settled is when a fowl peer has surely seen the link up (fowlStartSettle).
	settled  time.Time
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	nextID   atomic.Int64
	refusals atomic.Int64 // of the peer's requests, for limits.refusalsReported
	// refusalsByPeer are the peer's refusals of our connections, for
	// limits.refusalsReported too.
	refusalsByPeer atomic.Int64

	limits limits
	// Semaphores of the peer's pending handshakes, open command channels
	// and open connections to our daemons, and of local clients' open
	// connections to the peer's services (a token per one held).
	pending, commandChannels, peerConnections, localConnections chan struct{}

	mu sync.Mutex
	// services are what Stats reports, by name. What the peer may ask
	// for is the Policy's to decide, never these.
	services map[string]*serviceCounters
	closers  map[io.Closer]bool // listeners, subchannels and sockets to close on Close
	open     map[int64]*connection
	// perService are what Remove closes for our offers: the request
	// subchannel that keeps an offer alive.
	perService map[string][]io.Closer
	// listeners are the peer's services we listen for, or are deciding
	// about, by name: one each.
	listeners map[string]*peerListener
	// reported are the bounds the user was told the peer reached.
	reported map[string]bool
}

// Start listens for the peer's fowl subchannels on conn: fowl-commands,
// its requests that we listen (listen.go), and fowl, its connections to
// our daemons (conn.go).
func Start(conn *dilation.Conn, cfg Config) (*Forwarder, error) {
	if cfg.Policy == nil {
		cfg.Policy = NewPolicy(nil)
	}
	if cfg.OnEvent == nil {
		cfg.OnEvent = func(Event) {}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	lim := defaultLimits
	if cfg.limits != nil {
		lim = *cfg.limits
	}
	ctx, cancel := context.WithCancel(context.Background())
	var settled time.Time
	if !cfg.PeerIsGander {
		settled = time.Now().Add(lim.startSettle)
	}
	f := &Forwarder{
		settled:          settled,
		conn:             conn,
		policy:           cfg.Policy,
		emit:             cfg.OnEvent,
		log:              cfg.Logger.With("sub", "forwards"),
		fowlPeer:         !cfg.PeerIsGander,
		ctx:              ctx,
		cancel:           cancel,
		limits:           lim,
		pending:          make(chan struct{}, lim.pendingHandshakes),
		commandChannels:  make(chan struct{}, lim.commandChannels),
		peerConnections:  make(chan struct{}, lim.connections),
		localConnections: make(chan struct{}, lim.localConnections),
		services:         map[string]*serviceCounters{},
		closers:          map[io.Closer]bool{},
		open:             map[int64]*connection{},
		perService:       map[string][]io.Closer{},
		listeners:        map[string]*peerListener{},
		reported:         map[string]bool{},
	}
	commands, err := conn.Listen(commandsSubprotocol)
	if err != nil {
		cancel()
		return nil, err
	}
	forwards, err := conn.Listen(forwardSubprotocol)
	if err != nil {
		commands.Close()
		cancel()
		return nil, err
	}
	f.serveSubchannels(commands, subchannelHandler{
		admit: func() (func(), error) {
			return take(f.commandChannels, &LimitError{What: "open command channels", Limit: lim.commandChannels})
		},
		refusal: func(reason string) any {
			return listenResponse{Kind: kindListenerResponse, Listening: false, Reason: reason}
		},
		serve: f.serveCommands,
	})
	f.serveSubchannels(forwards, subchannelHandler{
		refusal: func(reason string) any { return forwardReply{Connected: false, Reason: reason} },
		serve:   f.serveForward,
	})
	return f, nil
}

// waitSettled waits, with a fowl peer, until fowlStartSettle has passed
// since the link came up: fowld reports peer-connected only a few turns
// of its reactor after its link is up, and a request or answer of ours
// that came sooner would make it print listening or awaiting-connect
// before peer-connected, which no fowld peer does (issue 14, item 18).
func (f *Forwarder) waitSettled(ctx context.Context) error {
	wait := time.Until(f.settled)
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-f.ctx.Done():
		return net.ErrClosed
	}
}

// Policy is the forwarder's policy, to add services at run time.
func (f *Forwarder) Policy() *Policy { return f.policy }

// Close stops every listener and forwarded connection.
func (f *Forwarder) Close() error {
	f.cancel()
	f.mu.Lock()
	for c := range f.closers {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
	return nil
}

// Remove stops a service in both directions: the peer may no longer ask
// for it, our listener for it closes, and an offer of ours is withdrawn
// (closing its request subchannel makes the peer stop listening, as in
// fowl). Connections already open carry on, as with ssh's cancel-forward.
func (f *Forwarder) Remove(name string) {
	f.policy.Remove(name)
	f.mu.Lock()
	closers := f.perService[name]
	delete(f.perService, name)
	delete(f.services, name)
	if l := f.listeners[name]; l != nil {
		closers = append(closers, l)
		// Closing the command channel that asked tells the peer we
		// stopped listening (a gander peer shows it; fowl ignores it),
		// unless it asked for other services on it too.
		if !f.sharesOwnerLocked(l) {
			closers = append(closers, l.owner)
		}
	}
	f.mu.Unlock()
	for _, c := range closers {
		c.Close()
	}
	f.emit(Removed{Service: name})
}

// sharesOwnerLocked says whether another of our listeners was asked for
// on l's command channel.
func (f *Forwarder) sharesOwnerLocked(l *peerListener) bool {
	for _, o := range f.listeners {
		if o != l && o.owner == l.owner {
			return true
		}
	}
	return false
}

// closeWithService makes Remove(name) close c.
func (f *Forwarder) closeWithService(name string, c io.Closer) {
	f.mu.Lock()
	f.perService[name] = append(f.perService[name], c)
	f.mu.Unlock()
}

// track registers c to be closed by Close; the returned func forgets it.
func (f *Forwarder) track(c io.Closer) (untrack func(), ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx.Err() != nil {
		c.Close()
		return nil, false
	}
	f.closers[c] = true
	return func() {
		f.mu.Lock()
		delete(f.closers, c)
		f.mu.Unlock()
	}, true
}

// subchannelHandler is how the forwarder serves one subprotocol's
// subchannels, which the peer opens.
type subchannelHandler struct {
	// admit, if set, takes what a subchannel holds while it is served, or
	// refuses it; release gives it back.
	admit func() (release func(), err error)
	// refusal is the frame that tells the peer why its subchannel was
	// refused: the reply its first frame waits for.
	refusal func(reason string) any
	// serve handles the subchannel once its first frame came; r holds
	// what followed it.
	serve func(sc *dilation.Subchannel, r *bufio.Reader, first []byte)
}

// serveSubchannels accepts the peer's subchannels on l and serves each on
// a goroutine of its own, within the bounds: the subchannels waiting for
// their first frame, and h.admit's.
func (f *Forwarder) serveSubchannels(l *dilation.Listener, h subchannelHandler) {
	f.track(l)
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			sc, err := l.Accept(f.ctx)
			if err != nil {
				return
			}
			release, err := func() {}, error(nil)
			if h.admit != nil {
				release, err = h.admit()
			}
			var handshakeDone func()
			if err == nil {
				if handshakeDone, err = take(f.pending, &LimitError{What: "subchannels waiting for their first message", Limit: f.limits.pendingHandshakes}); err != nil {
					release()
				}
			}
			if err != nil {
				f.limitReached(err)
				f.refuse(sc, h.refusal(err.Error()))
				continue
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer release()
				f.handshake(sc, h, handshakeDone)
			}()
		}
	}()
}

// take takes a token from sem, or returns err if none is left.
func take(sem chan struct{}, err error) (release func(), _ error) {
	select {
	case sem <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-sem }) }, nil
	default:
		return nil, err
	}
}

// room for it within refusalWriteTimeout only sees the close.
func (f *Forwarder) refuse(sc *dilation.Subchannel, refusal any) {
	t := time.AfterFunc(refusalWriteTimeout, func() { sc.Close() })
	writeFrame(sc, refusal)
	t.Stop()
	sc.Close()
}

// handshake reads the peer's first frame on sc, for at most the
// handshake timeout, calls done and serves the subchannel.
func (f *Forwarder) handshake(sc *dilation.Subchannel, h subchannelHandler, done func()) {
	untrack, ok := f.track(sc)
	if !ok {
		done()
		return
	}
	defer untrack()
	timeout := f.limits.handshakeTimeout
	timer := time.AfterFunc(timeout, func() {
		f.refuse(sc, h.refusal(fmt.Sprintf("No request within %v", timeout)))
	})
	r := bufio.NewReader(sc)
	first, err := readFrame(r)
	late := !timer.Stop()
	done()
	switch {
	case late:
		f.limitReached(handshakeTimeoutError(timeout))
		sc.Close()
	case err != nil:
		if f.ctx.Err() == nil {
			f.reportOnce("bad handshake", fmt.Errorf("%s handshake: %w", sc.Subprotocol(), err))
		}
		sc.Close()
	default:
		h.serve(sc, r, first)
	}
}
