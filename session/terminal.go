package session

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gander-pair/gander/dilation"
	"github.com/gander-pair/gander/forwards"
	"github.com/gander-pair/gander/internal/sanitize"
	"github.com/gander-pair/gander/terminal"
)

// Sharing a terminal between two gander peers (terminal-v1). The host
// runs a shell (or a command) in a PTY (terminal.Host) and opens one
// terminalShareProto subchannel per share: its control messages
// (terminalwire.go) say the share exists and who may type, and carry the
// guest's request for the keyboard. Each time the guest watches, it
// opens a terminalViewProto subchannel that carries tty-share's messages
// (terminal.NewStreamConn), and closes it to detach. The guest's keys
// always travel; the host drops them while the guest may not type
// (read-only is the default), so a modified guest cannot type either.
//
// One share each way at a time, one view of it at a time; the guest's
// request for the keyboard is one of the session's questions (asks.go),
// answered with Answer like a listen request.

// FeatureTerminal is the shared terminal's feature.
const FeatureTerminal = "terminal-v1"

// Dilation subprotocols of the shared terminal.
const (
	terminalShareProto = "gander-terminal-v1"      // one per share: control, opened by the host
	terminalViewProto  = "gander-terminal-view-v1" // one per view: tty-share's messages, opened by the guest
)

// Bounds of the shared terminal against the peer.
const (
	// offerReadTimeout: a share subchannel whose offer does not come
	// within it is closed.
	offerReadTimeout = 30 * time.Second
	// controlQueue: control messages waiting to be written; a peer that
	// lets more pile up (it does not read) loses the share.
	controlQueue = 16
	// inputDroppedInterval: a read-only guest's keys are reported (one
	// ShareInputDropped) at most this often.
	inputDroppedInterval = time.Second
	// keyboardAskInterval: the guest's requests for the keyboard are
	// looked at no more often than this (the rest are ignored), and one
	// asked at a time.
	keyboardAskInterval = time.Second
	// maxShareCommand: runes kept of the shared command's name.
	maxShareCommand = 120
)

// Errors of the shared terminal (CommandFailed, TerminalView.Done,
// ShareEnded).
var (
	ErrShareRunning   = errors.New("a terminal is already shared (one at a time): stop it first")
	ErrNoShare        = errors.New("no terminal is shared")
	ErrShareNeedsPeer = errors.New("a terminal is shared with a connected peer: wait for the peer")
	ErrViewOpen       = errors.New("a shared terminal is already on the screen")
	ErrPeerEndedShare = errors.New("the peer closed the shared terminal")
	errControlStalled = errors.New("the peer does not read the shared terminal's messages")
)

// ReasonKeyboardDenied is what the guest is told when the host says no.
const ReasonKeyboardDenied = "the host did not allow typing"

// keyboardAsk is the question of the peer's request for the keyboard
// (asks.go keys questions by what they ask).
type keyboardAsk struct{}

// Data types of the terminal package that frontends need.
type (
	// WinSize is a terminal's size in cells.
	WinSize = terminal.WinSize
	// CancelReader is a keyboard that Cancel makes return (as
	// github.com/muesli/cancelreader's): a view's input.
	CancelReader = terminal.CancelReader
)

// DetachKeyName is the key that leaves a shared terminal's view (Ctrl-]).
const DetachKeyName = terminal.DetachKeyName

// TerminalView is a terminal the frontend lends a shared terminal while
// ShowShare or WatchShare runs: its keyboard (in raw mode) and screen.
// The view ends at DetachKeyName, the end of the share, a DetachShare or
// the end of the session; Done then gets how (nil, or why it failed).
type TerminalView struct {
	In  CancelReader
	Out io.Writer
	// Size is the terminal's size now; Resized signals it changed.
	Size    func() WinSize
	Resized <-chan struct{}
	// Done gets the view's end, once; give it room for one (it is never
	// waited on).
	Done chan<- error
}

func (v TerminalView) end(err error) {
	select {
	case v.Done <- err:
	default:
	}
}

