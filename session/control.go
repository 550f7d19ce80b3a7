package session

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gander-pair/gander/dilation"
	"github.com/gander-pair/gander/forwards"
	"github.com/gander-pair/gander/wormhole"
	"github.com/gander-pair/gander/wormhole/codes"
)

// ErrCloseTimeout: the peer did not answer our goodbye within the Close
// command's timeout (the session is closed all the same).
var ErrCloseTimeout = errors.New("the peer did not answer the goodbye in time")

// Why a wormhole can end before the peer is trusted, for errors.Is on
// Closed.Err and Wait: the wormhole package's own errors.
var (
	// ErrCodeSpoiled: someone other than the peer used the nameplate; a
	// new code is the only way on.
	ErrCodeSpoiled = wormhole.ErrCodeSpoiled
	// ErrWrongCode: the two sides typed different codes. The mailbox
	// mood is then "scary", which has no error of its own: a wrong code
	// is the only thing that makes it.
	ErrWrongCode = wormhole.ErrWrongCode
	// ErrLonely: the session closed (by command or by Start's context)
	// before the peer came.
	ErrLonely = wormhole.ErrLonely
	// ErrMailboxUnreachable: the mailbox server could not be reached at
	// the start (a wrong --mailbox, no network). Once connected, its
	// losses are ServerStatus events and retried for as long as the
	// session runs.
	ErrMailboxUnreachable = wormhole.ErrMailboxUnreachable
)

// ErrLinkStopped: the dilated connection stopped for good (it could not
// reconnect); the LinkStatus before Closed says why.
var ErrLinkStopped = errors.New("the dilated connection stopped")

// Errors a CommandFailed carries.
var (
	ErrCodeAlreadySet = errors.New("the code is already set")
	ErrNoSuchRequest  = errors.New("no such permission request (already answered or withdrawn)")
	// fowld 26.8 fails every ping: before Dilation for want of a
	// connection, after it because it cannot encode the ping id; gander
	// has no Dilation ping to send.
	ErrPingNotInDilation = errors.New("Cannot send ping: not in Dilation")
	ErrPingUnsupported   = errors.New("Cannot send ping: gander does not send Dilation pings")
)

// Start starts a session: it connects to the mailbox, then waits for
// AllocateCode or SetCode (or uses Config.Code), applies Config.Locals and
// Config.Remotes as if they were the first commands, and carries out
// commands until a Close, the peer's goodbye, a failure or the end of ctx
// (which says goodbye and waits up to Config.CloseTimeout for the peer's).
// It returns at once; an error means the configuration is unusable, and
// nothing was started. Everything after is an event, the last Closed.
func Start(ctx context.Context, cfg Config) (*Session, error) {
	c := &controller{
		cfg:           cfg,
		locals:        map[string]bool{},
		remotes:       map[string]bool{},
		files:         fileTransfers{byID: map[int64]*fileTransfer{}},
		offerFailures: make(chan offerFailure),
	}
	s := &Session{commands: newCommandQueue(), events: newEventQueue(), done: make(chan struct{})}
	c.emit, c.commands = s.events.emit, &s.commands
	c.asks = newAskQueue(c.emit, cfg.AskTimeout)
	var ask forwards.Asker
	if cfg.AskPeer {
		ask = c.asks.ask
	}
	c.policy = forwards.NewPolicy(ask)
	for _, pattern := range cfg.AllowListen {
		if err := c.policy.AllowListen(pattern); err != nil {
			return nil, err
		}
	}
	go s.events.pump()
	go func() {
		s.err = c.session(ctx)
		s.commands.end()
		c.emit(Closed{Err: s.err})
		close(s.done)
	}()
	return s, nil
}

// session is the session goroutine: it returns Closed's Err.
func (c *controller) session(ctx context.Context) error {
	w, err := openWormhole(ctx, &c.cfg, c.emit)
	if err != nil {
		return err
	}
	c.w = w
	for _, l := range c.cfg.Locals {
		c.addLocal(l)
	}
	for _, r := range c.cfg.Remotes {
		c.addRemote(r)
	}
	err = c.run(ctx)
	c.commands.end()

	closeCtx, cancel := context.WithTimeout(context.Background(), c.cfg.CloseTimeout)
	defer cancel()
	closeErr := w.Close(closeCtx)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil // interrupted: fowld exits 0 on SIGTERM too
	}
	switch {
	case err != nil:
		return err
	case errors.Is(closeErr, wormhole.ErrLonely):
		return ErrLonely
	}
	return closeErr
}

