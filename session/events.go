package session

import (
	"time"

	"github.com/gander-pair/gander/dilation"
	"github.com/gander-pair/gander/forwards"
	"github.com/gander-pair/gander/session/transfer"
)

// What the session reports of the layers below it, in its own types:
// frontends import session only. The connection's status and the
// forwarder's events are converted here (linkStatus, forwardEvent), never
// passed through.

// LinkState is the dilated connection's condition.
type LinkState int

const (
	LinkWaiting      LinkState = iota // for the peer to agree to dilate
	LinkConnecting                    // first connection attempts
	LinkConnected                     // a connection is in use
	LinkReconnecting                  // the connection dropped; a new one is sought
	LinkStopped
)

func (s LinkState) String() string {
	return [...]string{"waiting for peer", "connecting", "connected", "reconnecting", "stopped"}[s]
}

type (
	// LinkStatus describes the dilated connection at one moment (from
	// dilation.Status, field for field).
	LinkStatus struct {
		State      LinkState
		Generation int    // how many connection races have started
		Leader     bool   // this side leads (pings, decides to reconnect)
		Via        string // the connection in use, e.g. "direct 10.0.0.2:4444"
		Relayed    bool

		// While reconnecting: when the connection was lost, how many
		// attempts have failed since, and why the latest failed (an
		// *AttemptError; nil before the first failure).
		Since       time.Time
		Attempts    int
		LastFailure error
		// Once connected again after a loss: how long the connection was
		// down (zero for the first connection).
		Outage time.Duration

		// Err is why it stopped: ErrLinkClosed (the session closed it), or
		// what made reconnecting impossible.
		Err error
	}

	// ServiceListening: we listen for the peer's service at Addr.
	ServiceListening struct{ Service, Addr string }
	// AwaitingConnect: the peer listens for our service; connections will
	// be forwarded to our daemon at Addr.
	AwaitingConnect struct{ Service, Addr string }
	// ForwardRefused: a request was refused, by us (ByPeer false) or the
	// peer.
	ForwardRefused struct {
		Service, Reason string
		ByPeer          bool
	}
	// ForwardRemoved: the service was removed locally (a Remove command).
	ForwardRemoved struct{ Service string }
	// ConnectionOpened: a forwarded connection started. Incoming means
	// the peer opened it (to our daemon).
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
	// ForwardProblem is anything else that went wrong with the forwards
	// without ending the session.
	ForwardProblem struct{ Err error }
)

func linkStatus(st dilation.Status) LinkStatus {
	return LinkStatus{
		State: linkState(st.State), Generation: st.Generation, Leader: st.Leader,
		Via: st.Via, Relayed: st.Relayed, Since: st.Since, Attempts: st.Attempts,
		LastFailure: st.LastFailure, Outage: st.Outage, Err: st.Err,
	}
}

func linkState(s dilation.State) LinkState {
	switch s {
	case dilation.Waiting:
		return LinkWaiting
	case dilation.Connecting:
		return LinkConnecting
	case dilation.Connected:
		return LinkConnected
	case dilation.Reconnecting:
		return LinkReconnecting
	}
	return LinkStopped
}

func forwardEvent(e forwards.Event) Event {
	switch e := e.(type) {
	case forwards.Listening:
		return ServiceListening{Service: e.Service, Addr: e.Addr}
	case forwards.AwaitingConnect:
		return AwaitingConnect{Service: e.Service, Addr: e.Addr}
	case forwards.Refused:
		return ForwardRefused{Service: e.Service, Reason: e.Reason, ByPeer: e.ByPeer}
	case forwards.Removed:
		return ForwardRemoved{Service: e.Service}
	case forwards.ConnectionOpened:
		return ConnectionOpened{ID: e.ID, Service: e.Service, Incoming: e.Incoming}
	case forwards.ConnectionClosed:
		return ConnectionClosed{ID: e.ID, Service: e.Service, Incoming: e.Incoming,
			Err: e.Err, BytesIn: e.BytesIn, BytesOut: e.BytesOut}
	case forwards.Problem:
		return ForwardProblem{Err: e.Err}
	}
	return nil // a forwards event session does not know: a bug, dropped
}