// Commands of the shared terminal.
type (
	// StartShare (host) runs Command (empty: $SHELL) in a PTY of Size and
	// offers it to the peer, read-only. A ShowShare shows it here.
	StartShare struct {
		Command []string
		Size    WinSize
	}
	// StopShare (host) ends the share (the command gets SIGHUP).
	StopShare struct{}
	// AllowTyping (host) lets the peer type into the share; RevokeTyping
	// takes it back. Answering a ShareKeyboardRequested with an Answer
	// does the same.
	AllowTyping  struct{}
	RevokeTyping struct{}
	// ShowShare (host) shows our share full-screen on View, with our
	// keys going to it, until DetachKeyName.
	ShowShare struct{ View TerminalView }
	// WatchShare (guest) attaches to the peer's share and shows it on
	// View until DetachKeyName: our keys reach it once the host allows.
	WatchShare struct{ View TerminalView }
	// DetachShare ends the view ShowShare or WatchShare runs.
	DetachShare struct{}
	// AskKeyboard (guest) asks the host to let us type.
	AskKeyboard struct{}
)

func (StartShare) isCommand()   {}
func (StopShare) isCommand()    {}
func (AllowTyping) isCommand()  {}
func (RevokeTyping) isCommand() {}
func (ShowShare) isCommand()    {}
func (WatchShare) isCommand()   {}
func (DetachShare) isCommand()  {}
func (AskKeyboard) isCommand()  {}

// terminalShares is the shared terminal on a link: our share (out), the
// peer's (in) and the one local view. The session goroutine starts and
// stops things; the goroutines of shares and views report here, under mu.
type terminalShares struct {
	c      *controller
	conn   *dilation.Conn
	offers *dilation.Listener // the peer's shares
	views  *dilation.Listener // the peer's views of ours
	ctx    context.Context    // the session's, once connected

	mu         sync.Mutex
	out        *outgoingShare
	in         *incomingShare
	viewCancel context.CancelFunc // the local view's, nil if none
}

// outgoingShare is ours: the PTY and its control link to the peer.
type outgoingShare struct {
	host    *terminal.Host
	screen  *terminal.LocalScreen
	command string
	ctrl    *controlLink

	// under terminalShares.mu
	mayType  bool
	asking   bool      // a keyboard question waits
	askID    int64     // its ID, once asked
	lastAsk  time.Time // the last request looked at
	viewing  bool      // the peer's view is attached
	dropped  int       // bytes dropped since the last report
	lastDrop time.Time
}

// incomingShare is the peer's.
type incomingShare struct {
	ctrl *controlLink
	// under terminalShares.mu
	command string
	offered bool
	mayType bool
}

func startTerminal(c *controller, conn *dilation.Conn, _ Peer) (started, error) {
	offers, err := conn.Listen(terminalShareProto)
	if err != nil {
		return nil, err
	}
	views, err := conn.Listen(terminalViewProto)
	if err != nil {
		offers.Close()
		return nil, err
	}
	return &terminalShares{c: c, conn: conn, offers: offers, views: views}, nil
}

func (t *terminalShares) connected(ctx context.Context) {
	c := t.c
	t.ctx = ctx
	c.term = t
	c.wg.Add(2)
	go func() { defer c.wg.Done(); t.acceptOffers(ctx) }()
	go func() { defer c.wg.Done(); t.acceptViews(ctx) }()
}

func (t *terminalShares) stop() {
	t.offers.Close()
	t.views.Close()
	t.mu.Lock()
	out, in, cancel := t.out, t.in, t.viewCancel
	t.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if out != nil {
		out.host.Close()
	}
	if in != nil {
		in.ctrl.close()
	}
}

// terminalCommand carries out one of the shared terminal's commands, in
// the session goroutine.
func (c *controller) terminalCommand(cmd Command) {
	t := c.term
	if t == nil {
		err := ErrShareNeedsPeer
		if c.conn != nil {
			err = peerLacks(c.peer, FeatureTerminal)
		}
		switch cmd := cmd.(type) {
		case ShowShare:
			cmd.View.end(err)
		case WatchShare:
			cmd.View.end(err)
		default:
			c.emit(CommandFailed{Err: err})
		}
		return
	}
	switch cmd := cmd.(type) {
	case StartShare:
		t.startShare(cmd)
	case StopShare:
		if o := t.outgoing(); o != nil {
			c.wg.Add(1)
			go func() { defer c.wg.Done(); o.host.Close() }()
		} else {
			c.emit(CommandFailed{Err: ErrNoShare})
		}
	case AllowTyping, RevokeTyping:
		if o := t.outgoing(); o != nil {
			_, allow := cmd.(AllowTyping)
			t.setTyping(o, allow)
		} else {
			c.emit(CommandFailed{Err: ErrNoShare})
		}
	case AskKeyboard:
		t.mu.Lock()
		in := t.in
		ok := in != nil && in.offered
		t.mu.Unlock()
		if !ok {
			c.emit(CommandFailed{Err: ErrNoShare})
			return
		}
		in.ctrl.send(controlMsg{Kind: kindAskKeyboard})
	case ShowShare:
		t.show(cmd.View)
	case WatchShare:
		t.watch(cmd.View)
	case DetachShare:
		t.mu.Lock()
		cancel := t.viewCancel
		t.mu.Unlock()
		if cancel != nil {
			cancel()
		}
	}
}

