// Package mailbox is a client for the Magic Wormhole mailbox ("rendezvous")
// server: the websocket protocol by which two sides find each other through
// a nameplate and exchange messages in a mailbox.
//
// A Client survives the websocket dropping: it reconnects with backoff and
// replays what the server must know again (bind, the claim if unanswered,
// open, every add not yet echoed back, a pending release or close), which is
// what the Python reference's Nameplate, Mailbox and Allocator machines do.
// Peer messages are delivered once per phase, however often the server
// replays them.
package mailbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mathrand "math/rand/v2"
	"slices"
	"time"

	"github.com/coder/websocket"
)

// Config says which server to use and who we are there.
type Config struct {
	// URL is the server's websocket URL, e.g. ws://relay.magic-wormhole.io:4000/v1.
	URL string
	// AppID namespaces nameplates and mailboxes on the server.
	AppID string
	// Side identifies this client in the mailbox; empty picks a random one.
	Side string
	// Version is sent as client_version in bind.
	Version string
	// Logger receives debug traces; nil discards them.
	Logger *slog.Logger
	// MinBackoff and MaxBackoff bound the delay between reconnection
	// attempts; zero means 1 s and DefaultMaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// ReplyTimeout and RequestTimeout override DefaultReplyTimeout and
	// DefaultRequestTimeout (tests shorten them).
	ReplyTimeout, RequestTimeout time.Duration
}

// DefaultMaxBackoff caps the delay between reconnection attempts: the
// reference waits up to 60 s, but a session that outlives an outage should
// find the server again within seconds of its return (the server only
// sees a websocket dial every few seconds per client while it is down).
const DefaultMaxBackoff = 5 * time.Second

// Bounds on what the mailbox server, and anyone who writes to our mailbox,
// can make this client hold or wait for. The server only relays: nothing
// it sends is trusted with more than these.
const (
	// MaxMessageSize caps one server message (the websocket read limit).
	// The largest message gander itself sends is a classic text offer,
	// which the wormhole package keeps under it; a larger one ends the
	// session with a *LimitError: reconnecting would only replay it.
	MaxMessageSize = 4 << 20
	// MaxPhaseLength caps a phase name. Real ones are "pake", "version",
	// "0", "dilate-12"; a message with a longer phase is dropped.
	MaxPhaseLength = 64
	// MaxSideLength caps a side's id. The reference's are 10 hex
	// characters, ours too; a message from a longer side is dropped
	// unlogged (whoever claimed the nameplate chooses it, and the wormhole
	// layer quotes the side of a stranger in a spoiled code's reason).
	MaxSideLength = 64
	// MaxServerText caps each text the server gives us to keep or show:
	// the MOTD, a welcome's or an error's message, the command an error
	// echoes, an unknown message's type. Longer ones are cut, ending in
	// "…" (a server can otherwise send 4 MiB of each).
	MaxServerText = 512
	// maxPhases caps the distinct peer phases remembered (to deliver each
	// once). An honest session uses a few per Dilation generation; more
	// ends the session with a *LimitError.
	maxPhases = 1 << 16
	// maxUndelivered caps the peer messages queued for Messages. While
	// the queue is full the client stops reading the websocket, so a
	// flood waits in the server, not in our memory.
	maxUndelivered = 16

	// DefaultReplyTimeout is how long a connection may leave a command
	// that expects an answer (allocate, claim, list, release, close,
	// ping, the echo of an add) without any answer before it is taken
	// for dead and replaced: a server that accepts connections but
	// never answers costs a reconnection, not a hang.
	DefaultReplyTimeout = 30 * time.Second
	// DefaultRequestTimeout bounds Allocate, Claim, List and Ping,
	// reconnections included; they then fail with *TimeoutError.
	DefaultRequestTimeout = 2 * time.Minute
	// closeTimeout bounds Close whatever its context says.
	closeTimeout = time.Minute

	dialTimeout    = 30 * time.Second
	writeTimeout   = 15 * time.Second
	welcomeTimeout = 30 * time.Second
	// The reference client pings the websocket every 30 s and gives up on
	// a connection that has not answered in 60 s.
	keepaliveInterval = 30 * time.Second
	keepaliveTimeout  = 60 * time.Second
)