// Data types and errors of the layers below that frontends need, so that
// they need import session only.
type (
	// Local is a service of the peer's we listen for (--local).
	Local = forwards.Local
	// Remote is a service of ours offered to the peer (--remote).
	Remote = forwards.Remote
	// Decision answers a PermissionRequest.
	Decision = forwards.Decision
	// ListenRequest is the peer asking us to listen for a service.
	ListenRequest = forwards.ListenRequest
	// DeniedError is a request the policy refused; Reason is what the
	// peer is told.
	DeniedError = forwards.DeniedError
	// ServiceStats are one service's counters (Traffic).
	ServiceStats = forwards.ServiceStats
	// ConnectionStats are one open connection's counters (Traffic).
	ConnectionStats = forwards.ConnectionStats
	// AttemptError is one failed connection attempt
	// (LinkStatus.LastFailure): to where, and why.
	AttemptError = dilation.AttemptError
	// ProtocolError is the peer, or whatever answered on a connection,
	// breaking the Dilation protocol.
	ProtocolError = dilation.ProtocolError
)

// Decisions.
const (
	Deny        = forwards.Deny
	AllowOnce   = forwards.AllowOnce
	AllowAlways = forwards.AllowAlways
)

// DefaultTransitRelay is the public relay the reference CLI uses.
const DefaultTransitRelay = dilation.DefaultTransitRelay

// Errors of the connection, for errors.Is on LinkStatus.Err and
// LastFailure.
var (
	// ErrLinkClosed: the connection was closed by this side.
	ErrLinkClosed = dilation.ErrClosed
	// ErrNoPartnerAtRelay: a connection waited at the transit relay
	// without the peer's arriving.
	ErrNoPartnerAtRelay = dilation.ErrNoPartnerAtRelay
	// ErrPeerCannotDilate: the peer shares no Dilation version.
	ErrPeerCannotDilate = dilation.ErrPeerCannotDilate
)

// ParseLocal parses a --local spec, ParseRemote a --remote spec.
func ParseLocal(spec string) (Local, error)   { return forwards.ParseLocal(spec) }
func ParseRemote(spec string) (Remote, error) { return forwards.ParseRemote(spec) }

// FormatSize is a byte count for people ("3.2 MB").
func FormatSize(n int64) string { return transfer.FormatSize(n) }

// Events of the shared terminal (terminal.go; gander peers with
// FeatureTerminal only). Outgoing means our share (we host), else the
// peer's (we are the guest).
type (
	// ShareOffered: a share started: ours, offered to the peer
	// (Outgoing), or the peer's, which WatchShare shows. Command is what
	// runs in it, for people (the peer's is sanitised).
	ShareOffered struct {
		Outgoing bool
		Command  string
	}
	// ShareGuestJoined / ShareGuestLeft (host): the peer started or
	// stopped watching our share (Err: why it was dropped; nil when it
	// detached).
	ShareGuestJoined struct{}
	ShareGuestLeft   struct{ Err error }
	// ShareKeyboardRequested (host): the peer asks to type into our
	// share. Answer{ID, Decision} decides (any allow lets it type, until
	// RevokeTyping); PermissionWithdrawn{ID} if it goes unanswered.
	ShareKeyboardRequested struct{ ID int64 }
	// ShareTyping: who may type changed. Outgoing: we let the peer type
	// into our share (Allowed) or took it back. Else the peer's host did
	// so for us; Reason says why not (a refusal of AskKeyboard comes as
	// Allowed false).
	ShareTyping struct {
		Outgoing bool
		Allowed  bool
		Reason   string
	}
	// ShareInputDropped (host): the peer typed while it may not; Bytes of
	// it never reached the PTY. At most one a second.
	ShareInputDropped struct {
		Bytes  int
		Reason string
	}
	// ShareEnded: the share ended (ours: the command exited, StopShare,
	// or the peer closed it; the peer's: its host ended it). Err is nil
	// after a normal end.
	ShareEnded struct {
		Outgoing bool
		Err      error
	}
)

func (ShareOffered) isEvent()           {}
func (ShareGuestJoined) isEvent()       {}
func (ShareGuestLeft) isEvent()         {}
func (ShareKeyboardRequested) isEvent() {}
func (ShareTyping) isEvent()            {}
func (ShareInputDropped) isEvent()      {}
func (ShareEnded) isEvent()             {}
