// Package session runs one gander pairing: one goroutine (Run) owns the
// wormhole, the dilated connection and the forwarder. It takes Commands
// (set or allocate a code, add or remove a forward, answer the peer's
// request, close) and reports what happens as Events. The TUI, the plain
// line output and the --json mode all sit on this one API.
package session

import (
	"context"
	"encoding/json"
	"log/slog"
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
	Locals     []forwards.Local
	Remotes    []forwards.Remote
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
	// FileLimits bound what the peer's files may take.
	FileLimits    FileLimits
	ClientVersion string
	Logger        *slog.Logger
	// CloseTimeout bounds the wait for the peer's goodbye after an
	// interrupt, and for the mailbox to close; zero means 3 s.
	CloseTimeout time.Duration
}

// Event is something the session reports: one of the types below, a
// dilation.Status or a forwards.Event.
type Event any

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
		Request forwards.ListenRequest
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
	// in its forwards.ConnectionClosed.
	Traffic struct {
		Services    []forwards.ServiceStats
		Connections []forwards.ConnectionStats // the open ones, oldest first
	}
	// PeerClosing: the peer said goodbye.
	PeerClosing struct{}
	// Closed is the last event: the wormhole closed with Result "happy",
	// "lonely", or what went wrong, which is Err (nil when happy or
	// lonely) for errors.Is: ErrCodeSpoiled, ErrWrongCode, ...
	Closed struct {
		Result string
		Err    error
	}
)

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
	AddLocal struct{ Local forwards.Local }
	// AddRemote offers one of our services to the peer (--remote); it is
	// sent once the peer is connected.
	AddRemote struct{ Remote forwards.Remote }
	// Remove stops a service, ours or the peer's (forwards.Forwarder.Remove).
	Remove struct{ Service string }
	// Answer decides a PermissionRequest.
	Answer struct {
		ID       int64
		Decision forwards.Decision
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
		AppVersions:   forwards.AppVersions(),
		VersionExtra:  dilation.VersionFields(),
		ClientVersion: cfg.ClientVersion,
		Logger:        cfg.Logger,
	})
	if err != nil {
		return nil, err
	}
	emit(Welcome{MOTD: w.MOTD()})
	return w, nil
}

func reportStatus(ctx context.Context, conn *dilation.Conn, emit func(Event)) {
	for {
		select {
		case st := <-conn.StatusUpdates():
			emit(st)
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
