package mailbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	mathrand "math/rand/v2"
	"time"

	"github.com/coder/websocket"
)

// loop owns the websocket and every piece of session state. It runs on one
// goroutine; Client methods reach it through Client.requests. Reader and
// keepalive goroutines belong to one connection generation each and stop
// with it.
type loop struct {
	client *Client

	conn       *websocket.Conn
	stopConn   context.CancelFunc
	generation int
	inbound    chan connEvent

	listWaiters     []waiter[[]string]
	allocateWaiters []waiter[string]
	claimWaiters    []waiter[string]
	closeWaiters    []waiter[struct{}]
	pingWaiters     map[int]waiter[struct{}]

	// answeredAt is when the current connection last answered, or was
	// made; while an answer is due, a connection silent for
	// ReplyTimeout since then is replaced.
	answeredAt time.Time

	allocated string // nameplate the server allocated to us
	nameplate string // nameplate we claim; "" before Claim
	mailbox   string // mailbox behind it; "" until claimed
	opened    bool   // open has been sent on the current connection

	pending    []pendingAdd    // adds not yet echoed back by the server
	seenPhases map[string]bool // peer phases already delivered; at most maxPhases
	outbox     []Message       // peer messages not yet taken from Messages; at most maxUndelivered

	releasing, released bool
	closing, closed     bool
	mood                Mood

	// lostAt is when the connection was lost, zero while connected;
	// attempts the reconnections that failed since (for Status).
	lostAt   time.Time
	attempts int
}

type pendingAdd struct {
	phase string
	body  []byte
}

// connEvent is one websocket read, tagged with its connection generation so
// that a late event from a dropped connection is recognised and ignored.
type connEvent struct {
	generation int
	data       []byte
	err        error
}

type dialResult struct {
	conn *websocket.Conn
	err  error
}

func (l *loop) run(ctx context.Context, first *websocket.Conn) error {
	ctx, cancel := context.WithCancel(ctx)
	l.pingWaiters = map[int]waiter[struct{}]{}
	replyTimeout := l.client.cfg.ReplyTimeout
	// The reply deadline is checked a few times per ReplyTimeout.
	check := time.NewTicker(max(replyTimeout/4, 10*time.Millisecond))
	defer check.Stop()

	backoff := l.client.cfg.MinBackoff
	var retry <-chan time.Time
	dialed := make(chan dialResult, 1)
	dialing := false // a reconnection dial is in flight
	defer func() {
		l.hangUp()
		cancel()
		// A dial that succeeds as the loop stops must not leave its
		// websocket open, unowned.
		if dialing {
			if r := <-dialed; r.conn != nil {
				r.conn.CloseNow()
			}
		}
	}()
	l.connect(ctx, first)

	for {
		var out chan<- Message
		var next Message
		if len(l.outbox) > 0 {
			out, next = l.client.messages, l.outbox[0]
		}
		// While the consumer is behind, leave the server's messages
		// unread: the queue stays bounded and the flood waits upstream.
		inbound := l.inbound
		full := len(l.outbox) >= maxUndelivered
		if full {
			inbound = nil
		}
		select {
		case <-ctx.Done():
			return nil
		case op := <-l.client.requests:
			op(l)
		case out <- next:
			l.outbox[0] = Message{} // let the body go
			l.outbox = l.outbox[1:]
		case ev := <-inbound:
			if ev.generation != l.generation {
				continue
			}
			if ev.err != nil {
				if errors.Is(ev.err, websocket.ErrMessageTooBig) {
					return &LimitError{What: "a message", Limit: MaxMessageSize, Err: ev.err}
				}
				if l.closed && (l.released || l.nameplate == "") {
					return nil
				}
				l.client.log.Debug("connection lost; reconnecting", "err", ev.err, "in", backoff)
				l.disconnect()
				l.lost()
				retry = time.After(jitter(backoff))
				continue
			}
			if err := l.handle(ev.data); err != nil {
				return err
			}
		case now := <-check.C:
			if l.conn == nil {
				continue
			}
			if full || !l.awaitingAnswer() {
				// The clock runs only while we read and wait.
				l.answeredAt = now
				continue
			}
			if now.Sub(l.answeredAt) > replyTimeout {
				l.client.log.Debug("the server has not answered; reconnecting", "after", replyTimeout)
				l.disconnect()
				l.lost()
				retry = time.After(jitter(backoff))
			}
		case <-retry:
			retry, dialing = nil, true
			go func() {
				conn, err := dialWebsocket(ctx, l.client.cfg.URL)
				dialed <- dialResult{conn, err}
			}()
		case r := <-dialed:
			dialing = false
			if r.err != nil {
				backoff = min(backoff*3/2, l.client.cfg.MaxBackoff)
				l.client.log.Debug("reconnect failed", "err", r.err, "retry in", backoff)
				l.attempts++
				l.client.publish(Status{Since: l.lostAt, Attempts: l.attempts, LastErr: r.err})
				retry = time.After(jitter(backoff))
				continue
			}
			backoff = l.client.cfg.MinBackoff
			l.connect(ctx, r.conn)
			l.client.publish(Status{Connected: true, Outage: time.Since(l.lostAt)})
			l.lostAt, l.attempts = time.Time{}, 0
		}
		if l.finished() {
			for _, w := range l.closeWaiters {
				w.answer(struct{}{}, nil)
			}
			return nil
		}
	}
}

