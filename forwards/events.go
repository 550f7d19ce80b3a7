package forwards

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// Event reports what the forwarder did, for the interface and --json.
type Event interface{ isEvent() }

type (
	// Listening: we listen for the peer's service at Addr.
	Listening struct{ Service, Addr string }
	// AwaitingConnect: the peer listens for our service; connections will
	// be forwarded to our daemon at Addr.
	AwaitingConnect struct{ Service, Addr string }
	// Refused: a request was refused, by us (ByPeer false) or the peer.
	Refused struct {
		Service, Reason string
		ByPeer          bool
	}
	// ConnectionOpened: a forwarded connection started. Incoming means the
	// peer opened it (to our daemon).
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
	// Problem is anything else that went wrong without ending the session.
	Problem struct{ Err error }
	// Removed: the service was removed locally (Forwarder.Remove).
	Removed struct{ Service string }
	// Withdrawn: the peer ended a service: Ours, it stopped listening for
	// our offer (it closed the offer's command channel); otherwise it
	// withdrew its offer, and our listener for it closed.
	Withdrawn struct {
		Service string
		Ours    bool
	}
)

func (Listening) isEvent()        {}
func (AwaitingConnect) isEvent()  {}
func (Refused) isEvent()          {}
func (ConnectionOpened) isEvent() {}
func (ConnectionClosed) isEvent() {}
func (Problem) isEvent()          {}
func (Removed) isEvent()          {}
func (Withdrawn) isEvent()        {}

// ServiceStats are one service's counters.
type ServiceStats struct {
	Service string
	// Offered is true for our services (--remote), false for the peer's
	// that we listen for (--local).
	Offered           bool
	Addr              string
	Open, Total       int64
	BytesIn, BytesOut int64 // in: from the peer; out: to the peer
}

// ConnectionStats are one open connection's counters.
type ConnectionStats struct {
	ID       int64
	Service  string
	Incoming bool // opened by the peer, to our daemon
	Since    time.Time
	// in: from the peer; out: to the peer
	BytesIn, BytesOut int64
}

// serviceCounters are what Stats reports of one service; the counters
// are atomic because each connection's copies add to them.
type serviceCounters struct {
	offered           bool
	addr              string
	open, total       atomic.Int64
	bytesIn, bytesOut atomic.Int64
}

// Stats returns every service's counters.
func (f *Forwarder) Stats() []ServiceStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ServiceStats
	for name, c := range f.services {
		out = append(out, ServiceStats{
			Service: name, Offered: c.offered, Addr: c.addr,
			Open: c.open.Load(), Total: c.total.Load(),
			BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(),
		})
	}
	return out
}

// Connections returns the open connections' counters, oldest first.
func (f *Forwarder) Connections() []ConnectionStats {
	f.mu.Lock()
	out := make([]ConnectionStats, 0, len(f.open))
	for _, c := range f.open {
		out = append(out, c.stats())
	}
	f.mu.Unlock()
	slices.SortFunc(out, func(a, b ConnectionStats) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// register records a service's direction and address for Stats.
func (f *Forwarder) register(service string, offered bool, addr string) {
	c := f.counters(service)
	f.mu.Lock()
	c.offered, c.addr = offered, addr
	f.mu.Unlock()
}

// counters are service's, made on first use: a connection may come
// before register, and keeps adding to them after Remove.
func (f *Forwarder) counters(service string) *serviceCounters {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.services[service]
	if c == nil {
		c = &serviceCounters{}
		f.services[service] = c
	}
	return c
}

// What follows reports the peer's misbehaviour and refusals, each bounded
// so that a hostile peer cannot flood the user's screen, a --json reader
// or the log.

// limitReached reports a refusal because of a bound.
func (f *Forwarder) limitReached(err error) {
	key := err.Error()
	if limit := (*LimitError)(nil); errors.As(err, &limit) {
		key = limit.What
	}
	f.reportOnce(key, fmt.Errorf("refused the peer: %w", err))
}

// reportOnce tells the user about a peer's misbehaviour the first time it
// happens (for each key, a bounded set); later ones are only logged, so
// that a peer cannot flood the user's screen or log.
func (f *Forwarder) reportOnce(key string, err error) {
	f.problemOnce(key, "peer misbehaved", err)
}

// problemOnce reports err as a Problem the first time key comes, and
// only logs it (as what) later.
func (f *Forwarder) problemOnce(key, what string, err error) {
	f.mu.Lock()
	first := !f.reported[key]
	f.reported[key] = true
	f.mu.Unlock()
	if first {
		f.log.Warn(what+" (reported once)", "err", err)
		f.emit(Problem{Err: err})
	} else {
		f.log.Debug(what, "err", err)
	}
}

// refused reports the refusal of a peer's request, as events, up to
// limits.refusalsReported in the session; later ones are only logged.
func (f *Forwarder) refused(events ...Event) {
	if n := f.refusals.Add(1); n > int64(f.limits.refusalsReported) {
		f.reportOnce("refusals", fmt.Errorf("refused %d requests of the peer: further refusals are only logged", f.limits.refusalsReported))
		f.log.Debug("refused the peer", "events", events)
		return
	}
	for _, e := range events {
		f.emit(e)
	}
}

// refusedByPeer is the error of our connection the peer refused: its
// reason as peerText, for the first limits.refusalsReported refusals of
// the session; later ones only say that the peer refused, and their
// reasons are logged, so that a peer refusing every connection does not
// put its words on the user's screen for each.
func (f *Forwarder) refusedByPeer(service, reason string) *DeniedError {
	reason = peerText(reason)
	if n := f.refusalsByPeer.Add(1); n > int64(f.limits.refusalsReported) {
		f.problemOnce("refusals by the peer", "the peer refused a connection",
			fmt.Errorf("the peer refused %d connections: further reasons are only logged", f.limits.refusalsReported))
		f.log.Debug("the peer refused a connection", "service", service, "reason", reason)
		return &DeniedError{Service: service, Reason: reasonNotShown}
	}
	return &DeniedError{Service: service, Reason: reason}
}

// reasonNotShown stands for the peer's reason beyond
// limits.refusalsReported.
const reasonNotShown = "Refused by the peer"

// refuse sends the peer a refusal and closes sc; a peer that makes no
