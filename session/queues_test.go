package session

import (
	"errors"
	"testing"
	"time"
)

// Commands beyond MaxQueuedCommands are refused, not queued without end.
func TestCommandQueueIsBounded(t *testing.T) {
	q := newCommandQueue()
	for range MaxQueuedCommands {
		if err := q.push(Ping{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.push(Ping{}); !errors.Is(err, ErrTooManyCommands) {
		t.Fatalf("push beyond the bound: %v, want ErrTooManyCommands", err)
	}
	if _, ok := q.pop(); !ok {
		t.Fatal("nothing to pop")
	}
	if err := q.push(Ping{}); err != nil {
		t.Fatalf("push after a pop: %v", err)
	}
}

// Events beyond MaxQueuedEvents wait for the reader rather than pile up.
func TestEventQueueIsBounded(t *testing.T) {
	q := newEventQueue()
	for range MaxQueuedEvents {
		q.emit(PeerClosing{})
	}
	emitted := make(chan struct{})
	go func() {
		q.emit(PeerClosing{})
		q.emit(Closed{})
		close(emitted)
	}()
	select {
	case <-emitted:
		t.Fatal("emit did not wait with MaxQueuedEvents queued")
	case <-time.After(100 * time.Millisecond):
	}
	go q.pump()
	n := 0
	for range q.out {
		n++
	}
	<-emitted
	if n != MaxQueuedEvents+2 {
		t.Fatalf("read %d events, want %d", n, MaxQueuedEvents+2)
	}
}
