// Package session runs one gander pairing. Start returns a *Session: Do
// gives it Commands (set or allocate a code, add or remove a forward,
// answer the peer's request, send a file, close), Events reports what
// happens, in order, and Wait returns how it ended. The TUI, the plain
// line output and the --json mode all sit on this one API, and import
// nothing below it: connection status and forward events are session's
// own types (events.go).
//
// What the peer supports is read once from its version message
// (capabilities.go: PeerConnected.Peer) and decides which of the
// subprotocols in the table of subprotocols.go (forwards, files) start;
// the controller knows them only through that table.
//
// Who owns what:
//   - The session goroutine (controller.session, then run, started by
//     Start) owns the wormhole, the dilated connection, the forwarder and
//     every controller field that changes: the services named so far
//     (locals, remotes), the offers and sends waiting for the peer, and
//     the connection once set up. Nothing else reads or writes them;
//     other goroutines tell it things through channels (the setup's
//     result, offers that failed, the peer's goodbye) and Do through the
//     command queue. Config is copied at Start and read-only after the
//     session goroutine fills in its defaults, before it starts anything.
//   - Goroutines the session goroutine starts, each stopped by its
//     context and waited for before Closed: the setup (code, key,
//     Dilation; waited for through its result), and under controller.wg
//     the mailbox server's and the link's status reporters, the traffic
//     reporter, one per offer of ours, one per
//     ListNameplates, the file-offer listener, its refusal reporter and
//     one per transfer. The goodbye reader has a context of its own, as it
//     must outlive an interrupt; it is stopped before the wormhole closes.
//   - State those goroutines share has its own lock, beside the code
//     that needs it: forwards.Policy (the services the peer may use, read
//     by the forwarder's goroutines), askQueue (the peer's questions,
//     asked from the forwarder's goroutines, answered by commands),
//     fileTransfers (the transfers under way and their budgets), and the
//     two queues of Session (commands in, events out).
//   - Events are queued, up to MaxQueuedEvents, without blocking whoever
//     reports them; beyond that the reporter waits for the reader (as a
//     slow terminal slowed the session before). One pump goroutine per
//     session hands them to Events in order, and ends after Closed has
//     been read. Commands are queued up to MaxQueuedCommands; beyond that
//     Do refuses them with ErrTooManyCommands rather than wait.
package session

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/gander-pair/gander/dilation"
	"github.com/gander-pair/gander/forwards"
	"github.com/gander-pair/gander/wormhole"
)

// Config describes a session.
type Config struct {
	MailboxURL   string
	TransitRelay string // "tcp:HOST:PORT"; empty for none
	NoDirect     bool   // relay only
	// Code joins an existing session at once; empty waits for an
	// AllocateCode or SetCode command.
	Code       string
	CodeLength int
	Locals     []Local
	Remotes    []Remote
	// AllowListen are service-name patterns (path.Match) the peer may
	// make us listen for without asking (--allow-listen).
	AllowListen []string
	// AskPeer: a listen request the configuration does not allow becomes
	// a PermissionRequest event, answered by an Answer command. Without
	// it such requests are refused. Repeats of a waiting request share
	// its question; at most MaxPendingAsks wait at once.
	AskPeer bool
	// AskTimeout is how long a PermissionRequest waits for its Answer
	// before it is denied and withdrawn; zero means DefaultAskTimeout.
	AskTimeout time.Duration
	// SaveDir is where accepted files go by default.
	SaveDir string
	// AcceptFiles accepts every file a gander peer offers into SaveDir
	// without asking; otherwise offers are asked about (AskPeer) or
	// refused.
	AcceptFiles bool
	// AskFiles asks about offers (TransferOffered, answered by
	// AcceptTransfer or RefuseTransfer) without AskPeer's listen
	// questions: gander --json's controller.
	AskFiles bool
	// FileAnswerTimeout is how long an offer waits for its answer before
	// it is refused (the peer is told nobody answered); zero is 10 min.
	FileAnswerTimeout time.Duration
	// FileLimits bound what the peer's files may take.
	FileLimits    FileLimits
	ClientVersion string
	Logger        *slog.Logger
	// CloseTimeout bounds the wait for the peer's goodbye after an
	// interrupt, and for the mailbox to close; zero means 3 s.
	CloseTimeout time.Duration
}

// Event is something the session reports: one of the types below, of
// events.go (the connection, the forwards) or of transfers.go (files).
type Event interface{ isEvent() }

