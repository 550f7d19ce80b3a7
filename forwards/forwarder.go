package forwards

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gander-pair/gander/dilation"
)

const (
	dialTimeout = 10 * time.Second
	// fowl records a service a reactor turn after the reply that creates
	// it, and refuses connections that arrive sooner; new listeners leave
	// connections in the accept backlog for this long first.
	fowlSettle = 250 * time.Millisecond
	// fowl registers its own --local services only once it has seen the
	// peer, so an early request is refused with "No service permitted";
	// Offer retries that refusal for this long.
	offerRetryWindow = 5 * time.Second
	offerRetryDelay  = 300 * time.Millisecond
)

// Event reports what the forwarder did, for the interface and --json.
type Event interface{ isEvent() }

type (
	// Listening: we listen for the peer's service at Addr.
	Listening struct{ Service, Addr string }
	// AwaitingConnect: the peer listens for our service; connections will
	// be forwarded to our daemon at Addr.
	AwaitingConnect struct{ Service, Addr string }
	// Refused: a request was refused, by us (ByPeer false) or the peer.
	Refused struct {
		Service, Reason string
		ByPeer          bool
	}
	// ConnectionOpened: a forwarded connection started. Incoming means the
	// peer opened it (to our daemon).
	ConnectionOpened struct {
		ID       int64
		Service  string
		Incoming bool
	}
	// ConnectionClosed: it ended; Err is nil after a normal close.
	// BytesIn came from the peer, BytesOut went to it.
	ConnectionClosed struct {
		ID                int64
		Service           string
		Incoming          bool
		Err               error
		BytesIn, BytesOut int64
	}
	// Problem is anything else that went wrong without ending the session.
	Problem struct{ Err error }
	// Removed: the service was removed locally (Forwarder.Remove).
	Removed struct{ Service string }
)

func (Listening) isEvent()        {}
func (AwaitingConnect) isEvent()  {}
func (Refused) isEvent()          {}
func (ConnectionOpened) isEvent() {}
func (ConnectionClosed) isEvent() {}
func (Problem) isEvent()          {}
func (Removed) isEvent()          {}

// ServiceStats are one service's counters.
type ServiceStats struct {
	Service string
	// Offered is true for our services (--remote), false for the peer's
	// that we listen for (--local).
	Offered           bool
	Addr              string
	Open, Total       int64
	BytesIn, BytesOut int64 // in: from the peer; out: to the peer
}

// ConnectionStats are one open connection's counters.
type ConnectionStats struct {
	ID       int64
	Service  string
	Incoming bool // opened by the peer, to our daemon
	Since    time.Time
	// in: from the peer; out: to the peer
	BytesIn, BytesOut int64
}

type serviceCounters struct {
	offered           bool
	addr              string
	open, total       atomic.Int64
	bytesIn, bytesOut atomic.Int64
}

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

// Forwarder runs fowl's protocol over a dilated connection.
type Forwarder struct {
	conn   *dilation.Conn
	policy *Policy
	emit   func(Event)
	log    *slog.Logger
	// fowlPeer: work around fowl's races (see fowlSettle, offerRetryWindow).
	fowlPeer bool
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

	mu       sync.Mutex
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

// Start listens for the peer's fowl subchannels on conn.
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
	f := &Forwarder{
		conn: conn, policy: cfg.Policy, emit: cfg.OnEvent, log: cfg.Logger.With("sub", "forwards"),
		fowlPeer: !cfg.PeerIsGander,
		ctx:      ctx, cancel: cancel,
		limits:           lim,
		pending:          make(chan struct{}, lim.pendingHandshakes),
		commandChannels:  make(chan struct{}, lim.commandChannels),
		peerConnections:  make(chan struct{}, lim.connections),
		localConnections: make(chan struct{}, lim.localConnections),
		services:         map[string]*serviceCounters{}, closers: map[io.Closer]bool{},
		open:       map[int64]*connection{},
		perService: map[string][]io.Closer{},
		listeners:  map[string]*peerListener{},
		reported:   map[string]bool{},
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
	}
	f.mu.Unlock()
	for _, c := range closers {
		c.Close()
	}
	f.emit(Removed{Service: name})
}

