package transit

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"
)

// backoff yields jittered delays from RetryInitial doubling up to RetryCap.
type backoff struct{ next time.Duration }

func (b *backoff) delay() time.Duration {
	if b.next == 0 {
		b.next = RetryInitial
	}
	d := jitter(b.next)
	b.next = min(2*b.next, RetryCap)
	return d
}

func (b *backoff) reset() { b.next = 0 }

func jitter(d time.Duration) time.Duration {
	f := 1 - RetryJitter + 2*RetryJitter*rand.Float64()
	return time.Duration(float64(d) * f)
}

// AttemptError is one failed connection attempt: to where, and why.
type AttemptError struct {
	Via   string // the hint tried, as Hint.String shows it
	Relay bool   // a transit relay, not the peer directly
	Err   error
}

func (e *AttemptError) Error() string { return e.Via + ": " + e.Err.Error() }
func (e *AttemptError) Unwrap() error { return e.Err }

// Event is what a Race, a Prober or WatchAddresses tells its owner, on the
// channel the owner gave it: AttemptFailed, RelayWaiting, Selected,
// PathBack or AddressesChanged. ID is the RaceConfig's or the Prober's, so
// that the owner can ignore one it no longer wants.
type Event interface{ transitEvent() }

// AttemptFailed is a connection attempt, or a probe, that failed.
type AttemptFailed struct {
	ID  int
	Err *AttemptError
}

// RelayWaiting is a connection that reached a relay and now waits for the
// peer's.
type RelayWaiting struct{ ID int }

// Selected is the race's winner: its handshake succeeded first and
// RaceConfig.Select confirmed it. The owner now owns Result.
type Selected[R any] struct {
	ID      int
	Result  R
	Attempt Attempt
}

// PathBack ends a probe: a relay accepted a TCP connection (or the probe
// ran out of patience, with Reachable false).
type PathBack struct {
	ID        int
	Reachable bool
}

// AddressesChanged carries the machine's new addresses (every interface's,
// loopback included, sorted).
type AddressesChanged struct{ Addrs []string }

func (AttemptFailed) transitEvent()    {}
func (RelayWaiting) transitEvent()     {}
func (Selected[R]) transitEvent()      {}
func (PathBack) transitEvent()         {}
func (AddressesChanged) transitEvent() {}

// post delivers ev unless ctx ends first, and reports whether it did.
func post(ctx context.Context, events chan<- Event, ev Event) bool {
	select {
	case events <- ev:
		return true
	case <-ctx.Done():
		return false
	}
}

// Prober connects to the relays, again and again, until one accepts a TCP
// connection, and then posts PathBack. It posts each failure as
// AttemptFailed. Dilation probes before asking for a new generation, so
// that the peer's attempts come once the path is back.
type Prober struct {
	stop context.CancelFunc
	wg   sync.WaitGroup
	kick chan struct{}
}

// StartProber starts probing relays; after patience (if not zero) it posts
// PathBack with Reachable false and gives up. Events carry id.
func StartProber(id int, relays []Hint, patience time.Duration, log *slog.Logger, events chan<- Event) *Prober {
	ctx, cancel := context.WithCancel(context.Background())
	p := &Prober{stop: cancel, kick: make(chan struct{}, 1)}
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
				d := net.Dialer{Timeout: DialTimeout}
				conn, err := d.DialContext(ctx, "tcp", h.Address())
				if err == nil {
					conn.Close()
					post(ctx, events, PathBack{id, true})
					return
				}
				if ctx.Err() != nil {
					return
				}
				log.Debug("relay unreachable", "relay", h.String(), "err", err)
				if !post(ctx, events, AttemptFailed{id, &AttemptError{Via: h.String(), Relay: true, Err: err}}) {
					return
				}
			}
			select {
			case <-time.After(b.delay()):
			case <-p.kick:
				b.reset()
			case <-giveUp:
				log.Info("the relay is still unreachable; trying anyway", "waited", patience)
				post(ctx, events, PathBack{id, false})
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return p
}

// RetryNow makes the prober try again at once.
func (p *Prober) RetryNow() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Stop ends the probe; Wait returns once its goroutine has.
func (p *Prober) Stop() { p.stop() }

// Wait blocks until the prober's goroutine has returned.
func (p *Prober) Wait() { p.wg.Wait() }

// WatchAddresses posts AddressesChanged whenever the machine's addresses
// differ from the previous look, until ctx ends: it looks each time the
// kernel reports an address change (Linux) and every AddressPollInterval.
// It runs on the caller's goroutine.
func WatchAddresses(ctx context.Context, events chan<- Event) {
	last := allLocalAddresses()
	kernel := addressChanges(ctx)
	poll := AddressPollInterval
	if kernel != nil {
		// The kernel tells us; the poll only covers a lost notification
		// (and costs an idle app CPU once a second otherwise).
		poll = AddressPollWithNotifications
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-kernel:
		case <-ctx.Done():
			return
		}
		now := allLocalAddresses()
		if slices.Equal(now, last) {
			continue
		}
		last = now
		if !post(ctx, events, AddressesChanged{now}) {
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