// controller is one session. Its fields below wg belong to the session
// goroutine alone (see the package doc); asks and files lock their own.
type controller struct {
	cfg      Config
	w        *wormhole.Wormhole
	emit     func(Event)      // safe from any goroutine
	commands *commandQueue    // Do's commands, taken by run
	policy   *forwards.Policy // locks its own
	asks     *askQueue        // the peer's requests waiting for the user
	files    fileTransfers
	// offerFailures carries the offers that failed from their goroutines
	// to run, which frees their names.
	offerFailures chan offerFailure

	wg      sync.WaitGroup  // every goroutine the session starts: all emit
	locals  map[string]bool // names given to AddLocal
	remotes map[string]bool // names offered, or to offer
	pending []forwards.Remote
	fw      *forwards.Forwarder // nil until the peer is connected
	runCtx  context.Context     // for offers, once connected
	conn    *dilation.Conn      // for file transfers, once connected
	// peer is what the peer advertised, once connected: it decides
	// which subprotocols run.
	peer         Peer
	pendingSends []string // paths to send once connected
	// term is the shared terminal, once connected with a peer that has
	// it (terminal.go).
	term *terminalShares
}

// offerFailure is an offer of ours the peer refused, or that failed.
type offerFailure struct {
	service string
	err     error
}

// setupResult is what the connection goroutine hands the command loop.
type setupResult struct {
	conn *dilation.Conn
	peer Peer
	// started are the subprotocols the peer accepts, running.
	started []started
	err     error
}

func (c *controller) run(ctx context.Context) error {
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var (
		ready       = make(chan setupResult, 1)
		setupActive bool
		conn        *dilation.Conn
		running     []started
		peerClosing = make(chan struct{})
		connDone    <-chan struct{}
	)
	readCtx, stopReading := context.WithCancel(context.Background())
	defer func() {
		stop()
		if setupActive {
			if r := <-ready; r.err == nil {
				conn, running = r.conn, r.started
			}
		}
		stopReading()
		stopSubprotocols(running)
		if conn != nil {
			conn.Close()
		}
		c.wg.Wait()
	}()
	defer c.asks.close()
	startSetup := func(code string, length int) {
		setupActive = true
		go func() { ready <- c.setup(runCtx, code, length) }()
	}
	if c.cfg.Code != "" {
		startSetup(c.cfg.Code, 0)
	}
	// gotSetup takes the connection setup made, and starts using it.
	gotSetup := func(r setupResult) error {
		setupActive = false
		if r.err != nil {
			return r.err
		}
		conn, running = r.conn, r.started
		connDone = conn.Done()
		// The goodbye reader must outlive ctx: after an interrupt we
		// still wait for the peer's answer.
		go func() {
			if waitForClosing(readCtx, c.w) {
				close(peerClosing)
			}
		}()
		c.wg.Add(1)
		go func() { defer c.wg.Done(); reportStatus(runCtx, conn, c.emit) }()
		c.runCtx, c.conn, c.peer = runCtx, conn, r.peer
		for _, st := range running {
			st.connected(runCtx)
		}
		c.refuseSubprotocols(r.peer)
		return nil
	}
	c.wg.Add(1)
	go func() { defer c.wg.Done(); reportServer(runCtx, c.w, c.emit) }()
	for {
		select {
		case <-ctx.Done():
			if conn == nil {
				return ctx.Err()
			}
			if err := sayGoodbye(c.w, peerClosing, c.cfg.CloseTimeout); err != nil {
				return err
			}
			return ctx.Err()
		case r := <-ready:
			if err := gotSetup(r); err != nil {
				return err
			}
		case <-peerClosing:
			c.emit(PeerClosing{})
			return sendClosing(c.w)
		case <-connDone:
			return ErrLinkStopped
		case f := <-c.offerFailures:
			if !c.remotes[f.service] {
				continue // removed meanwhile: ForwardRemoved said so
			}
			delete(c.remotes, f.service)
			c.emit(OfferFailed{Service: f.service, Err: f.err})
		case <-c.commands.more:
			// A finished setup goes first (select picks at random): a
			// command may name what it started, such as the forward a
			// peer's request has already opened.
			select {
			case r := <-ready:
				if err := gotSetup(r); err != nil {
					return err
				}
			default:
			}
			cmd, ok := c.commands.pop()
			if !ok {
				continue
			}
			switch cmd := cmd.(type) {
			case AllocateCode, SetCode:
				if setupActive || conn != nil {
					c.emit(CommandFailed{Err: ErrCodeAlreadySet})
					continue
				}
				if set, ok := cmd.(SetCode); ok {
					startSetup(set.Code, 0)
				} else {
					startSetup("", cmd.(AllocateCode).Length)
				}
			case ListNameplates:
				c.wg.Add(1)
				go func() {
					defer c.wg.Done()
					if names, err := c.w.ListNameplates(runCtx); err != nil {
						c.emit(CommandFailed{Err: err})
					} else {
						c.emit(Nameplates{Names: names})
					}
				}()
			case Ping:
				if conn == nil {
					c.emit(CommandFailed{Err: ErrPingNotInDilation})
				} else {
					c.emit(CommandFailed{Err: ErrPingUnsupported})
				}
			case Close:
				if conn == nil {
					return nil // nobody to say goodbye to
				}
				if err := sendClosing(c.w); err != nil {
					return err
				}
				select {
				case <-peerClosing:
					return nil
				case <-time.After(cmd.Timeout):
					return ErrCloseTimeout
				case <-ctx.Done():
					return ctx.Err()
				}
			default:
				if s := commandOwner(cmd); s != nil {
					s.handle(c, cmd)
				} else {
					c.emit(CommandFailed{Err: fmt.Errorf("unknown command %T", cmd)})
				}
			}
		}
	}
}

