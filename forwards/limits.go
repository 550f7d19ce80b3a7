package forwards

import (
	"errors"
	"fmt"
	"time"
)

// The bounds on what a peer can make the forwarder spend. The peer knows
// the code but is trusted with nothing the local user did not allow: each
// subchannel it opens, each listener it asks for and each connection it
// makes to our daemons holds a goroutine, buffers or a socket here, so
// each is capped, and whatever waits on the peer has a timeout. Beyond a
// bound the peer is told why, in the reply it is waiting for (fowl and
// gander show the reason), and the local user sees a Problem the first
// time (later refusals are only logged, so that a flood is not one).
const (
	// handshakeTimeout is how long a subchannel may wait for the other
	// side's first frame: the peer's request on a subchannel it opened,
	// the peer's reply on one we opened. An honest peer sends its request
	// with the subchannel's OPEN, and answers once it has connected to
	// its daemon (fowl's own connect timeout is Twisted's 30 s).
	handshakeTimeout = 30 * time.Second
	// refusalWriteTimeout bounds writing a refusal to a peer that makes
	// no room for it; then it only sees the subchannel close.
	refusalWriteTimeout = 2 * time.Second
	// maxPendingHandshakes bounds the peer's subchannels (of both
	// subprotocols) still waiting for their first frame. Honest bursts
	// (a browser opening a page's connections) stay far below it.
	maxPendingHandshakes = 128
	// maxCommandChannels bounds the fowl-commands subchannels the peer
	// keeps open: fowl and gander open one per offered service and keep
	// it for the offer's lifetime (fowl keeps refused ones open too).
	maxCommandChannels = 128
	// maxFramesPerCommandChannel bounds the frames read on one
	// fowl-commands subchannel, which then closes: fowl and gander send
	// exactly one request on each.
	maxFramesPerCommandChannel = 16
	// maxPeerListeners bounds the listeners the peer can make us open at
	// once (there is one per service name at most).
	maxPeerListeners = 64
	// listenerHandover is how long a request for a name already listened
	// for waits for that listener to go: a peer that withdraws an offer
	// and makes it again sends the new request right after the old
	// channel's close, which another goroutine handles.
	listenerHandover = 2 * time.Second
	// maxPeerConnections bounds the forwarded connections the peer has
	// open to our daemons at once (each is a socket and two goroutines).
	maxPeerConnections = 1024
	// maxLocalConnections bounds the connections local clients have open
	// through our listeners for the peer's services, in the whole session:
	// each is a socket, a subchannel and two goroutines, for up to
	// handshakeTimeout while the peer answers and then for as long as it
	// lasts. Any local process, or a web page aimed at 127.0.0.1, can
	// connect, so one bound covers every listener: what runs out is the
	// process's file descriptors, shared by all of them. Beyond it a new
	// connection is closed at once, and the user told the first time.
	maxLocalConnections = 1024
	// acceptBackoffMin and acceptBackoffMax bound the pause after a
	// failed Accept (out of file descriptors, a connection aborted before
	// it was accepted): it doubles from min to max, as in net/http, and
	// the listener goes on; only closing it ends its accept loop.
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
	// maxRefusalsReported bounds the refusals of the peer's requests
	// (listen requests, connections) reported as events in a session;
	// later ones are only logged, so that a peer asking again and again
	// does not flood the user's screen or a --json reader. The peer's
	// refusals of our connections are counted apart, to the same bound:
	// beyond it their reasons are only logged.
	maxRefusalsReported = 100
	// maxPeerReasonBytes bounds any text of the peer's that we show or
	// log (the reasons in its replies, up to a frame's 64 KiB): it is cut
	// at a UTF-8 boundary, with "…", and its control and format
	// characters replaced (peerText).
	maxPeerReasonBytes = 256
	// maxServiceNameBytes bounds a service name the peer sends: names are
	// shown to the user, logged and kept for the session.
	maxServiceNameBytes = 255
	// minPeerChosenPort is the lowest port the peer's choice is honoured
	// for, and only where the local user saw it (see Policy.listen).
	minPeerChosenPort = 1024
	// fowlStartSettle is how long, after the link comes up, the first
	// request or answer to a fowl peer waits (Forwarder.waitSettled):
	// fowld prints peer-connected a few reactor turns after its own link
	// is up, and two fowlds are slow enough that nothing of the peer's
	// comes sooner. Half a second is a margin of a hundred times those
	// turns on a loaded machine, and costs a person nothing.
	fowlStartSettle = 500 * time.Millisecond
)

// limits are the bounds one Forwarder enforces (defaultLimits, the
// constants above); tests shrink them.
type limits struct {
	handshakeTimeout        time.Duration
	pendingHandshakes       int
	commandChannels         int
	framesPerCommandChannel int
	listeners               int
	listenerHandover        time.Duration
	connections             int
	localConnections        int
	refusalsReported        int
	startSettle             time.Duration
}

var defaultLimits = limits{
	handshakeTimeout:        handshakeTimeout,
	pendingHandshakes:       maxPendingHandshakes,
	commandChannels:         maxCommandChannels,
	framesPerCommandChannel: maxFramesPerCommandChannel,
	listeners:               maxPeerListeners,
	listenerHandover:        listenerHandover,
	connections:             maxPeerConnections,
	localConnections:        maxLocalConnections,
	refusalsReported:        maxRefusalsReported,
	startSettle:             fowlStartSettle,
}

// LimitError is a peer's request refused because a bound was reached; its
// message is the reason the peer is sent.
type LimitError struct {
	// What is counted, in the plural: "listeners for the peer".
	What  string
	Limit int
}

func (e *LimitError) Error() string { return fmt.Sprintf("Too many %s (at most %d)", e.What, e.Limit) }

// ErrHandshakeTimeout is a subchannel whose first frame did not come
// within the handshake timeout.
var ErrHandshakeTimeout = errors.New("no handshake in time")

// handshakeTimeoutError says how long was waited.
func handshakeTimeoutError(d time.Duration) error {
	return fmt.Errorf("%w: nothing came within %v", ErrHandshakeTimeout, d)
}