type (
	// Welcome: connected to the mailbox server, which said MOTD.
	Welcome struct{ MOTD string }
	// Nameplates answers ListNameplates: the nameplates in use on the
	// server, for completing a code.
	Nameplates struct{ Names []string }
	// CodeReady carries the code to give the peer (allocated or set).
	CodeReady struct{ Code string }
	// PeerConnected: the peer proved the code and the link is up.
	PeerConnected struct {
		Verifier []byte
		// PeerVersions is the peer's app_versions (fowl sends its features).
		PeerVersions json.RawMessage
		// Peer is what they say: fowl or gander, and its features, which
		// decide what the session runs with the peer (and so what a
		// frontend should offer: sending files wants Peer.Accepts(FeatureFiles)).
		Peer Peer
	}
	// OfferFailed: a --remote service could not be set up.
	OfferFailed struct {
		Service string
		Err     error
	}
	// PermissionRequest: the peer asks us to listen for a service nothing
	// allows. Nothing is opened until an Answer with the same ID. The
	// peer making the same request again (same service and port) while
	// it waits gives no new event: the one Answer decides them all.
	PermissionRequest struct {
		ID      int64
		Request ListenRequest
	}
	// PermissionWithdrawn: a PermissionRequest no longer needs an answer
	// (the peer gave up, nobody answered within Config.AskTimeout, a
	// DenyAll denied it, or the session is ending).
	PermissionWithdrawn struct{ ID int64 }
	// CommandFailed: a command could not be carried out; the session
	// goes on.
	CommandFailed struct{ Err error }
	// Traffic is the forwarder's byte counters, emitted every
	// TrafficInterval while they move. A connection's last bytes come
	// in its ConnectionClosed.
	Traffic struct {
		Services    []ServiceStats
		Connections []ConnectionStats // the open ones, oldest first
	}
	// PeerClosing: the peer said goodbye.
	PeerClosing struct{}
	// ServerStatus: the connection to the mailbox server was lost, a
	// reconnection attempt failed, or it is back. While it is down a link
	// that is up goes on (Dilation needs the server only to reconnect),
	// but a peer still to come cannot find us and a lost link cannot be
	// made again; the session retries every few seconds for as long as it
	// runs. (Before the first connection there is no session: Start's
	// Closed carries ErrMailboxUnreachable.)
	ServerStatus struct {
		Connected bool
		// While down: since when, how many attempts failed since, and
		// why the last did (nil before the first failure).
		Since       time.Time
		Attempts    int
		LastFailure error
		// Once back: how long the server was out of reach.
		Outage time.Duration
	}
	// NobodyOnCode: nobody was on the code's nameplate when we joined.
	// The peer has not come yet, or the code was used already: the
	// server forgets a nameplate once its two sides have left it, so a
	// used code looks like a new one to whoever comes third. The session
	// waits on.
	NobodyOnCode struct{ Nameplate string }
	// Closed is the last event. Err is nil after a happy end (closed by
	// command, by the peer's goodbye or by the end of Start's context,
	// with the peer there), else for errors.Is: ErrLonely (closed before
	// the peer came), ErrWrongCode (the scary mood: the codes differed),
	// ErrCodeSpoiled, ErrCloseTimeout (closed happy, but the peer did not
	// answer our goodbye), ErrLinkStopped, or what went wrong otherwise.
	// The peer leaving is a happy end (PeerClosing comes before), so
	// there is no error for it.
	Closed struct{ Err error }
)

func (Welcome) isEvent()             {}
func (Nameplates) isEvent()          {}
func (CodeReady) isEvent()           {}
func (PeerConnected) isEvent()       {}
func (OfferFailed) isEvent()         {}
func (PermissionRequest) isEvent()   {}
func (PermissionWithdrawn) isEvent() {}
func (CommandFailed) isEvent()       {}
func (Traffic) isEvent()             {}
func (PeerClosing) isEvent()         {}
func (ServerStatus) isEvent()        {}
func (NobodyOnCode) isEvent()        {}
func (Closed) isEvent()              {}
func (LinkStatus) isEvent()          {}
func (ServiceListening) isEvent()    {}
func (AwaitingConnect) isEvent()     {}
func (ForwardRefused) isEvent()      {}
func (ForwardRemoved) isEvent()      {}
func (ConnectionOpened) isEvent()    {}
func (ConnectionClosed) isEvent()    {}
func (ForwardProblem) isEvent()      {}
func (TransferOffered) isEvent()     {}
func (TransferProgress) isEvent()    {}
func (TransferFinished) isEvent()    {}
func (TransferAccepted) isEvent()    {}
func (TransfersRefused) isEvent()    {}
func (PartialsRemoved) isEvent()     {}

// Command is an instruction to a running session.
type Command interface{ isCommand() }

