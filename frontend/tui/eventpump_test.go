package tui

import (
	"testing"
	"time"

	"github.com/gander-pair/gander/session"
)

// While nobody takes the events (a full-screen share), the session's
// progress reports do not wait: they are coalesced, the other events kept
// in order; beyond maxPumpedEvents of those the pump stops reading.
func TestEventPumpCoalescesProgressWhileNobodyReads(t *testing.T) {
	events, done := make(chan session.Event), make(chan struct{})
	defer close(done)
	p := newEventPump(events, done)
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		for i := range 10000 {
			events <- session.Traffic{}
			events <- session.TransferProgress{ID: 1, Done: int64(i)}
			if i%1000 == 0 {
				events <- session.ConnectionOpened{ID: int64(i)}
			}
		}
		events <- session.PeerClosing{} // the end of the feed
	}()
	select {
	case <-fed:
	case <-time.After(10 * time.Second):
		t.Fatal("the session's progress reports waited for a reader")
	}
	var got []session.Event
	for {
		ev, _ := p.next(done)
		if _, end := ev.(session.PeerClosing); end {
			break
		}
		got = append(got, ev)
	}
	// The backlog before coalescing starts, the ten others, the latest
	// two reports.
	if len(got) > coalesceAfter+12 {
		t.Errorf("%d events held, want at most %d", len(got), coalesceAfter+12)
	}
	var opened []int64
	var last session.TransferProgress
	for _, ev := range got {
		switch ev := ev.(type) {
		case session.ConnectionOpened:
			opened = append(opened, ev.ID)
		case session.TransferProgress:
			last = ev
		}
	}
	if len(opened) != 10 || opened[0] != 0 || opened[9] != 9000 {
		t.Errorf("other events lost or reordered: %v", opened)
	}
	if last.Done != 9999 {
		t.Errorf("the latest progress is %d, want 9999", last.Done)
	}

	// Events that cannot be coalesced are held up to the bound.
	blocked := make(chan struct{})
	go func() {
		defer close(blocked)
		for i := range maxPumpedEvents + 1 {
			select {
			case events <- session.ConnectionOpened{ID: int64(i)}:
			case <-done:
				return
			}
		}
	}()
	held := func() int {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.items)
	}
	for deadline := time.Now().Add(10 * time.Second); held() < maxPumpedEvents && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if n := held(); n != maxPumpedEvents {
		t.Errorf("%d events held, want the bound %d", n, maxPumpedEvents)
	}
	p.next(done)
	select {
	case <-blocked:
	case <-time.After(5 * time.Second):
		t.Fatal("taking an event did not make room")
	}
}