// ConnectError means the first connection to the server failed. Later
// failures are retried; the first is not, as in the reference.
type ConnectError struct {
	URL string
	Err error
}

// Error says it for a person: the address and a short reason, not the
// dialer's nested text (that is in Err, for the log).
func (e *ConnectError) Error() string {
	return fmt.Sprintf("cannot reach the mailbox server at %s (%s): check the address (--mailbox) and the network",
		e.URL, Reason(e.Err))
}
func (e *ConnectError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrUnreachable) true for every *ConnectError.
func (e *ConnectError) Is(target error) bool { return target == ErrUnreachable }

// ErrUnreachable matches (errors.Is) a *ConnectError: the server could
// not be reached when the client started.
var ErrUnreachable = errors.New("the mailbox server cannot be reached")

// WelcomeError means the server refused service in its welcome message.
type WelcomeError struct{ Message string }

func (e *WelcomeError) Error() string {
	return "the mailbox server refused service: " + e.Message
}

// ServerError is the server rejecting one of our commands.
type ServerError struct {
	Message string
	// Command is the offending command as the server echoed it back.
	Command string
}

func (e *ServerError) Error() string { return "mailbox server error: " + e.Message }

// Is makes errors.Is(err, ErrCrowded) true for the server's "crowded".
func (e *ServerError) Is(target error) bool { return target == ErrCrowded && e.Message == "crowded" }

// ErrCrowded matches the server refusing a claim or open because two
// other sides already hold the nameplate or mailbox: someone else used
// the code.
var ErrCrowded = errors.New("crowded: two other sides already use this nameplate")

// TimeoutError is a request the server did not answer in time, however
// often the client reconnected meanwhile.
type TimeoutError struct {
	Op    string // "allocate", "claim", "list", "ping"
	After time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("the mailbox server did not answer %s within %v", e.Op, e.After)
}

// LimitError means the server (or someone writing to our mailbox) sent
// more than a bound allows; the session ends.
type LimitError struct {
	What  string // what went over the bound
	Limit int
	Err   error // the underlying error, if any
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("the mailbox server sent %s over the limit of %d", e.What, e.Limit)
}
func (e *LimitError) Unwrap() error { return e.Err }

// ErrClosed is returned by operations on a client that has been closed.
var ErrClosed = errors.New("mailbox client closed")

// Client is one side's connection to a mailbox server. Its methods are safe
// for concurrent use.
type Client struct {
	cfg     Config
	log     *slog.Logger
	welcome Welcome

	requests chan func(*loop)
	messages chan Message
	status   chan Status   // the latest Status not yet taken; see StatusUpdates
	done     chan struct{} // closed when the loop has stopped
	err      error         // why the loop stopped; read after done
	stop     context.CancelFunc
}

// Dial connects to the server, waits for its welcome and binds. A welcome
// carrying an error fails with *WelcomeError; an unreachable server with
// *ConnectError.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Side == "" {
		cfg.Side = RandomSide()
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.ReplyTimeout == 0 {
		cfg.ReplyTimeout = DefaultReplyTimeout
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("sub", "mailbox", "side", cfg.Side)

	conn, err := dialWebsocket(ctx, cfg.URL)
	if err != nil {
		return nil, &ConnectError{URL: cfg.URL, Err: err}
	}
	welcome, err := readWelcome(ctx, conn)
	if err != nil {
		conn.Close(websocket.StatusNormalClosure, "")
		return nil, &ConnectError{URL: cfg.URL, Err: err}
	}
	if welcome.Error != "" {
		conn.Close(websocket.StatusNormalClosure, "unwelcome")
		return nil, &WelcomeError{Message: welcome.Error}
	}

	loopCtx, stop := context.WithCancel(context.Background())
	c := &Client{
		cfg:      cfg,
		log:      log,
		welcome:  welcome,
		requests: make(chan func(*loop)),
		messages: make(chan Message),
		status:   make(chan Status, 1),
		done:     make(chan struct{}),
		stop:     stop,
	}
	l := &loop{client: c, seenPhases: map[string]bool{}, inbound: make(chan connEvent)}
	go func() {
		c.err = l.run(loopCtx, conn)
		// done first: a consumer that sees Messages closed must find
		// the reason in Err at once.
		close(c.done)
		close(c.messages)
	}()
	return c, nil
}