func (t *terminalShares) outgoing() *outgoingShare {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.out
}

// shareName is what a share is called for people: the command, or the
// shell's name.
func shareName(argv []string) string {
	if len(argv) == 0 {
		shell := "sh"
		if s := filepath.Base(strings.TrimSpace(os.Getenv("SHELL"))); s != "" && s != "." && s != "/" {
			shell = s
		}
		return shell
	}
	return strings.Join(argv, " ")
}

// cleanShareName is a peer's name for its share, safe to show.
func cleanShareName(s string) string {
	s = sanitize.Line(s)
	if r := []rune(s); len(r) > maxShareCommand {
		s = string(r[:maxShareCommand-1]) + "…"
	}
	return s
}

func (t *terminalShares) startShare(cmd StartShare) {
	c := t.c
	if t.outgoing() != nil {
		c.emit(CommandFailed{Err: ErrShareRunning})
		return
	}
	sub, err := t.conn.Open(t.ctx, terminalShareProto)
	if err != nil {
		c.emit(CommandFailed{Err: err})
		return
	}
	o := &outgoingShare{screen: &terminal.LocalScreen{}, command: shareName(cmd.Command), ctrl: newControlLink(sub)}
	o.host, err = terminal.StartHost(terminal.HostConfig{
		Command: cmd.Command, ReadOnly: true, Size: cmd.Size, Local: o.screen,
		OnEvent: func(e terminal.Event) { t.hostEvent(o, e) },
	})
	if err != nil {
		sub.Close()
		c.emit(CommandFailed{Err: err})
		return
	}
	t.mu.Lock()
	t.out = o
	t.mu.Unlock()
	ctx := t.ctx
	c.wg.Add(2)
	go func() { defer c.wg.Done(); o.ctrl.writeLoop(ctx) }()
	go func() { defer c.wg.Done(); t.runOutgoing(ctx, o) }()
}

// runOutgoing offers our share and serves its control link until the
// command ends, the peer closes the link or the session ends.
func (t *terminalShares) runOutgoing(ctx context.Context, o *outgoingShare) {
	c := t.c
	o.ctrl.send(controlMsg{Kind: kindOffer, Command: o.command})
	c.emit(ShareOffered{Outgoing: true, Command: o.command})
	fromPeer := make(chan error, 1)
	c.wg.Add(1)
	go func() { defer c.wg.Done(); fromPeer <- t.readGuestControl(ctx, o) }()
	var err error
	select {
	case <-o.host.Done():
	case err = <-fromPeer:
		if err == nil {
			err = ErrPeerEndedShare
		}
	case <-o.ctrl.failed:
		err = errControlStalled
	case <-ctx.Done():
	}
	o.host.Close()
	o.ctrl.close()
	t.mu.Lock()
	t.out = nil
	askID := o.askID
	t.mu.Unlock()
	if askID != 0 {
		c.asks.decide(askID, forwards.Deny, nil, true)
	}
	c.emit(ShareEnded{Outgoing: true, Err: err})
}

// readGuestControl reads the guest's control messages: nil when it
// closes the link.
func (t *terminalShares) readGuestControl(ctx context.Context, o *outgoingShare) error {
	for {
		m, err := readControl(o.ctrl.r)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if m.Kind == kindAskKeyboard {
			t.keyboardAsked(ctx, o)
		}
	}
}