type (
	// AllocateCode allocates a code of Length words (0: Config.CodeLength).
	AllocateCode struct{ Length int }
	// SetCode joins the session with a known code.
	SetCode struct{ Code string }
	// ListNameplates asks the server which nameplates are in use; the
	// answer is a Nameplates event.
	ListNameplates struct{}
	// AddLocal lets the peer make us listen for a service (--local).
	AddLocal struct{ Local Local }
	// AddRemote offers one of our services to the peer (--remote); it is
	// sent once the peer is connected.
	AddRemote struct{ Remote Remote }
	// Remove stops a service, ours or the peer's (a ForwardRemoved follows).
	Remove struct{ Service string }
	// Answer decides a PermissionRequest. Port is where to listen if it
	// allows: 0 the request's port (any free one if it named none),
	// AnyPort any free one, else that port.
	Answer struct {
		ID       int64
		Decision Decision
		Port     int
	}
	// DenyAll denies every PermissionRequest still waiting (each gets a
	// PermissionWithdrawn); ForSession denies every later one as well,
	// without asking.
	DenyAll struct{ ForSession bool }
	// Ping asks for a Dilation ping (fowld's "ping"); see ErrPingUnsupported.
	Ping struct{}
	// Close ends the session politely: our goodbye, then up to Timeout
	// for the peer's. Before the peer came it just closes.
	Close struct{ Timeout time.Duration }
)

func (AllocateCode) isCommand()   {}
func (SetCode) isCommand()        {}
func (ListNameplates) isCommand() {}
func (AddLocal) isCommand()       {}
func (AddRemote) isCommand()      {}
func (Remove) isCommand()         {}
func (Answer) isCommand()         {}
func (DenyAll) isCommand()        {}
func (Ping) isCommand()           {}
func (Close) isCommand()          {}

// Session is a running pairing; Start makes one.
type Session struct {
	commands commandQueue
	events   eventQueue
	done     chan struct{} // closed once err is set
	err      error         // Closed.Err
}

// ErrSessionEnded is what Do returns once the session has ended.
var ErrSessionEnded = errors.New("the session has ended")

// ErrTooManyCommands is what Do returns while MaxQueuedCommands wait for
// the session (it is busy, e.g. saying goodbye): the command is dropped.
var ErrTooManyCommands = errors.New("the session is busy: too many commands waiting")

// Bounds on the two queues between a session and its frontend.
const (
	// MaxQueuedCommands bounds the commands given to Do and not yet
	// taken by the session goroutine.
	MaxQueuedCommands = 1024
	// MaxQueuedEvents bounds the events reported and not yet read from
	// Events; beyond it the reporting goroutine waits for the reader.
	MaxQueuedEvents = 4096
)

// Do hands the session a command. It never blocks and is safe from any
// goroutine: commands are queued and carried out in order. Once the
// session has ended it does nothing and returns ErrSessionEnded (commands
// still queued then are dropped, unanswered); while MaxQueuedCommands
// wait it returns ErrTooManyCommands.
func (s *Session) Do(cmd Command) error { return s.commands.push(cmd) }

// Events delivers every event in order; it is closed after the last,
// Closed. Read it until it is closed: once MaxQueuedEvents wait, the
// session waits for its reader, and the goroutine handing them over ends
// only after Closed.
func (s *Session) Events() <-chan Event { return s.events.out }

// Wait waits for the session to end and returns Closed's Err: nil after
// a happy end.
func (s *Session) Wait() error {
	<-s.done
	return s.err
}

// commandQueue holds the commands Do gave and the session has yet to
// take, up to MaxQueuedCommands, so that Do never waits for a busy
// session goroutine (it blocks while saying goodbye, up to the Close
// timeout).
type commandQueue struct {
	mu    sync.Mutex
	items []Command
	ended bool
	more  chan struct{} // a token while items is not empty
}

func newCommandQueue() commandQueue { return commandQueue{more: make(chan struct{}, 1)} }

func (q *commandQueue) push(cmd Command) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ended {
		return ErrSessionEnded
	}
	if len(q.items) >= MaxQueuedCommands {
		return ErrTooManyCommands
	}
	q.items = append(q.items, cmd)
	q.signal()
	return nil
}

// pop takes the next command, after a token from more.
func (q *commandQueue) pop() (Command, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return nil, false
	}
	cmd := q.items[0]
	q.items[0] = nil
	q.items = q.items[1:]
	if len(q.items) > 0 {
		q.signal()
	}
	return cmd, true
}

func (q *commandQueue) signal() {
	select {
	case q.more <- struct{}{}:
	default:
	}
}

// end refuses every later command and drops those waiting.
func (q *commandQueue) end() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ended, q.items = true, nil
}