// closeWithService makes Remove(name) close c.
func (f *Forwarder) closeWithService(name string, c io.Closer) {
	f.mu.Lock()
	f.perService[name] = append(f.perService[name], c)
	f.mu.Unlock()
}

// Stats returns every service's counters.
func (f *Forwarder) Stats() []ServiceStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ServiceStats
	for name, c := range f.services {
		out = append(out, ServiceStats{
			Service: name, Offered: c.offered, Addr: c.addr,
			Open: c.open.Load(), Total: c.total.Load(),
			BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(),
		})
	}
	return out
}

// Connections returns the open connections' counters, oldest first.
func (f *Forwarder) Connections() []ConnectionStats {
	f.mu.Lock()
	out := make([]ConnectionStats, 0, len(f.open))
	for _, c := range f.open {
		out = append(out, c.stats())
	}
	f.mu.Unlock()
	slices.SortFunc(out, func(a, b ConnectionStats) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// register records a service's direction and address for Stats.
func (f *Forwarder) register(service string, offered bool, addr string) {
	c := f.counters(service)
	f.mu.Lock()
	c.offered, c.addr = offered, addr
	f.mu.Unlock()
}

func (f *Forwarder) counters(service string) *serviceCounters {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.services[service]
	if c == nil {
		c = &serviceCounters{}
		f.services[service] = c
	}
	return c
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

// limitReached reports a refusal because of a bound.
func (f *Forwarder) limitReached(err error) {
	key := err.Error()
	if limit := (*LimitError)(nil); errors.As(err, &limit) {
		key = limit.What
	}
	f.reportOnce(key, fmt.Errorf("refused the peer: %w", err))
}

// reportOnce tells the user about a peer's misbehaviour the first time it
// happens (for each key, a bounded set); later ones are only logged, so
// that a peer cannot flood the user's screen or log.
func (f *Forwarder) reportOnce(key string, err error) {
	f.problemOnce(key, "peer misbehaved", err)
}

// problemOnce reports err as a Problem the first time key comes, and
// only logs it (as what) later.
func (f *Forwarder) problemOnce(key, what string, err error) {
	f.mu.Lock()
	first := !f.reported[key]
	f.reported[key] = true
	f.mu.Unlock()
	if first {
		f.log.Warn(what+" (reported once)", "err", err)
		f.emit(Problem{Err: err})
	} else {
		f.log.Debug(what, "err", err)
	}
}

// refused reports the refusal of a peer's request, as events, up to
// limits.refusalsReported in the session; later ones are only logged.
func (f *Forwarder) refused(events ...Event) {
	if n := f.refusals.Add(1); n > int64(f.limits.refusalsReported) {
		f.reportOnce("refusals", fmt.Errorf("refused %d requests of the peer: further refusals are only logged", f.limits.refusalsReported))
		f.log.Debug("refused the peer", "events", events)
		return
	}
	for _, e := range events {
		f.emit(e)
	}
}

// refusedByPeer is the error of our connection the peer refused: its
// reason as peerText, for the first limits.refusalsReported refusals of
// the session; later ones only say that the peer refused, and their
// reasons are logged, so that a peer refusing every connection does not
// put its words on the user's screen for each.
func (f *Forwarder) refusedByPeer(service, reason string) *DeniedError {
	reason = peerText(reason)
	if n := f.refusalsByPeer.Add(1); n > int64(f.limits.refusalsReported) {
		f.problemOnce("refusals by the peer", "the peer refused a connection",
			fmt.Errorf("the peer refused %d connections: further reasons are only logged", f.limits.refusalsReported))
		f.log.Debug("the peer refused a connection", "service", service, "reason", reason)
		return &DeniedError{Service: service, Reason: reasonNotShown}
	}
	return &DeniedError{Service: service, Reason: reason}
}

// reasonNotShown stands for the peer's reason beyond
// limits.refusalsReported.
const reasonNotShown = "Refused by the peer"

// refuse sends the peer a refusal and closes sc; a peer that makes no
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

// Offer asks the peer to listen for our service r (fowl's --remote) and
// keeps the request's subchannel open: closing it stops the peer's
// listener. A zero ConnectPort picks a free port for the daemon.
func (f *Forwarder) Offer(ctx context.Context, r Remote) (Remote, error) {
	if r.ConnectPort == 0 {
		port, err := freePort(r.Address)
		if err != nil {
			return r, err
		}
		r.ConnectPort = port
	}
	// Allowed before asking, so that a connection racing the reply works.
	f.policy.AddRemote(r)
	var listenPort *int
	if r.ListenPort != 0 {
		listenPort = &r.ListenPort
	}
	req := listenRequest{Kind: kindRequestListener, UniqueName: r.Name, ListenPort: listenPort}
	var sc *dilation.Subchannel
	var untrack func()
	var resp listenResponse
	var err error
	for deadline := time.Now().Add(offerRetryWindow); ; {
		if sc, err = f.conn.Open(ctx, commandsSubprotocol); err != nil {
			return r, err
		}
		var ok bool
		if untrack, ok = f.track(sc); !ok {
			return r, net.ErrClosed
		}
		resp, err = f.request(ctx, sc, req)
		early := f.fowlPeer && err == nil && !resp.Listening && strings.HasPrefix(resp.Reason, "No service permitted")
		if !early || time.Now().After(deadline) {
			break
		}
		untrack()
		sc.Close()
		select {
		case <-time.After(offerRetryDelay):
		case <-ctx.Done():
			return r, ctx.Err()
		}
	}
	if err == nil && !resp.Listening {
		// One per offer the local user makes: not counted.
		reason := peerText(resp.Reason)
		err = &DeniedError{Service: r.Name, Reason: reason}
		f.emit(Refused{Service: r.Name, Reason: reason, ByPeer: true})
	}
	if err == nil && resp.DesiredPort != nil && *resp.DesiredPort != r.ConnectPort {
		err = fmt.Errorf("the peer wants %s's daemon on port %d, not %d", r.Name, *resp.DesiredPort, r.ConnectPort)
	}
	if err != nil {
		f.policy.Remove(r.Name)
		untrack()
		sc.Close()
		return r, err
	}
	addr := net.JoinHostPort(r.Address, strconv.Itoa(r.ConnectPort))
	f.closeWithService(r.Name, sc)
	f.register(r.Name, true, addr)
	f.emit(AwaitingConnect{Service: r.Name, Addr: addr})
	return r, nil
}

func (f *Forwarder) request(ctx context.Context, sc *dilation.Subchannel, req listenRequest) (listenResponse, error) {
	if err := writeFrame(sc, req); err != nil {
		return listenResponse{}, err
	}
	type result struct {
		resp listenResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var resp listenResponse
		body, err := readFrame(bufio.NewReader(sc))
		if err == nil {
			err = decodeMessage(body, &resp)
		}
		done <- result{resp, err}
	}()
	select {
	case r := <-done:
		return r.resp, r.err
	case <-ctx.Done():
		sc.Close()
		return listenResponse{}, ctx.Err()
	}
}

func freePort(addr string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// serveCommands answers the peer's listen requests on one fowl-commands
// subchannel; the listeners it opens close with it.
func (f *Forwarder) serveCommands(sc *dilation.Subchannel, r *bufio.Reader, first []byte) {
	defer sc.Close()
	var listeners []*peerListener
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	body := first
	for frames := 1; ; frames++ {
		if frames > f.limits.framesPerCommandChannel {
			f.reportOnce("command flood", fmt.Errorf("closed a command channel of the peer: %w",
				&LimitError{What: "commands on one channel", Limit: f.limits.framesPerCommandChannel}))
			return
		}
		l, ok := f.command(sc, body)
		if !ok {
			return
		}
		if l != nil {
			listeners = append(listeners, l)
		}
		var err error
		if body, err = readFrame(r); err != nil {
			if !errors.Is(err, io.EOF) && f.ctx.Err() == nil {
				f.reportOnce("bad command", fmt.Errorf("command channel: %w", err))
			}
			return
		}
	}
}

// command answers one frame of a fowl-commands subchannel; it returns the
// listener it opened, if any, and false if the subchannel is done.
func (f *Forwarder) command(sc *dilation.Subchannel, body []byte) (*peerListener, bool) {
	kind, err := decodeKind(body)
	if err != nil || kind != kindRequestListener {
		// fowl does not answer unknown commands either.
		f.reportOnce("unknown command", fmt.Errorf("ignoring unknown command %s from the peer", printableName(kind)))
		return nil, true
	}
	var req listenRequest
	if err := decodeMessage(body, &req); err != nil {
		f.reportOnce("bad command", err)
		return nil, true
	}
	requested := 0
	if req.ListenPort != nil {
		requested = *req.ListenPort
	}
	l, local, err := f.listenFor(sc, req.UniqueName, requested)
	resp := listenResponse{Kind: kindListenerResponse, UniqueName: req.UniqueName, Listening: err == nil}
	if err != nil {
		resp.Reason = err.Error()
		service := req.UniqueName
		if checkPeerName(service) != nil {
			service = printableName(service)
		}
		f.refused(Refused{Service: service, Reason: resp.Reason})
	} else if local.RemoteConnectPort != 0 {
		resp.DesiredPort = &local.RemoteConnectPort
	}
	if err := writeFrame(sc, resp); err != nil {
		if l != nil {
			l.Close()
		}
		return nil, false
	}
	if l != nil {
		f.emit(Listening{Service: req.UniqueName, Addr: l.l.Addr().String()})
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if f.fowlPeer {
				select {
				case <-time.After(fowlSettle):
				case <-f.ctx.Done():
					return
				}
			}
			f.acceptConnections(l.l, req.UniqueName)
		}()
	}
	return l, true
}

// peerListener is our listener for one of the peer's services, held from
// the request on, while the policy decides, until the requesting command
// channel closes (or Remove, or Close). There is one per name.
type peerListener struct {
	f       *Forwarder
	name    string
	owner   *dilation.Subchannel // the command channel that asked
	l       net.Listener         // nil until listening; guarded by f.mu
	untrack func()
	closed  bool          // guarded by f.mu
	gone    chan struct{} // closed once the name is free again
	once    sync.Once
}

// Close stops listening and frees the name.
func (pl *peerListener) Close() error {
	pl.once.Do(func() {
		f := pl.f
		f.mu.Lock()
		if f.listeners[pl.name] == pl {
			delete(f.listeners, pl.name)
			// The peer's service is gone: forget its counters (open
			// connections keep theirs), which a churning peer would
			// otherwise grow without end.
			if c := f.services[pl.name]; c != nil && !c.offered {
				delete(f.services, pl.name)
			}
		}
		pl.closed = true
		l, untrack := pl.l, pl.untrack
		f.mu.Unlock()
		if l != nil {
			l.Close()
			untrack()
		}
		close(pl.gone)
	})
	return nil
}

// reserveListener claims name for a listener asked for on owner. A name
// already claimed on another command channel is waited for a moment (it
// may be a withdrawn offer's, about to go); otherwise it is refused, as
// is any name beyond the listener bound.
func (f *Forwarder) reserveListener(owner *dilation.Subchannel, name string) (*peerListener, error) {
	handover := time.NewTimer(f.limits.listenerHandover)
	defer handover.Stop()
	for {
		f.mu.Lock()
		held := f.listeners[name]
		if held == nil {
			if len(f.listeners) >= f.limits.listeners {
				f.mu.Unlock()
				err := &LimitError{What: "listeners for the peer", Limit: f.limits.listeners}
				f.limitReached(err)
				return nil, err
			}
			pl := &peerListener{f: f, name: name, owner: owner, gone: make(chan struct{})}
			f.listeners[name] = pl
			f.mu.Unlock()
			return pl, nil
		}
		f.mu.Unlock()
		busy := &DeniedError{Service: name, Reason: fmt.Sprintf("Already listening for %s", name)}
		if held.owner == owner {
			return nil, busy
		}
		select {
		case <-held.gone:
		case <-handover.C:
			return nil, busy
		case <-f.ctx.Done():
			return nil, net.ErrClosed
		}
	}
}

// listenFor binds a listener for the peer's service, asked for on the
// command channel owner, if the policy and the bounds allow.
func (f *Forwarder) listenFor(owner *dilation.Subchannel, name string, requested int) (*peerListener, Local, error) {
	if err := checkPeerName(name); err != nil {
		return nil, Local{}, &DeniedError{Service: printableName(name), Reason: fmt.Sprintf("Bad service name: %v", err)}
	}
	pl, err := f.reserveListener(owner, name)
	if err != nil {
		return nil, Local{}, err
	}
	local, err := f.policy.listen(f.ctx, name, requested)
	if err == nil && requested != 0 && local.ListenPort != requested {
		f.log.Info("not using the port the peer asked for", "service", name, "port", requested)
	}
	var l net.Listener
	if err == nil {
		// No keep-alives: the connections are local, and setting them up
		// costs two system calls per connection.
		lc := net.ListenConfig{KeepAlive: -1}
		l, err = lc.Listen(f.ctx, "tcp4", net.JoinHostPort(local.BindAddr, strconv.Itoa(local.ListenPort)))
	}
	if err != nil {
		pl.Close()
		return nil, local, err
	}
	untrack, ok := f.track(l)
	if !ok {
		pl.Close()
		return nil, local, net.ErrClosed
	}
	f.mu.Lock()
	closed := pl.closed
	if !closed {
		pl.l, pl.untrack = l, untrack
	}
	f.mu.Unlock()
	if closed { // removed while the policy decided
		l.Close()
		untrack()
		return nil, local, net.ErrClosed
	}
	f.register(name, false, l.Addr().String())
	return pl, local, nil
}

// acceptConnections forwards every connection to l to the peer's service,
// within limits.localConnections, until l closes. A failed Accept (out of
// file descriptors, most likely) is retried after a pause, as net/http
// does, rather than leaving l bound but deaf for the rest of the session.
func (f *Forwarder) acceptConnections(l net.Listener, service string) {
	var backoff time.Duration
	for {
		tcp, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || f.ctx.Err() != nil {
				return
			}
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			f.problemOnce("accept", "accepting a connection failed",
				fmt.Errorf("accepting a connection for %s: %w (retrying)", service, err))
			pause := time.NewTimer(backoff)
			select {
			case <-pause.C:
			case <-f.ctx.Done():
				pause.Stop()
				return
			}
			continue
		}
		backoff = 0
		release, err := take(f.localConnections, &LimitError{What: "local connections to the peer's services", Limit: f.limits.localConnections})
		if err != nil {
			tcp.Close()
			f.problemOnce("local connections", "closed a local connection",
				fmt.Errorf("closed a new connection for %s: %w", service, err))
			continue
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer release()
			f.forwardOut(tcp.(*net.TCPConn), service)
		}()
	}
}

// forwardOut carries one local connection to the peer's daemon. A gander
// peer takes the connection's first bytes right behind the request, which
// saves a round trip on every connection; fowl reads nothing before its
// reply, so for a fowl peer they wait for it.
func (f *Forwarder) forwardOut(tcp *net.TCPConn, service string) {
	id := f.nextID.Add(1)
	c := f.newConnection(tcp, id, service, false)
	if c == nil {
		f.emit(ConnectionOpened{ID: id, Service: service})
		f.emit(ConnectionClosed{ID: id, Service: service, Err: net.ErrClosed})
		return
	}
	err := f.connectOut(c)
	f.emit(c.closed(err))
}

func (f *Forwarder) connectOut(c *connection) error {
	defer c.close()
	sc, err := f.conn.Open(f.ctx, forwardSubprotocol)
	if err == nil && c.adopt(sc) {
		err = c.sendRequest(forwardRequest{UniqueName: c.name}, !f.fowlPeer)
	} else if err == nil {
		err = net.ErrClosed
	}
	// Reported while the request travels.
	f.emit(c.opened())
	if err != nil {
		return err
	}
	if !f.fowlPeer {
		c.startToPeer()
	}
	// A peer that never answers would hold the connection, and its
	// socket, for ever: the client's close is not read until it does.
	timeout := f.limits.handshakeTimeout
	timer := time.AfterFunc(timeout, func() { sc.Close() })
	fromPeer := bufio.NewReader(sc)
	body, err := readFrame(fromPeer)
	if !timer.Stop() {
		err = handshakeTimeoutError(timeout)
	}
	var reply forwardReply
	if err == nil {
		err = decodeMessage(body, &reply)
	}
	if err == nil && !reply.Connected {
		err = f.refusedByPeer(c.name, reply.Reason)
	}
	if err != nil {
		return err
	}
	if f.fowlPeer {
		c.startToPeer()
	}
	return c.copyFromPeer(fromPeer)
}

// serveForward handles one forwarding subchannel the peer opened: it
// connects to our daemon for the named service, if the policy allows.
func (f *Forwarder) serveForward(sc *dilation.Subchannel, fromPeer *bufio.Reader, first []byte) {
	defer sc.Close()
	var req forwardRequest
	if err := decodeMessage(first, &req); err != nil {
		f.reportOnce("bad handshake", fmt.Errorf("forwarding handshake: %w", err))
		return
	}
	service := req.UniqueName
	if err := checkPeerName(service); err != nil {
		reason := fmt.Sprintf("Bad service name: %v", err)
		f.reportOnce("bad name", fmt.Errorf("refused a connection for %s: %s", printableName(service), reason))
		writeFrame(sc, forwardReply{Connected: false, Reason: reason})
		return
	}
	id := f.nextID.Add(1)
	remote, err := f.policy.connect(service)
	if err != nil {
		writeFrame(sc, forwardReply{Connected: false, Reason: err.Error()})
		f.refused(Refused{Service: service, Reason: err.Error()}, ConnectionClosed{ID: id, Service: service, Incoming: true, Err: err})
		return
	}
	release, err := take(f.peerConnections, &LimitError{What: "connections from the peer", Limit: f.limits.connections})
	if err != nil {
		f.limitReached(err)
		writeFrame(sc, forwardReply{Connected: false, Reason: err.Error()})
		return
	}
	defer release()
	dialer := net.Dialer{Timeout: dialTimeout, KeepAlive: -1}
	conn, err := dialer.DialContext(f.ctx, "tcp4", net.JoinHostPort(remote.Address, strconv.Itoa(remote.ConnectPort)))
	if err != nil {
		f.emit(ConnectionOpened{ID: id, Service: service, Incoming: true})
		writeFrame(sc, forwardReply{Connected: false, Reason: err.Error()})
		f.emit(ConnectionClosed{ID: id, Service: service, Incoming: true, Err: err})
		return
	}
	c := f.newConnection(conn.(*net.TCPConn), id, service, true)
	if c == nil {
		f.emit(ConnectionOpened{ID: id, Service: service, Incoming: true})
		f.emit(ConnectionClosed{ID: id, Service: service, Incoming: true, Err: net.ErrClosed})
		return
	}
	err = f.connectIn(c, sc, fromPeer)
	f.emit(c.closed(err))
}

// connectIn answers the peer and splices its subchannel to our daemon.
func (f *Forwarder) connectIn(c *connection, sc *dilation.Subchannel, fromPeer *bufio.Reader) error {
	defer c.close()
	if !c.adopt(sc) {
		f.emit(c.opened())
		return net.ErrClosed
	}
	err := writeFrame(sc, forwardReply{Connected: true})
	if err == nil {
		c.startToPeer()
	}
	f.emit(c.opened())
	if err != nil {
		return err
	}
	return c.copyFromPeer(fromPeer)
}

// connection is one forwarded connection: a local socket spliced to a
// subchannel, each closed by Forwarder.Close while it lasts. What the
// socket sends is copied by a goroutine of its own, what the peer sends by
// the connection's goroutine (one fewer to start and wake); each direction
// ends in a half-close. fowl peers turn a half-close into a full close,
// which ends the other direction too.
type connection struct {
	f        *Forwarder
	id       int64
	name     string // the service's
	incoming bool
	since    time.Time
	tcp      *net.TCPConn
	sc       *dilation.Subchannel
	untrack  []func()
	service  *serviceCounters
	in, out  atomic.Int64 // bytes from and to the peer
	copies   chan error
	running  int
	finished bool
}

// newConnection tracks tcp, or closes it and returns nil if the forwarder
// is closing.
func (f *Forwarder) newConnection(tcp *net.TCPConn, id int64, service string, incoming bool) *connection {
	untrack, ok := f.track(tcp)
	if !ok {
		return nil
	}
	c := &connection{
		f: f, id: id, name: service, incoming: incoming, since: time.Now(),
		tcp: tcp, untrack: []func(){untrack}, service: f.counters(service), copies: make(chan error, 2),
	}
	c.service.open.Add(1)
	c.service.total.Add(1)
	f.mu.Lock()
	f.open[id] = c
	f.mu.Unlock()
	return c
}

// adopt tracks sc as the connection's subchannel, or closes it and
// reports false if the forwarder is closing.
func (c *connection) adopt(sc *dilation.Subchannel) bool {
	untrack, ok := c.f.track(sc)
	if !ok {
		return false
	}
	c.sc = sc
	c.untrack = append(c.untrack, untrack)
	return true
}

// firstBytesMax bounds what rides with a forwarding request.
const firstBytesMax = 16 << 10

// sendRequest writes the forwarding request; with firstBytes, what the
// socket has already received goes in the same write (a gander peer reads
// the request from a buffered stream, unlike fowl), so that a client that
// speaks first costs one record and one system call less.
func (c *connection) sendRequest(req forwardRequest, firstBytes bool) error {
	frame, err := encodeFrame(req)
	if err != nil {
		return err
	}
	if firstBytes {
		frame = slices.Grow(frame, firstBytesMax)
		n := readReady(c.tcp, frame[len(frame):cap(frame)])
		frame = frame[:len(frame)+n]
		c.out.Add(int64(n))
		c.service.bytesOut.Add(int64(n))
	}
	_, err = c.sc.Write(frame)
	return err
}

// startToPeer copies the socket to the subchannel (which reads straight
// into its records through ReadFrom).
func (c *connection) startToPeer() {
	c.running++
	go func() {
		_, err := io.Copy(c.sc, countingReader{c.tcp, &c.out, &c.service.bytesOut})
		c.sc.CloseWrite()
		c.copies <- err
	}()
}

// copyFromPeer copies what the peer sends, after the handshake that
// fromPeer has buffered, to the socket, and returns once the other
// direction is done too.
func (c *connection) copyFromPeer(fromPeer *bufio.Reader) error {
	_, err := io.Copy(countingWriter{c.tcp, &c.in, &c.service.bytesIn}, fromPeer)
	c.tcp.CloseWrite()
	return errors.Join(err, c.wait())
}

// wait returns once the copy to the peer, if running, is done.
func (c *connection) wait() error {
	var errs []error
	for ; c.running > 0; c.running-- {
		errs = append(errs, <-c.copies)
	}
	return errors.Join(errs...)
}

// close ends the connection and waits for its copies to stop.
func (c *connection) close() {
	if c.finished {
		return
	}
	c.finished = true
	c.tcp.Close()
	if c.sc != nil {
		c.sc.Close()
	}
	c.wait()
	for _, untrack := range c.untrack {
		untrack()
	}
	c.service.open.Add(-1)
	c.f.mu.Lock()
	delete(c.f.open, c.id)
	c.f.mu.Unlock()
}

// stats are the connection's counters so far.
func (c *connection) stats() ConnectionStats {
	return ConnectionStats{
		ID: c.id, Service: c.name, Incoming: c.incoming, Since: c.since,
		BytesIn: c.in.Load(), BytesOut: c.out.Load(),
	}
}

// opened is the event that reports the connection's start.
func (c *connection) opened() ConnectionOpened {
	return ConnectionOpened{ID: c.id, Service: c.name, Incoming: c.incoming}
}

// closed is the event that reports the connection's end.
func (c *connection) closed(err error) ConnectionClosed {
	return ConnectionClosed{
		ID: c.id, Service: c.name, Incoming: c.incoming, Err: err,
		BytesIn: c.in.Load(), BytesOut: c.out.Load(),
	}
}

// countingReader counts into a connection's and its service's counters.
// It hides the socket's WriteTo, so that io.Copy uses the subchannel's
// ReadFrom.
type countingReader struct {
	r             io.Reader
	conn, service *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.conn.Add(int64(n))
	c.service.Add(int64(n))
	return n, err
}

type countingWriter struct {
	w             io.Writer
	conn, service *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.conn.Add(int64(n))
	c.service.Add(int64(n))
	return n, err
}