// keyboardAsked puts the guest's request to the user, one at a time and
// at most once per keyboardAskInterval.
func (t *terminalShares) keyboardAsked(ctx context.Context, o *outgoingShare) {
	t.mu.Lock()
	if o.mayType {
		t.mu.Unlock()
		o.ctrl.send(controlMsg{Kind: kindTyping, Allowed: true})
		return
	}
	if o.asking || time.Since(o.lastAsk) < keyboardAskInterval {
		t.mu.Unlock()
		return
	}
	o.asking, o.lastAsk = true, time.Now()
	t.mu.Unlock()
	c := t.c
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		d, reason := c.asks.askAbout(ctx, keyboardAsk{}, func(id int64) Event {
			t.mu.Lock()
			o.askID = id
			t.mu.Unlock()
			return ShareKeyboardRequested{ID: id}
		})
		t.mu.Lock()
		o.asking, o.askID = false, 0
		t.mu.Unlock()
		if d != forwards.Deny {
			t.setTyping(o, true)
			return
		}
		why := ReasonKeyboardDenied
		if reason != nil {
			why += ": " + reason.Error()
		}
		o.ctrl.send(controlMsg{Kind: kindTyping, Reason: why})
	}()
}

// setTyping lets the peer type into o, or stops it; a question about the
// keyboard still waiting is withdrawn (the host decided).
func (t *terminalShares) setTyping(o *outgoingShare, allowed bool) {
	t.mu.Lock()
	if t.out != o {
		t.mu.Unlock()
		return
	}
	changed := o.mayType != allowed
	o.mayType = allowed
	askID := o.askID
	t.mu.Unlock()
	// The host's PTY decides first: revoked keys are dropped from now on,
	// whatever the guest has heard yet.
	o.host.SetReadOnly(!allowed)
	msg := controlMsg{Kind: kindTyping, Allowed: allowed}
	if !allowed {
		msg.Reason = "the host took the keyboard back"
	}
	o.ctrl.send(msg)
	if askID != 0 {
		d := forwards.Deny
		if allowed {
			d = forwards.AllowOnce
		}
		t.c.asks.decide(askID, d, nil, true)
	}
	if changed {
		t.c.emit(ShareTyping{Outgoing: true, Allowed: allowed})
	}
}

// hostEvent turns our host's events into the session's.
func (t *terminalShares) hostEvent(o *outgoingShare, e terminal.Event) {
	switch e := e.(type) {
	case terminal.GuestJoined:
		t.c.emit(ShareGuestJoined{})
	case terminal.GuestLeft:
		t.c.emit(ShareGuestLeft{Err: e.Err})
	case terminal.InputDropped:
		t.mu.Lock()
		o.dropped += e.Bytes
		now := time.Now()
		report := now.Sub(o.lastDrop) >= inputDroppedInterval
		n := o.dropped
		if report {
			o.dropped, o.lastDrop = 0, now
		}
		t.mu.Unlock()
		if report {
			t.c.emit(ShareInputDropped{Bytes: n, Reason: e.Reason})
		}
	}
}

// acceptViews attaches the peer's views to our share, one at a time.
func (t *terminalShares) acceptViews(ctx context.Context) {
	c := t.c
	for {
		sub, err := t.views.Accept(ctx)
		if err != nil {
			return
		}
		t.mu.Lock()
		o := t.out
		ok := o != nil && !o.viewing
		if ok {
			o.viewing = true
		}
		t.mu.Unlock()
		if !ok {
			sub.Close()
			continue
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			o.host.Attach(ctx, terminal.NewStreamConn(sub))
			t.mu.Lock()
			o.viewing = false
			t.mu.Unlock()
		}()
	}
}

// acceptOffers takes the peer's shares, one at a time.
func (t *terminalShares) acceptOffers(ctx context.Context) {
	c := t.c
	for {
		sub, err := t.offers.Accept(ctx)
		if err != nil {
			return
		}
		t.mu.Lock()
		busy := t.in != nil
		var in *incomingShare
		if !busy {
			in = &incomingShare{ctrl: newControlLink(sub)}
			t.in = in
		}
		t.mu.Unlock()
		if busy {
			sub.Close()
			continue
		}
		c.wg.Add(2)
		go func() { defer c.wg.Done(); in.ctrl.writeLoop(ctx) }()
		go func() { defer c.wg.Done(); t.runIncoming(ctx, in) }()
	}
}

