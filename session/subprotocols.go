package session

import (
	"context"
	"reflect"

	"github.com/gander-pair/gander/dilation"
	"github.com/gander-pair/gander/forwards"
	"github.com/gander-pair/gander/session/transfer"
)

// subprotocols is every subprotocol the session runs over the dilated
// connection, in the order they start (and the reverse of their stop).
// The controller knows them only through this table. A new one (the
// shared terminal next) adds:
//   - its feature and what it is, in capabilities.go (AppVersions then
//     advertises it, and a peer must list it for it to start);
//   - its commands and events, sealed (isCommand, isEvent), in a file of
//     its own beside transfers.go;
//   - a row here, and in that file its start (Listen for its Dilation
//     subprotocol, or its package's Start), the started it returns
//     (connected, stop), its handle and, if commands wait for the peer,
//     its refuse.
//
// Frontends offer it when PeerConnected.Peer.Accepts its feature.
var subprotocols = []*subprotocol{
	{
		name:     "forwards",
		feature:  FeatureForwards,
		listens:  []string{"fowl-commands", "fowl"},
		start:    startForwards,
		commands: []Command{AddLocal{}, AddRemote{}, Remove{}, Answer{}, DenyAll{}},
		handle:   (*controller).forwardsCommand,
		events: []Event{ServiceListening{}, AwaitingConnect{}, ForwardRefused{}, ForwardRemoved{},
			ConnectionOpened{}, ConnectionClosed{}, ForwardProblem{}, Traffic{}, OfferFailed{},
			PermissionRequest{}, PermissionWithdrawn{}},
	},
	{
		name:     "files",
		feature:  FeatureFiles,
		listens:  []string{transfer.Subprotocol},
		start:    startFiles,
		commands: []Command{SendFiles{}, AcceptTransfer{}, RefuseTransfer{}, CancelTransfer{}},
		handle:   (*controller).filesCommand,
		refuse:   refuseFiles,
		events: []Event{TransferOffered{}, TransferProgress{}, TransferFinished{}, TransferAccepted{},
			TransfersRefused{}, PartialsRemoved{}},
	},
	{
		name:    "terminal",
		feature: FeatureTerminal,
		listens: []string{terminalShareProto, terminalViewProto},
		start:   startTerminal,
		commands: []Command{StartShare{}, StopShare{}, AllowTyping{}, RevokeTyping{}, ShowShare{},
			WatchShare{}, DetachShare{}, AskKeyboard{}},
		handle: (*controller).terminalCommand,
		events: []Event{ShareOffered{}, ShareGuestJoined{}, ShareGuestLeft{}, ShareKeyboardRequested{},
			ShareTyping{}, ShareInputDropped{}, ShareEnded{}},
	},
}

// subprotocol is one row of the table.
type subprotocol struct {
	name string
	// feature is what we advertise for it, and what the peer must
	// advertise for it to start (Peer.Accepts: fowl's forwards always).
	feature string
	// listens are the Dilation subprotocols whose subchannels it accepts
	// from the peer (for the record: start listens).
	listens []string
	// start runs in the setup goroutine as soon as the link is up, so
	// that it listens before the peer opens anything; the session
	// goroutine then calls connected on what it returns, or stop if the
	// session ended first.
	start func(c *controller, conn *dilation.Conn, peer Peer) (started, error)
	// commands are those it carries out (their zero values); handle
	// carries one out, in the session goroutine, connected or not.
	commands []Command
	handle   func(c *controller, cmd Command)
	// refuse, when the peer does not accept it, fails what waited for
	// the peer with err (its commands after fail in handle); nil if
	// nothing waits.
	refuse func(c *controller, err error)
	// events are those it emits (their zero values).
	events []Event
}

// started is a subprotocol running on a link.
type started interface {
	// connected runs in the session goroutine once it has the link: it
	// starts the goroutines reading or reporting (under c.wg, stopped by
	// ctx) and carries out what waited for the peer.
	connected(ctx context.Context)
	// stop stops it, whether connected ran or not.
	stop()
}

