package dilation

import (
	"errors"
	"testing"
	"time"
)

// A Write waiting for the connection to come back (the window of
// unacknowledged data is full while disconnected) ends when its
// subchannel is closed, rather than when the connection returns.
func TestCloseEndsAWriteParkedWhileDisconnected(t *testing.T) {
	relay, a, sc := relayedEcho(t)
	relay.down()
	if !eventually(5*time.Second, func() bool { return a.Status().State != Connected }) {
		t.Fatal("still connected with the relay down")
	}
	written := make(chan error, 1)
	go func() {
		_, err := sc.Write(make([]byte, 2*window))
		written <- err
	}()
	select {
	case err := <-written:
		t.Fatalf("a write of twice the window returned while disconnected: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	sc.Close()
	select {
	case err := <-written:
		if !errors.Is(err, ErrClosedWrite) {
			t.Errorf("the parked write returned %v, want ErrClosedWrite", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("closing the subchannel did not end its parked write")
	}
}