// eventQueue holds the events reported and not yet read from out, up to
// MaxQueuedEvents: until then emit does not block, so the goroutines that
// report (the forwarder's, the transfers') do not wait for a reader; past
// it they wait for room. pump hands them to out in order and closes it
// after Closed; nothing is queued after Closed.
type eventQueue struct {
	mu    sync.Mutex
	items []Event
	ended bool          // Closed is queued
	more  chan struct{} // a token while items is not empty
	room  *sync.Cond    // signalled when pump takes the items
	out   chan Event
}

func newEventQueue() eventQueue {
	return eventQueue{more: make(chan struct{}, 1), out: make(chan Event)}
}

func (q *eventQueue) emit(ev Event) {
	if ev == nil {
		return
	}
	q.mu.Lock()
	if q.room == nil {
		q.room = sync.NewCond(&q.mu)
	}
	for len(q.items) >= MaxQueuedEvents && !q.ended {
		q.room.Wait()
	}
	if q.ended {
		q.mu.Unlock()
		return
	}
	q.items = append(q.items, ev)
	_, q.ended = ev.(Closed)
	q.mu.Unlock()
	select {
	case q.more <- struct{}{}:
	default:
	}
}

// pump runs in its own goroutine until it has delivered Closed.
func (q *eventQueue) pump() {
	defer close(q.out)
	for range q.more {
		q.mu.Lock()
		items, ended := q.items, q.ended
		q.items = nil
		if q.room != nil {
			q.room.Broadcast()
		}
		q.mu.Unlock()
		for _, ev := range items {
			q.out <- ev
		}
		if ended {
			return
		}
	}
}

// TrafficInterval is how often a session reports Traffic.
const TrafficInterval = 250 * time.Millisecond

// closingMessage is fowl's goodbye, an application message in the
// wormhole: each side sends it, waits for the other's, then closes.
type closingMessage struct {
	Closing *int `json:"closing"`
}

// openWormhole fills in cfg's defaults, connects to the mailbox with fowl's
// app id and gander's version fields, and reports the welcome.
func openWormhole(ctx context.Context, cfg *Config, emit func(Event)) (*wormhole.Wormhole, error) {
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = 3 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w, err := wormhole.New(ctx, wormhole.Config{
		MailboxURL:    cfg.MailboxURL,
		AppID:         forwards.AppID,
		AppVersions:   AppVersions(),
		VersionExtra:  dilation.GanderVersionFields(),
		ClientVersion: cfg.ClientVersion,
		Logger:        cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	emit(Welcome{MOTD: w.MOTD()})
	return w, nil
}

// reportServer turns the mailbox connection's changes into ServerStatus
// events until ctx ends.
func reportServer(ctx context.Context, w *wormhole.Wormhole, emit func(Event)) {
	for {
		select {
		case st := <-w.MailboxStatus():
			emit(ServerStatus{Connected: st.Connected, Since: st.Since, Attempts: st.Attempts,
				LastFailure: st.LastErr, Outage: st.Outage})
		case <-ctx.Done():
			return
		}
	}
}

// nobodyCheckTimeout bounds the look at the server's nameplates before
// joining: the hint is worth a moment, not a wait.
const nobodyCheckTimeout = 5 * time.Second

// nameplateInUse reports whether someone is on code's nameplate, asking
// the server; when it cannot tell (no answer in time, a code without a
// nameplate) it says yes, so that no hint is given.
func nameplateInUse(ctx context.Context, w *wormhole.Wormhole, nameplate string) bool {
	ctx, cancel := context.WithTimeout(ctx, nobodyCheckTimeout)
	defer cancel()
	names, err := w.ListNameplates(ctx)
	return err != nil || nameplate == "" || slices.Contains(names, nameplate)
}

func reportStatus(ctx context.Context, conn *dilation.Conn, emit func(Event)) {
	for {
		select {
		case st := <-conn.StatusUpdates():
			emit(linkStatus(st))
		case <-ctx.Done():
			return
		}
	}
}

// waitForClosing reads application messages until the peer's goodbye;
// other messages are ignored, as fowl ignores them.
func waitForClosing(ctx context.Context, w *wormhole.Wormhole) bool {
	for {
		msg, err := w.Receive(ctx)
		if err != nil {
			return false
		}
		var m closingMessage
		if json.Unmarshal(msg, &m) == nil && m.Closing != nil {
			return true
		}
	}
}

func sendClosing(w *wormhole.Wormhole) error {
	zero := 0
	msg, _ := json.Marshal(closingMessage{Closing: &zero})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return w.Send(ctx, msg)
}

// sayGoodbye sends our goodbye and waits (bounded) for the peer's.
func sayGoodbye(w *wormhole.Wormhole, peerClosing <-chan struct{}, timeout time.Duration) error {
	if err := sendClosing(w); err != nil {
		return err
	}
	select {
	case <-peerClosing:
	case <-time.After(timeout):
	}
	return nil
}
