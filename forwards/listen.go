package forwards

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gander-pair/gander/dilation"
)

// fowl records a service a reactor turn after the reply that creates
// it, and refuses connections that arrive sooner; new listeners leave
// connections in the accept backlog for this long first.
const fowlSettle = 250 * time.Millisecond

// serveCommands answers the peer's listen requests on one fowl-commands
// subchannel; the listeners it opens close with it. The channel is read
// on a goroutine of its own, so that the peer closing it while a request
// waits for the user withdraws the question (the peer withdrew its offer).
func (f *Forwarder) serveCommands(sc *dilation.Subchannel, r *bufio.Reader, first []byte) {
	ctx, cancel := context.WithCancel(f.ctx)
	defer cancel()
	defer sc.Close()
	var listeners []*peerListener
	defer func() {
		// The peer closed the channel (or broke it): the offers made on
		// it are withdrawn. Those we closed ourselves (Remove) say
		// nothing more, nor does the end of the session.
		for _, l := range listeners {
			if l.closeOpen() && f.ctx.Err() == nil {
				f.emit(Withdrawn{Service: l.name})
			}
		}
	}()
	frames := make(chan []byte)
	var readErr error // set before frames closes
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer close(frames)
		for {
			body, err := readFrame(r)
			if err != nil {
				readErr = err
				cancel()
				return
			}
			select {
			case frames <- body:
			case <-ctx.Done():
				return
			}
		}
	}()
	body := first
	for n := 1; ; n++ {
		if n > f.limits.framesPerCommandChannel {
			f.reportOnce("command flood", fmt.Errorf("closed a command channel of the peer: %w",
				&LimitError{What: "commands on one channel", Limit: f.limits.framesPerCommandChannel}))
			return
		}
		l, ok := f.answerCommand(ctx, sc, body)
		if !ok {
			return
		}
		if l != nil {
			listeners = append(listeners, l)
		}
		if body, ok = <-frames; !ok {
			// net.ErrClosed: we closed it (Remove of its last listener).
			err := readErr
			if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && f.ctx.Err() == nil {
				f.reportOnce("bad command", fmt.Errorf("command channel: %w", err))
			}
			return
		}
	}
}

// answerCommand answers one frame of a fowl-commands subchannel; it
// returns the listener it opened, if any, and false if the subchannel is
// done.
func (f *Forwarder) answerCommand(ctx context.Context, sc *dilation.Subchannel, body []byte) (*peerListener, bool) {
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
	if f.waitSettled(ctx) != nil {
		return nil, false
	}
	l, local, err := f.listenFor(ctx, sc, req.UniqueName, requested)
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
	pl.closeOpen()
	return nil
}

// closeOpen closes pl and says whether it was open until now.
func (pl *peerListener) closeOpen() (wasOpen bool) {
	pl.once.Do(func() {
		wasOpen = true
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
	return wasOpen
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
// command channel owner, if the policy and the bounds allow; ctx ends
// when owner does.
func (f *Forwarder) listenFor(ctx context.Context, owner *dilation.Subchannel, name string, requested int) (*peerListener, Local, error) {
	if err := checkPeerName(name); err != nil {
		return nil, Local{}, &DeniedError{Service: printableName(name), Reason: fmt.Sprintf("Bad service name: %v", err)}
	}
	pl, err := f.reserveListener(owner, name)
	if err != nil {
		return nil, Local{}, err
	}
	local, err := f.policy.listen(ctx, name, requested)
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
