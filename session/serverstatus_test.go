package session

import (
	"context"
	"testing"
	"time"

	"github.com/gander-pair/gander/wormhole/mailbox/mailboxtest"
)

// waitMatch waits for an event of type T that ok accepts.
func waitMatch[T Event](t *testing.T, r *recorder, ok func(T) bool) T {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		for _, e := range r.events {
			if v, is := e.(T); is && ok(v) {
				r.mu.Unlock()
				return v
			}
		}
		r.mu.Unlock()
		select {
		case <-r.signal:
		case <-deadline:
			var zero T
			t.Fatalf("no matching %T event; got %v", zero, r.events)
			return zero
		}
	}
}

// Joining a nameplate nobody is on says so; a nameplate in use does
// not. The mailbox server going away and coming back while waiting for
// the peer is reported, with since when and the attempts.
func TestNobodyOnCodeAndServerStatus(t *testing.T) {
	server := mailboxtest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lonely := newRecorder()
	done := make(chan error, 1)
	go func() {
		done <- runSession(ctx, Config{MailboxURL: server.URL(), Code: "4-purple-sausages"}, nil, lonely.emit)
	}()
	if got := waitEvent[NobodyOnCode](t, lonely); got.Nameplate != "4" {
		t.Errorf("NobodyOnCode = %+v, want nameplate 4", got)
	}

	server.SetDown(true)
	server.DropConnections()
	down := waitMatch(t, lonely, func(s ServerStatus) bool { return !s.Connected })
	if down.Since.IsZero() {
		t.Errorf("lost with no since: %+v", down)
	}
	waitMatch(t, lonely, func(s ServerStatus) bool { return !s.Connected && s.Attempts > 0 && s.LastFailure != nil })
	server.SetDown(false)
	back := waitMatch(t, lonely, func(s ServerStatus) bool { return s.Connected })
	if back.Outage <= 0 {
		t.Errorf("back with no outage: %+v", back)
	}

	// The peer joins the same nameplate, which is in use: no hint.
	peer := newRecorder()
	peerDone := make(chan error, 1)
	go func() {
		peerDone <- runSession(ctx, Config{MailboxURL: server.URL(), Code: "4-purple-sausages"}, nil, peer.emit)
	}()
	waitEvent[PeerConnected](t, peer)
	peer.mu.Lock()
	for _, e := range peer.events {
		if _, is := e.(NobodyOnCode); is {
			t.Error("NobodyOnCode for a nameplate the peer was on")
		}
	}
	peer.mu.Unlock()
	cancel()
	<-done
	<-peerDone
}