// setup sets the code, waits for the peer, dilates and starts the
// subprotocols the peer accepts, in a goroutine of its own while run goes on taking commands.
func (c *controller) setup(ctx context.Context, code string, length int) setupResult {
	var err error
	nobody := "" // the nameplate nobody was on, if so
	if code == "" {
		if length == 0 {
			length = c.cfg.CodeLength
		}
		code, err = c.w.AllocateCode(ctx, length)
	} else {
		// Asked before our claim, which would put us on the list.
		nameplate := ""
		if parsed, perr := codes.Parse(code); perr == nil {
			nameplate = codes.Nameplate(parsed)
		}
		occupied := nameplateInUse(ctx, c.w, nameplate)
		err = c.w.SetCode(ctx, code)
		if !occupied {
			nobody = nameplate
		}
	}
	if err != nil {
		return setupResult{err: err}
	}
	c.emit(CodeReady{Code: code})
	if nobody != "" {
		c.emit(NobodyOnCode{Nameplate: nobody})
	}
	verifier, err := c.w.Verifier(ctx)
	if err != nil {
		return setupResult{err: err}
	}
	versions, err := c.w.PeerVersion(ctx)
	if err != nil {
		return setupResult{err: err}
	}
	conn, err := dilation.Dilate(ctx, c.w, dilation.Config{
		TransitRelay: c.cfg.TransitRelay,
		NoDirect:     c.cfg.NoDirect,
		Logger:       c.cfg.Logger,
	})
	if err != nil {
		return setupResult{err: err}
	}
	peer := ParsePeer(versions["app_versions"])
	c.emit(PeerConnected{Verifier: verifier, PeerVersions: versions["app_versions"], Peer: peer})
	running, err := c.startSubprotocols(conn, peer)
	if err != nil {
		conn.Close()
		return setupResult{err: err}
	}
	return setupResult{conn: conn, peer: peer, started: running}
}

func (c *controller) addLocal(l forwards.Local) {
	c.locals[l.Name] = true
	c.policy.AddLocal(l)
}

// addRemote offers r now if the peer is connected, else once it is. The
// name must be new, as fowld requires (and with fowld's messages).
func (c *controller) addRemote(r forwards.Remote) {
	var err error
	switch {
	case c.locals[r.Name]:
		err = fmt.Errorf("fledge(%s) when we already have a roost for that name", r.Name)
	case c.remotes[r.Name]:
		err = fmt.Errorf("Supposedly unique %q already in our services", r.Name)
	}
	if err != nil {
		c.emit(CommandFailed{Err: err})
		return
	}
	c.remotes[r.Name] = true
	if c.fw == nil {
		c.pending = append(c.pending, r)
		return
	}
	c.offer(r)
}

// remove stops a service: through the forwarder once the peer is
// connected, else by forgetting it.
func (c *controller) remove(name string) {
	known := c.locals[name] || c.remotes[name]
	delete(c.locals, name)
	delete(c.remotes, name)
	c.pending = slices.DeleteFunc(c.pending, func(r forwards.Remote) bool { return r.Name == name })
	switch {
	case c.fw != nil:
		c.fw.Remove(name)
	case known:
		c.policy.Remove(name)
		c.emit(ForwardRemoved{Service: name})
	default:
		c.emit(CommandFailed{Err: fmt.Errorf("no service named %q", name)})
	}
}

// offer asks the peer to listen for r; a refused offer frees its name
// (run does that, on offerFailures, before the OfferFailed event).
func (c *controller) offer(r forwards.Remote) {
	fw, ctx := c.fw, c.runCtx
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		_, err := fw.Offer(ctx, r)
		// Removed before the peer answered: ForwardRemoved said so.
		if removed := (*forwards.RemovedError)(nil); errors.As(err, &removed) {
			return
		}
		if err != nil && ctx.Err() == nil {
			select {
			case c.offerFailures <- offerFailure{service: r.Name, err: err}:
			case <-ctx.Done():
			}
		}
	}()
}

// reportTraffic emits the forwarder's counters every TrafficInterval while
// they change.
func (c *controller) reportTraffic(ctx context.Context, fw *forwards.Forwarder) {
	tick := time.NewTicker(TrafficInterval)
	defer tick.Stop()
	var last int64
	for {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
		stats := fw.Stats()
		var total int64
		for _, s := range stats {
			total += s.BytesIn + s.BytesOut
		}
		if total != last {
			last = total
			c.emit(Traffic{Services: stats, Connections: fw.Connections()})
		}
	}
}