// commandOwner is the subprotocol that carries out cmd; nil for the
// session's own commands.
func commandOwner(cmd Command) *subprotocol {
	t := reflect.TypeOf(cmd)
	for _, s := range subprotocols {
		for _, c := range s.commands {
			if reflect.TypeOf(c) == t {
				return s
			}
		}
	}
	return nil
}

// refuseSubprotocols tells those the peer does not accept.
func (c *controller) refuseSubprotocols(peer Peer) {
	for _, s := range subprotocols {
		if !peer.Accepts(s.feature) && s.refuse != nil {
			s.refuse(c, peerLacks(peer, s.feature))
		}
	}
}

// startSubprotocols starts, in order, those the peer accepts; on an
// error it stops those started.
func (c *controller) startSubprotocols(conn *dilation.Conn, peer Peer) ([]started, error) {
	var all []started
	for _, s := range subprotocols {
		if !peer.Accepts(s.feature) {
			continue
		}
		st, err := s.start(c, conn, peer)
		if err != nil {
			stopSubprotocols(all)
			return nil, err
		}
		all = append(all, st)
	}
	return all, nil
}

// stopSubprotocols stops them in the reverse of their start.
func stopSubprotocols(all []started) {
	for i := len(all) - 1; i >= 0; i-- {
		all[i].stop()
	}
}

// forwardsStarted is the forwarder on a link.
type forwardsStarted struct {
	c  *controller
	fw *forwards.Forwarder
}

func startForwards(c *controller, conn *dilation.Conn, peer Peer) (started, error) {
	fw, err := forwards.Start(conn, forwards.Config{
		Policy:       c.policy,
		OnEvent:      func(e forwards.Event) { c.emit(forwardEvent(e)) },
		Logger:       c.cfg.Logger,
		PeerIsGander: peer.Kind == PeerGander,
	})
	if err != nil {
		return nil, err
	}
	return &forwardsStarted{c: c, fw: fw}, nil
}

func (f *forwardsStarted) connected(ctx context.Context) {
	c := f.c
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.reportTraffic(ctx, f.fw) }()
	c.fw = f.fw
	pending := c.pending
	c.pending = nil
	for _, r := range pending {
		c.offer(r)
	}
}

func (f *forwardsStarted) stop() { f.fw.Close() }

// forwardsCommand carries out one of forwards' commands.
func (c *controller) forwardsCommand(cmd Command) {
	switch cmd := cmd.(type) {
	case AddLocal:
		c.addLocal(cmd.Local)
	case AddRemote:
		c.addRemote(cmd.Remote)
	case Remove:
		c.remove(cmd.Service)
	case Answer:
		if !c.asks.answer(cmd) {
			c.emit(CommandFailed{Err: ErrNoSuchRequest})
		}
	case DenyAll:
		c.asks.denyAllPending(cmd.ForSession)
	}
}

// filesStarted is the listener for the peer's file offers on a link.
type filesStarted struct {
	c      *controller
	offers *dilation.Listener
}

func startFiles(c *controller, conn *dilation.Conn, _ Peer) (started, error) {
	offers, err := conn.Listen(transfer.Subprotocol)
	if err != nil {
		return nil, err
	}
	return &filesStarted{c: c, offers: offers}, nil
}

func (f *filesStarted) connected(ctx context.Context) {
	c := f.c
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.receiveOffers(ctx, f.offers) }()
	sends := c.pendingSends
	c.pendingSends = nil
	if sends != nil {
		c.sendFiles(sends)
	}
}

func (f *filesStarted) stop() { f.offers.Close() }

// refuseFiles fails the sends that waited for a peer that takes no files.
func refuseFiles(c *controller, err error) {
	if c.pendingSends != nil {
		c.pendingSends = nil
		c.emit(CommandFailed{Err: err})
	}
}

// filesCommand carries out one of files' commands.
func (c *controller) filesCommand(cmd Command) {
	switch cmd := cmd.(type) {
	case SendFiles:
		c.sendFiles(cmd.Paths)
	case AcceptTransfer:
		c.answerOffer(cmd.ID, offerAnswer{accept: true, dir: cmd.Dir})
	case RefuseTransfer:
		c.answerOffer(cmd.ID, offerAnswer{})
	case CancelTransfer:
		c.cancelTransfer(cmd.ID)
	}
}