// jitter spreads reconnection attempts by up to ±20%.
func jitter(d time.Duration) time.Duration {
	return d + time.Duration((mathrand.Float64()*0.4-0.2)*float64(d))
}

// connect adopts a fresh websocket and replays the session onto it.
func (l *loop) connect(ctx context.Context, conn *websocket.Conn) {
	l.generation++
	connCtx, stop := context.WithCancel(ctx)
	l.conn, l.stopConn = conn, stop
	go readConn(connCtx, conn, l.generation, l.inbound)
	go keepalive(connCtx, conn)
	l.answeredAt = time.Now()

	cfg := l.client.cfg
	l.send(bindCommand(cfg.AppID, cfg.Side, cfg.Version))
	l.listWaiters = stillWaiting(l.listWaiters)
	if len(l.listWaiters) > 0 {
		l.send(listCommand())
	}
	l.allocateWaiters = stillWaiting(l.allocateWaiters)
	if len(l.allocateWaiters) > 0 {
		l.send(allocateCommand())
	}
	if l.nameplate != "" && l.mailbox == "" && !l.closing {
		l.send(claimCommand(l.nameplate))
	}
	l.opened = false
	if l.mailbox != "" && !l.closing {
		l.open()
	}
	if l.releasing && !l.released {
		l.send(releaseCommand(l.nameplate))
	}
	if l.closing && l.mailbox != "" && !l.closed {
		l.send(closeCommand(l.mailbox, l.mood))
	}
	for n, w := range l.pingWaiters {
		if w.waiting() {
			l.send(pingCommand(n))
		} else {
			delete(l.pingWaiters, n)
		}
	}
}

// awaitingAnswer reports whether the server owes us an answer to a command
// sent on this connection, dropping the waiters that gave up first.
func (l *loop) awaitingAnswer() bool {
	l.listWaiters = stillWaiting(l.listWaiters)
	l.allocateWaiters = stillWaiting(l.allocateWaiters)
	maps.DeleteFunc(l.pingWaiters, func(_ int, w waiter[struct{}]) bool { return !w.waiting() })
	return len(l.listWaiters) > 0 ||
		len(l.allocateWaiters) > 0 ||
		len(l.pingWaiters) > 0 ||
		(l.nameplate != "" && l.mailbox == "" && !l.closing) ||
		(l.opened && len(l.pending) > 0 && !l.closing) ||
		(l.releasing && !l.released) ||
		(l.closing && l.mailbox != "" && !l.closed)
}

// lost records that the connection went, for Status.
func (l *loop) lost() {
	if !l.lostAt.IsZero() {
		return
	}
	l.lostAt, l.attempts = time.Now(), 0
	l.client.publish(Status{Since: l.lostAt})
}

func (l *loop) disconnect() {
	if l.conn == nil {
		return
	}
	l.stopConn()
	l.conn.CloseNow()
	l.conn = nil
}

// hangUp ends the session's connection with a websocket close handshake,
// which the server takes as a clean goodbye.
func (l *loop) hangUp() {
	if l.conn == nil {
		return
	}
	l.conn.Close(websocket.StatusNormalClosure, "")
	l.disconnect()
}

// open subscribes to the mailbox (the server then replays what it holds)
// and sends every add the server has not echoed yet.
func (l *loop) open() {
	l.send(openCommand(l.mailbox))
	l.opened = true
	for _, p := range l.pending {
		l.send(addCommand(p.phase, p.body))
	}
}

// send writes one command if connected. A command that cannot be written
// now is not lost: connect replays the session state it belongs to.
func (l *loop) send(cmd command) {
	if l.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	if err := l.conn.Write(ctx, websocket.MessageText, encodeCommand(cmd, commandID())); err != nil {
		l.client.log.Debug("write failed", "type", cmd.Type, "err", err)
		// The reader sees the broken connection too and reports the loss.
		l.conn.CloseNow()
	}
}