// RandomSide returns a fresh side id: 10 lowercase hex characters, as the
// reference uses for the mailbox.
func RandomSide() string {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("mailbox: crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// Side is this client's side id.
func (c *Client) Side() string { return c.cfg.Side }

// Welcome is what the server said when we first connected.
func (c *Client) Welcome() Welcome { return c.welcome }

// Messages delivers the peer's messages, each phase once, in the order the
// server relays them. It is closed when the client stops.
func (c *Client) Messages() <-chan Message { return c.messages }

// Status is the client's connection to the server at one moment, as
// StatusUpdates reports it.
type Status struct {
	// Connected: a websocket to the server is up. The client starts
	// connected (Dial fails otherwise).
	Connected bool
	// While not connected: when the connection was lost, how many
	// reconnection attempts have failed since, and why the last did
	// (nil before the first failure).
	Since    time.Time
	Attempts int
	LastErr  error
	// Once connected again: how long the server was out of reach.
	Outage time.Duration
}

// StatusUpdates delivers the connection's changes: a Status when it is
// lost, after each failed reconnection attempt, and when it is back. Only
// the latest waits for the reader (an unread one is replaced), so a
// reader that never reads costs nothing and one that does sees the
// present.
func (c *Client) StatusUpdates() <-chan Status { return c.status }

// publish replaces the unread status, if any, with st. Only the loop
// sends, so after the drain the one slot is free.
func (c *Client) publish(st Status) {
	select {
	case <-c.status:
	default:
	}
	c.status <- st
}

// Done is closed when the client has stopped; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is nil while the client runs or after a clean Close, and otherwise
// the error that stopped it.
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// List returns the nameplates currently in use for our app id.
func (c *Client) List(ctx context.Context) ([]string, error) {
	ctx, cancel := c.requestContext(ctx, "list")
	defer cancel()
	list, err := await(ctx, c, func(l *loop, w waiter[[]string]) {
		l.listWaiters = append(l.listWaiters, w)
		l.send(listCommand())
	})
	return list, timedOut(ctx, err)
}

// Allocate asks the server for an unused nameplate and claims it.
func (c *Client) Allocate(ctx context.Context) (string, error) {
	ctx, cancel := c.requestContext(ctx, "allocate")
	defer cancel()
	nameplate, err := await(ctx, c, func(l *loop, w waiter[string]) {
		if l.allocated != "" {
			w.answer(l.allocated, nil)
			return
		}
		l.allocateWaiters = append(l.allocateWaiters, w)
		if len(l.allocateWaiters) == 1 {
			l.send(allocateCommand())
		}
	})
	return nameplate, timedOut(ctx, err)
}

// Claim claims a nameplate and opens the mailbox behind it, returning the
// mailbox id. Messages added before the claim is answered are held.
func (c *Client) Claim(ctx context.Context, nameplate string) (string, error) {
	ctx, cancel := c.requestContext(ctx, "claim")
	defer cancel()
	mailbox, err := await(ctx, c, func(l *loop, w waiter[string]) {
		if l.nameplate != "" && l.nameplate != nameplate {
			w.answer("", fmt.Errorf("already claimed nameplate %q", l.nameplate))
			return
		}
		if l.mailbox != "" {
			w.answer(l.mailbox, nil)
			return
		}
		l.claimWaiters = append(l.claimWaiters, w)
		if l.nameplate == "" {
			l.nameplate = nameplate
			l.send(claimCommand(nameplate))
		}
	})
	return mailbox, timedOut(ctx, err)
}

// Add queues a message for the mailbox. It is sent once the mailbox is
// open and re-sent after reconnections until the server echoes it back.
func (c *Client) Add(ctx context.Context, phase string, body []byte) error {
	_, err := await(ctx, c, func(l *loop, w waiter[struct{}]) {
		l.pending = append(l.pending, pendingAdd{phase, body})
		if l.opened {
			l.send(addCommand(phase, body))
		}
		w.answer(struct{}{}, nil)
	})
	return err
}

// Ping asks the server for a pong; it is the protocol's liveness probe.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := c.requestContext(ctx, "ping")
	defer cancel()
	n := mathrand.IntN(1 << 30)
	_, err := await(ctx, c, func(l *loop, w waiter[struct{}]) {
		l.pingWaiters[n] = w
		l.send(pingCommand(n))
	})
	return timedOut(ctx, err)
}

// Close releases the nameplate, closes the mailbox with mood, waits for the
// server to confirm both (bounded by ctx, and by a minute at most) and
// disconnects.
func (c *Client) Close(ctx context.Context, mood Mood) error {
	ctx, cancel := context.WithTimeout(ctx, closeTimeout)
	defer cancel()
	_, err := await(ctx, c, func(l *loop, w waiter[struct{}]) {
		l.closeWaiters = append(l.closeWaiters, w)
		l.startClosing(mood)
	})
	c.stop()
	<-c.done
	if errors.Is(err, ErrClosed) {
		err = nil
	}
	if err == nil {
		err = c.err
	}
	return err
}

// requestContext bounds one request by RequestTimeout; timedOut then
// reports that bound as a *TimeoutError rather than a bare deadline.
func (c *Client) requestContext(ctx context.Context, op string) (context.Context, context.CancelFunc) {
	d := c.cfg.RequestTimeout
	return context.WithTimeoutCause(ctx, d, &TimeoutError{Op: op, After: d})
}

func timedOut(ctx context.Context, err error) error {
	var te *TimeoutError
	if errors.Is(err, context.DeadlineExceeded) && errors.As(context.Cause(ctx), &te) {
		return te
	}
	return err
}

type result[T any] struct {
	value T
	err   error
}

// waiter is a caller waiting for the loop's answer to one request.
type waiter[T any] struct {
	reply chan<- result[T] // buffered: answering never blocks the loop
	gone  <-chan struct{}  // closed once the caller stopped waiting
}

func (w waiter[T]) answer(value T, err error) { w.reply <- result[T]{value, err} }

// waiting reports whether the caller still waits for the answer.
func (w waiter[T]) waiting() bool {
	select {
	case <-w.gone:
		return false
	default:
		return true
	}
}

// stillWaiting drops the waiters whose callers gave up, so that the loop
// stops asking the server on their behalf.
func stillWaiting[T any](ws []waiter[T]) []waiter[T] {
	return slices.DeleteFunc(ws, func(w waiter[T]) bool { return !w.waiting() })
}

// await hands op to the loop and waits for its reply. op runs on the loop
// goroutine and must answer at most once.
func await[T any](ctx context.Context, c *Client, op func(*loop, waiter[T])) (T, error) {
	var zero T
	reply := make(chan result[T], 1)
	w := waiter[T]{reply: reply, gone: ctx.Done()}
	select {
	case c.requests <- func(l *loop) { op(l, w) }:
	case <-c.done:
		return zero, c.stoppedErr()
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case r := <-reply:
		return r.value, r.err
	case <-c.done:
		return zero, c.stoppedErr()
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

func (c *Client) stoppedErr() error {
	if c.err != nil {
		return c.err
	}
	return ErrClosed
}

func dialWebsocket(ctx context.Context, url string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(MaxMessageSize)
	return conn, nil
}

func readWelcome(ctx context.Context, conn *websocket.Conn) (Welcome, error) {
	ctx, cancel := context.WithTimeout(ctx, welcomeTimeout)
	defer cancel()
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return Welcome{}, fmt.Errorf("waiting for welcome: %w", err)
		}
		msg, err := decodeServerMessage(data)
		if err != nil {
			return Welcome{}, err
		}
		if w, ok := msg.(welcomeMessage); ok {
			return w.Welcome, nil
		}
	}
}
