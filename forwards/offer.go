package forwards

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gander-pair/gander/dilation"
)

const (
	// fowl registers its own --local services only once it has seen the
	// peer, so an early request is refused with "No service permitted";
	// Offer retries that refusal for this long.
	offerRetryWindow = 5 * time.Second
	offerRetryDelay  = 300 * time.Millisecond
)

// Offer asks the peer to listen for our service r (fowl's --remote) and
// keeps the request's subchannel open: closing it stops the peer's
// listener. A zero ConnectPort picks a free port for the daemon.
func (f *Forwarder) Offer(ctx context.Context, r Remote) (Remote, error) {
	if r.ConnectPort == 0 {
		port, err := freePort(r.Address)
		if err != nil {
			return r, err
		}
		r.ConnectPort = port
	}
	if err := f.waitSettled(ctx); err != nil {
		return r, err
	}
	// Allowed before asking, so that a connection racing the reply works.
	f.policy.AddRemote(r)
	var listenPort *int
	if r.ListenPort != 0 {
		listenPort = &r.ListenPort
	}
	req := listenRequest{Kind: kindRequestListener, UniqueName: r.Name, ListenPort: listenPort}
	var sc *dilation.Subchannel
	var untrack func()
	var resp listenResponse
	var err error
	for deadline := time.Now().Add(offerRetryWindow); ; {
		if sc, err = f.conn.Open(ctx, commandsSubprotocol); err != nil {
			return r, err
		}
		var ok bool
		if untrack, ok = f.track(sc); !ok {
			return r, net.ErrClosed
		}
		// Remove withdraws it while the peer decides, too: closing sc
		// tells the peer, and ends the wait here.
		f.closeWithService(r.Name, sc)
		resp, err = f.requestListener(ctx, sc, req)
		early := f.fowlPeer && err == nil && !resp.Listening && strings.HasPrefix(resp.Reason, "No service permitted")
		if !early || time.Now().After(deadline) || !f.forgetOffer(r.Name, sc) {
			break
		}
		untrack()
		sc.Close()
		select {
		case <-time.After(offerRetryDelay):
		case <-ctx.Done():
			return r, ctx.Err()
		}
	}
	if !f.offered(r.Name, sc) {
		untrack()
		sc.Close()
		return r, &RemovedError{Service: r.Name}
	}
	if err == nil && !resp.Listening {
		// One per offer the local user makes: not counted.
		reason := peerText(resp.Reason)
		err = &DeniedError{Service: r.Name, Reason: reason}
		f.emit(Refused{Service: r.Name, Reason: reason, ByPeer: true})
	}
	if err == nil && resp.DesiredPort != nil && *resp.DesiredPort != r.ConnectPort {
		err = fmt.Errorf("the peer wants %s's daemon on port %d, not %d", r.Name, *resp.DesiredPort, r.ConnectPort)
	}
	if err != nil {
		if f.forgetOffer(r.Name, sc) {
			f.policy.Remove(r.Name)
		}
		untrack()
		sc.Close()
		return r, err
	}
	addr := net.JoinHostPort(r.Address, strconv.Itoa(r.ConnectPort))
	f.register(r.Name, true, addr)
	f.emit(AwaitingConnect{Service: r.Name, Addr: addr})
	f.watchOffer(r.Name, sc, untrack)
	return r, nil
}

// RemovedError: the offer was removed (Remove) before the peer answered.
type RemovedError struct{ Service string }

func (e *RemovedError) Error() string { return fmt.Sprintf("%s was removed", e.Service) }

// offered says whether sc still keeps name's offer (Remove has not
// closed it).
func (f *Forwarder) offered(name string, sc *dilation.Subchannel) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.perService[name], io.Closer(sc))
}

// watchOffer waits for the peer to close the offer's command channel,
// which it does when it stops listening for the service (a gander peer
// whose user removed it): the offer is then over, and the peer may no
// longer connect to its daemon. Nothing else is read from the channel
// (the peer sends nothing more; anything it does is dropped).
func (f *Forwarder) watchOffer(name string, sc *dilation.Subchannel, untrack func()) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		_, err := io.Copy(io.Discard, sc)
		// An error is ours (Remove, Close) or the link's, not the peer's
		// doing: only its CLOSE, a clean end, withdraws the offer.
		if err != nil || f.ctx.Err() != nil || !f.forgetOffer(name, sc) {
			return
		}
		f.policy.Remove(name)
		untrack()
		sc.Close()
		f.emit(Withdrawn{Service: name, Ours: true})
	}()
}

// forgetOffer drops sc from name's offer, if Remove has not already; it
// says whether it did.
func (f *Forwarder) forgetOffer(name string, sc *dilation.Subchannel) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	closers := f.perService[name]
	i := slices.Index(closers, io.Closer(sc))
	if i < 0 {
		return false
	}
	if closers = slices.Delete(closers, i, i+1); len(closers) == 0 {
		delete(f.perService, name)
		if c := f.services[name]; c != nil && c.offered {
			delete(f.services, name)
		}
	} else {
		f.perService[name] = closers
	}
	return true
}

// requestListener sends req on sc and waits for the peer's answer, or for
// ctx, which closes sc; the reader goroutine ends with sc (which Close
// closes too).
func (f *Forwarder) requestListener(ctx context.Context, sc *dilation.Subchannel, req listenRequest) (listenResponse, error) {
	if err := writeFrame(sc, req); err != nil {
		return listenResponse{}, err
	}
	type result struct {
		resp listenResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var resp listenResponse
		body, err := readFrame(bufio.NewReader(sc))
		if err == nil {
			err = decodeMessage(body, &resp)
		}
		done <- result{resp, err}
	}()
	select {
	case r := <-done:
		return r.resp, r.err
	case <-ctx.Done():
		sc.Close()
		return listenResponse{}, ctx.Err()
	}
}

// freePort picks a port nothing listens on at addr, for a daemon the user
// starts once the offer is made.
func freePort(addr string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