func commandID() string {
	var b [2]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// handle applies one server message. An error ends the session.
func (l *loop) handle(data []byte) error {
	msg, err := decodeServerMessage(data)
	if err != nil {
		l.client.log.Debug("ignoring malformed server message", "err", err)
		return nil
	}
	switch m := msg.(type) {
	case welcomeMessage:
		if m.Welcome.Error != "" {
			return &WelcomeError{Message: m.Welcome.Error}
		}
	case ackMessage:
	case nameplatesMessage:
		l.answeredAt = time.Now()
		for _, w := range l.listWaiters {
			w.answer(m.Nameplates, nil)
		}
		l.listWaiters = nil
	case allocatedMessage:
		l.answeredAt = time.Now()
		l.allocated = m.Nameplate
		for _, w := range l.allocateWaiters {
			w.answer(m.Nameplate, nil)
		}
		l.allocateWaiters = nil
	case claimedMessage:
		l.answeredAt = time.Now()
		if l.mailbox != "" || l.closing {
			return nil
		}
		l.mailbox = m.Mailbox
		for _, w := range l.claimWaiters {
			w.answer(m.Mailbox, nil)
		}
		l.claimWaiters = nil
		l.open()
	case releasedMessage:
		l.answeredAt = time.Now()
		l.released = true
	case closedMessage:
		l.answeredAt = time.Now()
		l.closed = true
	case pongMessage:
		if w, ok := l.pingWaiters[m.Pong]; ok {
			l.answeredAt = time.Now()
			w.answer(struct{}{}, nil)
			delete(l.pingWaiters, m.Pong)
		}
	case errorMessage:
		return &ServerError{Message: m.Error, Command: string(m.Orig)}
	case Message:
		return l.receive(m)
	case unknownMessage:
		l.client.log.Debug("ignoring unknown server message", "type", m.Type)
	}
	return nil
}

// receive handles a mailbox message: our own echo retires the pending add,
// a peer's new phase is delivered. The first peer message also releases the
// nameplate, since the peer no longer needs it to find the mailbox. Phases
// are remembered to deliver each once, however often the server replays
// them, and only within bounds: only what the peer needs is kept.
func (l *loop) receive(m Message) error {
	if m.Side == l.client.cfg.Side {
		for i, p := range l.pending {
			if p.phase == m.Phase {
				l.answeredAt = time.Now()
				l.pending = append(l.pending[:i], l.pending[i+1:]...)
				break
			}
		}
		return nil
	}
	if l.seenPhases[m.Phase] || l.closing {
		return nil
	}
	if len(m.Side) > MaxSideLength {
		l.client.log.Debug("dropping a message with an overlong side", "length", len(m.Side))
		return nil
	}
	if len(m.Phase) > MaxPhaseLength {
		l.client.log.Debug("dropping a message with an overlong phase", "length", len(m.Phase))
		return nil
	}
	if len(l.seenPhases) >= maxPhases {
		return &LimitError{What: "distinct phases", Limit: maxPhases}
	}
	l.seenPhases[m.Phase] = true
	l.outbox = append(l.outbox, m)
	l.release()
	return nil
}

func (l *loop) release() {
	if l.releasing || l.nameplate == "" {
		return
	}
	l.releasing = true
	l.send(releaseCommand(l.nameplate))
}

func (l *loop) startClosing(mood Mood) {
	if l.closing {
		return
	}
	l.closing, l.mood = true, mood
	// Nobody takes peer messages any more; reading on lets the server's
	// answers to release and close through.
	l.outbox = nil
	l.release()
	if l.mailbox != "" {
		l.send(closeCommand(l.mailbox, mood))
	}
}

// finished reports whether a requested close has been confirmed: the
// nameplate released (if we held one) and the mailbox closed (if open).
func (l *loop) finished() bool {
	return l.closing &&
		(l.nameplate == "" || l.released) &&
		(l.mailbox == "" || l.closed)
}

func readConn(ctx context.Context, conn *websocket.Conn, generation int, out chan<- connEvent) {
	for {
		typ, data, err := conn.Read(ctx)
		if err == nil && typ != websocket.MessageText {
			err = errors.New("server sent a binary websocket message")
		}
		select {
		case out <- connEvent{generation, data, err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// keepalive pings the websocket so that a silently dead connection (a
// laptop lid, a changed network) is noticed and replaced.
func keepalive(ctx context.Context, conn *websocket.Conn) {
	ticker := time.NewTicker(keepaliveInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			pingCtx, cancel := context.WithTimeout(ctx, keepaliveTimeout)
			err := conn.Ping(pingCtx)
			cancel()
			if err != nil && ctx.Err() == nil {
				conn.CloseNow()
				return
			}
		}
	}
}
