package mailbox_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gander-pair/gander/internal/testkit"
	"github.com/gander-pair/gander/wormhole/mailbox"
	"github.com/gander-pair/gander/wormhole/mailbox/mailboxtest"
)

// A consumer that does not read holds back the server instead of growing a
// queue: what the mailbox relays waits upstream, and nothing is lost.
func TestUndeliveredQueueIsBounded(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	a, b, _ := pair(t, srv)
	const total = 10 * mailbox.MaxUndelivered
	for i := range total {
		add(t, b, fmt.Sprint(i), "body")
	}
	ctx := testContext(t)
	eventually(t, "a's queue to fill", func() bool {
		n, err := mailbox.Undelivered(ctx, a)
		return err == nil && n >= mailbox.MaxUndelivered
	})
	time.Sleep(100 * time.Millisecond) // time enough to read the rest
	if n, err := mailbox.Undelivered(ctx, a); err != nil || n > mailbox.MaxUndelivered {
		t.Fatalf("a holds %d undelivered messages (%v), want at most %d", n, err, mailbox.MaxUndelivered)
	}
	for i := range total {
		if m := recv(t, a); m.Phase != fmt.Sprint(i) {
			t.Fatalf("message %d has phase %q", i, m.Phase)
		}
	}
	expectNone(t, a)
}

// A phase no client uses, longer than MaxPhaseLength, is dropped: each
// phase is remembered for the rest of the session.
func TestOverlongPhaseDropped(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	a, b, _ := pair(t, srv)
	add(t, b, strings.Repeat("p", mailbox.MaxPhaseLength+1), "long")
	add(t, b, strings.Repeat("p", mailbox.MaxPhaseLength), "longest allowed")
	if m := recv(t, a); len(m.Phase) != mailbox.MaxPhaseLength {
		t.Fatalf("a got a phase of %d bytes first", len(m.Phase))
	}
	expectNone(t, a)
}

// A server that accepts the connection but never answers costs
// reconnections, then a *TimeoutError: never a hang. Once it answers
// again, the same client carries on.
func TestSilentServerTimesOut(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	cfg := config(srv)
	cfg.ReplyTimeout = 100 * time.Millisecond
	cfg.RequestTimeout = time.Second
	c, err := mailbox.Dial(testContext(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c.Close(ctx, mailbox.Lonely)
	})
	srv.Ignore("claim", "allocate")
	start := time.Now()
	_, err = c.Claim(testContext(t), "7")
	var te *mailbox.TimeoutError
	if !errors.As(err, &te) || te.Op != "claim" {
		t.Fatalf("Claim on a silent server = %v, want *TimeoutError for claim", err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("Claim took %v to time out", elapsed)
	}
	if n := srv.Connections(); n < 3 {
		t.Errorf("Connections() = %d: the client did not replace the silent connection", n)
	}
	if _, err := c.Allocate(testContext(t)); !errors.As(err, &te) || te.Op != "allocate" {
		t.Errorf("Allocate on a silent server = %v, want *TimeoutError", err)
	}

	srv.Ignore()
	if mb, err := c.Claim(testContext(t), "7"); err != nil || mb == "" {
		t.Fatalf("Claim once the server answers = %q, %v", mb, err)
	}
}

func TestCrowdedIsErrCrowded(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	_, _, n := pair(t, srv)
	c := dial(t, srv)
	if _, err := c.Claim(testContext(t), n); !errors.Is(err, mailbox.ErrCrowded) {
		t.Fatalf("third Claim = %v, want ErrCrowded", err)
	}
}
