package dilation

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"
)

// Reconnection never gives up: an outage may last a train ride. What it
// bounds is the gap between attempts, so that a path that returns is used
// within about retryCap, and the work each attempt costs.
const (
	// Each hint (the relay, each of the peer's direct addresses) is
	// retried with a backoff that starts at retryInitial and doubles up to
	// retryCap, each delay jittered by ±retryJitter, one attempt in flight
	// per hint.
	retryInitial = 100 * time.Millisecond
	retryCap     = 500 * time.Millisecond
	retryJitter  = 0.25

	// dialTimeout bounds one TCP connect: a path that drops packets
	// instead of refusing must not hold a hint's retries for long.
	dialTimeout = 3 * time.Second

	// relayPartnerTimeout bounds how long a connection waits at the
	// transit relay for the peer's: one whose partner never comes (the
	// peer gave up, or the connection died silently) is abandoned and
	// retried.
	relayPartnerTimeout = 10 * time.Second

	// The Leader starts a new generation (sends "reconnect", as the
	// reference does when a connection is lost) when its connection has
	// waited at the relay nudgeAfterRelayWait without the peer arriving:
	// the path is back but the peer is not trying (the reference makes one
	// attempt per generation). It also does so after generationPatience
	// with no connection at all (the peer's hints may be stale). Both
	// double after each new generation up to maxNudgeDelay, and reset
	// once connected.
	nudgeAfterRelayWait = 2 * time.Second
	generationPatience  = 15 * time.Second
	maxNudgeDelay       = 60 * time.Second

	// Before asking for a new generation after a loss (the Leader's
	// "reconnect", the Follower's "reconnecting"), a side probes the
	// relay with a TCP connect, so that a reference peer's single attempt
	// of the new generation is made once the path is back. A side that
	// may also connect directly waits for the probe at most
	// directProbePatience: the relay alone may be what is down.
	directProbePatience = 3 * time.Second

	// addressPollInterval is how often the machine's addresses are
	// compared with the last ones: on a change, the direct hints are
	// announced again and waiting attempts are retried at once.
	addressPollInterval = time.Second
)

// backoff yields jittered delays from retryInitial doubling up to retryCap.
type backoff struct{ next time.Duration }

func (b *backoff) delay() time.Duration {
	if b.next == 0 {
		b.next = retryInitial
	}
	d := jitter(b.next)
	b.next = min(2*b.next, retryCap)
	return d
}

func (b *backoff) reset() { b.next = 0 }

func jitter(d time.Duration) time.Duration {
	f := 1 - retryJitter + 2*retryJitter*rand.Float64()
	return time.Duration(float64(d) * f)
}

// attemptFailed tells the manager that a connection attempt, or a probe,
// failed, for the status the user sees.
type attemptFailed struct{ err *AttemptError }

// AttemptError is one failed connection attempt (Status.LastFailure): to
// where, and why.
type AttemptError struct {
	Via   string // the hint tried, as in Status.Via
	Relay bool   // a transit relay, not the peer directly
	Err   error
}

func (e *AttemptError) Error() string { return e.Via + ": " + e.Err.Error() }
func (e *AttemptError) Unwrap() error { return e.Err }

// relayWaiting tells the manager that a connection of generation reached
// the relay and waits for the peer's.
type relayWaiting struct{ generation int }

// pathBack ends a probe: a relay accepted a TCP connection (or the probe
// ran out of patience, with reachable false).
type pathBack struct {
	probe     int
	reachable bool
}

// addressesChanged carries the machine's new addresses.
type addressesChanged struct{ addrs []string }

// prober connects to the relays, again and again, until one accepts a TCP
// connection, and then reports pathBack. It reports each failure as
// attemptFailed. Stop it with stop; wait returns once it has.
type prober struct {
	stop context.CancelFunc
	wg   sync.WaitGroup
	kick chan struct{}
}

func startProber(id int, relays []hint, patience time.Duration, log *slog.Logger, events chan<- managerEvent) *prober {
	ctx, cancel := context.WithCancel(context.Background())
	p := &prober{stop: cancel, kick: make(chan struct{}, 1)}
	post := func(ev managerEvent) bool {
		select {
		case events <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		var giveUp <-chan time.Time
		if patience > 0 {
			t := time.NewTimer(patience)
			defer t.Stop()
			giveUp = t.C
		}
		var b backoff
		for {
			for _, h := range relays {
				d := net.Dialer{Timeout: dialTimeout}
				conn, err := d.DialContext(ctx, "tcp", h.address())
				if err == nil {
					conn.Close()
					post(pathBack{id, true})
					return
				}
				if ctx.Err() != nil {
					return
				}
				log.Debug("relay unreachable", "relay", h.String(), "err", err)
				if !post(attemptFailed{&AttemptError{Via: h.String(), Relay: true, Err: err}}) {
					return
				}
			}
			select {
			case <-time.After(b.delay()):
			case <-p.kick:
				b.reset()
			case <-giveUp:
				log.Info("the relay is still unreachable; trying anyway", "waited", patience)
				post(pathBack{id, false})
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return p
}

// retryNow makes the prober try again at once.
func (p *prober) retryNow() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// watchAddresses posts addressesChanged whenever the machine's addresses
// differ from the previous poll, until ctx ends.
func watchAddresses(ctx context.Context, events chan<- managerEvent) {
	last := allLocalAddresses()
	t := time.NewTicker(addressPollInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		now := allLocalAddresses()
		if slices.Equal(now, last) {
			continue
		}
		last = now
		select {
		case events <- addressesChanged{now}:
		case <-ctx.Done():
			return
		}
	}
}

// allLocalAddresses lists every address of the machine's interfaces,
// loopback included, sorted.
func allLocalAddresses() []string {
	addrs, _ := net.InterfaceAddrs()
	var out []string
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok {
			out = append(out, ipnet.IP.String())
		}
	}
	slices.Sort(out)
	return out
}