// runIncoming reads the peer's share's control messages until it ends.
func (t *terminalShares) runIncoming(ctx context.Context, in *incomingShare) {
	c := t.c
	stop := context.AfterFunc(ctx, in.ctrl.close)
	defer stop()
	timer := time.AfterFunc(offerReadTimeout, in.ctrl.close)
	m, err := readControl(in.ctrl.r)
	timer.Stop()
	if err != nil || m.Kind != kindOffer {
		in.ctrl.close()
		t.mu.Lock()
		t.in = nil
		t.mu.Unlock()
		c.cfg.Logger.Info("shared terminal: the peer's share had no offer", "err", err, "kind", m.Kind)
		return
	}
	name := cleanShareName(m.Command)
	t.mu.Lock()
	in.command, in.offered = name, true
	t.mu.Unlock()
	c.emit(ShareOffered{Command: name})
	for {
		m, err = readControl(in.ctrl.r)
		if err != nil {
			break
		}
		if m.Kind != kindTyping {
			continue
		}
		t.mu.Lock()
		changed := in.mayType != m.Allowed
		in.mayType = m.Allowed
		t.mu.Unlock()
		if changed || !m.Allowed {
			c.emit(ShareTyping{Allowed: m.Allowed, Reason: cleanShareName(m.Reason)})
		}
	}
	in.ctrl.close()
	t.mu.Lock()
	t.in = nil
	t.mu.Unlock()
	switch {
	case in.ctrl.stalled():
		err = errControlStalled
	case errors.Is(err, io.EOF) || ctx.Err() != nil || in.ctrl.closedHere():
		err = nil
	}
	c.emit(ShareEnded{Err: err})
}

// startView starts the one local view, or says why not.
func (t *terminalShares) startView(v TerminalView, run func(ctx context.Context) error) {
	t.mu.Lock()
	if t.viewCancel != nil {
		t.mu.Unlock()
		v.end(ErrViewOpen)
		return
	}
	ctx, cancel := context.WithCancel(t.ctx)
	t.viewCancel = cancel
	t.mu.Unlock()
	c := t.c
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := run(ctx)
		if errors.Is(err, terminal.ErrDetached) || ctx.Err() != nil {
			err = nil // detached, by key or command, or the session ended
		}
		cancel()
		t.mu.Lock()
		t.viewCancel = nil
		t.mu.Unlock()
		v.end(err)
	}()
}

func guestConfig(v TerminalView) terminal.GuestConfig {
	return terminal.GuestConfig{In: v.In, Out: v.Out, Size: v.Size, Resized: v.Resized}
}

// show is ShowShare.
func (t *terminalShares) show(v TerminalView) {
	o := t.outgoing()
	if o == nil {
		v.end(ErrNoShare)
		return
	}
	t.startView(v, func(ctx context.Context) error {
		return o.screen.Show(ctx, o.host, guestConfig(v))
	})
}

// watch is WatchShare.
func (t *terminalShares) watch(v TerminalView) {
	t.mu.Lock()
	ok := t.in != nil && t.in.offered
	t.mu.Unlock()
	if !ok {
		v.end(ErrNoShare)
		return
	}
	t.startView(v, func(ctx context.Context) error {
		sub, err := t.conn.Open(ctx, terminalViewProto)
		if err != nil {
			return err
		}
		return terminal.RunGuest(ctx, terminal.NewStreamConn(sub), guestConfig(v))
	})
}

// controlLink is one share's control subchannel: reads by its owner's
// goroutine, writes queued (bounded) to a goroutine of their own, so
// that a peer that stops reading blocks no one.
type controlLink struct {
	r      io.Reader
	sub    io.Closer
	w      io.Writer
	queue  chan controlMsg
	failed chan struct{} // closed when the queue overflowed
	once   sync.Once
	fail   sync.Once
	closed chan struct{}
}

func newControlLink(sub io.ReadWriteCloser) *controlLink {
	return &controlLink{r: sub, w: sub, sub: sub, queue: make(chan controlMsg, controlQueue),
		failed: make(chan struct{}), closed: make(chan struct{})}
}

// send queues m; a full queue fails the link.
func (l *controlLink) send(m controlMsg) {
	select {
	case l.queue <- m:
	case <-l.closed:
	default:
		l.fail.Do(func() { close(l.failed) })
		l.close()
	}
}

func (l *controlLink) writeLoop(ctx context.Context) {
	for {
		select {
		case m := <-l.queue:
			frame, err := encodeControl(m)
			if err == nil {
				_, err = l.w.Write(frame)
			}
			if err != nil {
				l.close()
				return
			}
		case <-l.closed:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (l *controlLink) close() {
	l.once.Do(func() {
		close(l.closed)
		l.sub.Close()
	})
}

// closedHere: this side closed the link (a read's error is ours).
func (l *controlLink) closedHere() bool {
	select {
	case <-l.closed:
		return true
	default:
		return false
	}
}

// stalled: the link failed because the peer did not read.
func (l *controlLink) stalled() bool {
	select {
	case <-l.failed:
		return true
	default:
		return false
	}
}
