package mailbox_test

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gander-pair/gander/internal/testkit"
	"github.com/gander-pair/gander/wormhole/mailbox"
	"github.com/gander-pair/gander/wormhole/mailbox/mailboxtest"
)

// nextStatus waits for the client's next Status.
func nextStatus(t *testing.T, c *mailbox.Client) mailbox.Status {
	t.Helper()
	select {
	case st := <-c.StatusUpdates():
		return st
	case <-time.After(5 * time.Second):
		t.Fatal("no status update within 5 s")
		return mailbox.Status{}
	}
}

// The server going away and coming back is reported as it happens: lost
// (with since when), each failed attempt counted with its reason, and
// back with the outage's length.
func TestStatusAcrossOutage(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	c := dial(t, srv)
	select {
	case st := <-c.StatusUpdates():
		t.Fatalf("a status before anything happened: %+v", st)
	default:
	}
	srv.SetDown(true)
	before := time.Now()
	srv.DropConnections()
	lost := nextStatus(t, c)
	if lost.Connected || lost.Since.Before(before) || lost.Attempts != 0 {
		t.Fatalf("first status after the drop = %+v, want lost since the drop, no attempts yet", lost)
	}
	var failed mailbox.Status
	for failed.Attempts < 2 {
		failed = nextStatus(t, c)
		if failed.Connected {
			t.Fatalf("connected while the server refuses: %+v", failed)
		}
	}
	if failed.LastErr == nil || !failed.Since.Equal(lost.Since) {
		t.Errorf("a failed attempt's status = %+v, want the reason and the same since", failed)
	}
	srv.SetDown(false)
	var back mailbox.Status
	for !back.Connected {
		back = nextStatus(t, c)
	}
	if back.Outage <= 0 || back.Outage > 10*time.Second {
		t.Errorf("outage = %v", back.Outage)
	}
	// The session carries on over the new connection.
	if _, err := c.List(testContext(t)); err != nil {
		t.Fatalf("List after the outage: %v", err)
	}
}

// A reader that never reads does not hold the client up: only the
// latest status waits.
func TestStatusUnreadDoesNotBlock(t *testing.T) {
	testkit.CheckNoLeaks(t)
	srv := mailboxtest.New(t)
	c := dial(t, srv)
	for range 3 {
		srv.DropConnections()
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := c.List(testContext(t)); err != nil {
		t.Fatalf("List: %v", err)
	}
	eventually(t, "the latest status to say connected", func() bool {
		select {
		case st := <-c.StatusUpdates():
			return st.Connected
		default:
			return false
		}
	})
}

// An unreachable server at the start reads as a person's sentence, not
// the dialer's nested text, and matches ErrUnreachable.
func TestConnectErrorIsHuman(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "ws://" + l.Addr().String() + "/v1"
	l.Close()
	_, err = mailbox.Dial(testContext(t), mailbox.Config{URL: url, AppID: appID})
	if !errors.Is(err, mailbox.ErrUnreachable) {
		t.Fatalf("Dial = %v, want ErrUnreachable", err)
	}
	want := "cannot reach the mailbox server at " + url + " (connection refused: nothing listens there): check the address (--mailbox) and the network"
	if err.Error() != want {
		t.Errorf("error text:\n got %q\nwant %q", err, want)
	}
	for _, raw := range []string{"dial tcp", "WebSocket", "Get "} {
		if strings.Contains(err.Error(), raw) {
			t.Errorf("the text has the dialer's %q: %q", raw, err)
		}
	}
}

func TestReason(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&net.DNSError{Name: "mailbox.example", IsNotFound: true}, "no such host: mailbox.example"},
		{&net.OpError{Op: "dial", Err: &timeoutErr{}}, "no answer: timed out"},
		{errors.New("failed to WebSocket dial: expected handshake response status code 101 but got 404"),
			"something answered there, but not as a mailbox server"},
		{errors.New(strings.Repeat("x", 200)), strings.Repeat("x", 80) + "…"},
	} {
		if got := mailbox.Reason(tc.err); got != tc.want {
			t.Errorf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

type timeoutErr struct{}

func (*timeoutErr) Error() string   { return "i/o timeout" }
func (*timeoutErr) Timeout() bool   { return true }
func (*timeoutErr) Temporary() bool { return true }
