package plain

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gander-pair/gander/session"
	"github.com/gander-pair/gander/wormhole/mailbox/mailboxtest"
)

// The mailbox server's outage in lines: lost once, back once with how
// long and how many attempts.
func TestPrintServerStatus(t *testing.T) {
	lost := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	var out strings.Builder
	var link linkLines
	for _, ev := range []session.Event{
		session.ServerStatus{Since: lost},
		session.ServerStatus{Since: lost, Attempts: 1, LastFailure: syscall.ECONNREFUSED},
		session.ServerStatus{Since: lost, Attempts: 4, LastFailure: syscall.ECONNREFUSED},
		session.ServerStatus{Connected: true, Outage: 12300 * time.Millisecond},
		session.ServerStatus{Since: lost},
		session.ServerStatus{Connected: true, Outage: 800 * time.Millisecond},
	} {
		printEvent(&out, &link, ev)
	}
	want := "Mailbox server connection lost; reconnecting (the link to the peer, if up, goes on)...\n" +
		"Mailbox server reconnected after 12.3s (4 attempts)\n" +
		"Mailbox server connection lost; reconnecting (the link to the peer, if up, goes on)...\n" +
		"Mailbox server reconnected after 800ms\n"
	if out.String() != want {
		t.Errorf("printed:\n%s\nwant:\n%s", out.String(), want)
	}
}

func TestPrintNobodyAndWords(t *testing.T) {
	var out strings.Builder
	var link linkLines
	v := make([]byte, 32)
	for i := range v {
		v[i] = byte(i * 7)
	}
	gander := json.RawMessage(`{"gander":{"features":["forwards-v1","files-v1"]}}`)
	printEvent(&out, &link, session.NobodyOnCode{Nameplate: "7\x1b[2J"})
	printEvent(&out, &link, session.PeerConnected{Verifier: v, Peer: session.ParsePeer(gander)})
	printEvent(&out, &link, session.PeerConnected{Verifier: v, Peer: session.ParsePeer(nil)})
	want := "Nobody is on nameplate 7\uFFFD[2J yet; waiting for the peer (a code works only once: if it was used already, ask for a new one)\n" +
		"Peer connected. Verifier: 0007 0e15 1c23 2a31 383f 464d 545b 6269 7077 7e85 8c93 9aa1 a8af b6bd c4cb d2d9\n" +
		"Verifier words (both gander): aardvark amusement apple bifocals befriend cannonball brickyard company\n" +
		"Peer connected. Verifier: 0007 0e15 1c23 2a31 383f 464d 545b 6269 7077 7e85 8c93 9aa1 a8af b6bd c4cb d2d9\n"
	if out.String() != want {
		t.Errorf("printed:\n%s\nwant:\n%s", out.String(), want)
	}
}

// syncBuilder is a strings.Builder safe to read while Run writes.
type syncBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuilder) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuilder) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// --send says, with the code, that it is for a gander peer and what to
// use for `wormhole receive`.
func TestSendHintWithCode(t *testing.T) {
	srv := mailboxtest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out syncBuilder
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, session.Config{MailboxURL: srv.URL(), CodeLength: 2}, []string{t.TempDir()}, &out)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "`gander send PATH`") {
		if time.Now().After(deadline) {
			t.Fatalf("no hint:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(out.String(), "Wormhole code is: ") {
		t.Errorf("output:\n%s", out.String())
	}
	cancel()
	<-done
}
