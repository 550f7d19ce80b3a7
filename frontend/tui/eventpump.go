package tui

import (
	"sync"

	"github.com/gander-pair/gander/session"
)

// eventPump reads the session's events as they come, whether or not the
// interface takes them now: while a shared terminal is full-screen
// (tea.Exec) Bubble Tea's loop waits, and a session whose events nobody
// reads makes its reporters wait (a transfer would stall, and its peer
// give up). Once a backlog builds, progress reports are coalesced (a
// newer Traffic, or TransferProgress of the same transfer, replaces the
// older one): only the latest counts on the screen. Other events are
// kept, up to maxPumpedEvents; beyond that the pump stops reading, and
// the session waits as it did without it.
type eventPump struct {
	mu     sync.Mutex
	items  []session.Event
	closed bool          // the session's events ended
	more   chan struct{} // a token while items is not empty or closed
	room   chan struct{} // a token once next has taken an item
	// ended is closed once Closed (or the end of the events) has come:
	// a full-screen view waiting for a command the session dropped
	// stops waiting.
	ended     chan struct{}
	endedOnce sync.Once
}

const (
	// maxPumpedEvents bounds the events the pump holds.
	maxPumpedEvents = 4096
	// coalesceAfter: progress reports are coalesced once this many wait.
	coalesceAfter = 32
)

// newEventPump starts the pump's goroutine, which ends with events or
// done.
func newEventPump(events <-chan session.Event, done <-chan struct{}) *eventPump {
	p := &eventPump{more: make(chan struct{}, 1), room: make(chan struct{}, 1), ended: make(chan struct{})}
	go p.run(events, done)
	return p
}

func (p *eventPump) run(events <-chan session.Event, done <-chan struct{}) {
	for {
		var ev session.Event
		var ok bool
		select {
		case ev, ok = <-events:
		case <-done:
			return
		}
		p.mu.Lock()
		if !ok {
			p.closed = true
			p.mu.Unlock()
			p.end()
			wake(p.more)
			return
		}
		if _, last := ev.(session.Closed); last {
			p.end()
		}
		for len(p.items) >= maxPumpedEvents {
			p.mu.Unlock()
			select {
			case <-p.room:
			case <-done:
				return
			}
			p.mu.Lock()
		}
		p.items = coalesce(p.items, ev)
		p.mu.Unlock()
		wake(p.more)
	}
}

// coalesce appends ev to items, dropping the report ev supersedes once a
// backlog has built.
func coalesce(items []session.Event, ev session.Event) []session.Event {
	if len(items) >= coalesceAfter {
		for i, old := range items {
			if supersedes(ev, old) {
				items = append(items[:i], items[i+1:]...)
				break
			}
		}
	}
	return append(items, ev)
}

func supersedes(newer, older session.Event) bool {
	switch n := newer.(type) {
	case session.Traffic:
		_, ok := older.(session.Traffic)
		return ok
	case session.TransferProgress:
		o, ok := older.(session.TransferProgress)
		return ok && o.ID == n.ID && o.Outgoing == n.Outgoing
	}
	return false
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// next waits for the next event: false once the session's events ended,
// or done.
func (p *eventPump) next(done <-chan struct{}) (session.Event, bool) {
	for {
		p.mu.Lock()
		if len(p.items) > 0 {
			ev := p.items[0]
			p.items[0] = nil
			p.items = p.items[1:]
			more := len(p.items) > 0
			p.mu.Unlock()
			wake(p.room)
			if more {
				wake(p.more)
			}
			return ev, true
		}
		closed := p.closed
		p.mu.Unlock()
		if closed {
			wake(p.more) // for the next caller
			return nil, false
		}
		select {
		case <-p.more:
		case <-done:
			return nil, false
		}
	}
}

func (p *eventPump) end() { p.endedOnce.Do(func() { close(p.ended) }) }
