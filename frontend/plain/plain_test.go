package plain

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gander-pair/gander/session"
)

// The connection's story in plain lines: the first connection as before,
// an outage once however many statuses it brings, then how it ended.
func TestPrintEventLinkStatus(t *testing.T) {
	lost := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	first := session.LinkStatus{State: session.LinkConnected, Generation: 1, Via: "relay 10.0.0.1:4001", Relayed: true}
	reconnecting := func(gen, attempts int) session.LinkStatus {
		return session.LinkStatus{State: session.LinkReconnecting, Generation: gen, Since: lost, Attempts: attempts,
			LastFailure: syscall.ECONNREFUSED}
	}
	back := func(gen int, outage time.Duration, via string) session.LinkStatus {
		return session.LinkStatus{State: session.LinkConnected, Generation: gen, Via: via, Outage: outage}
	}
	for _, tc := range []struct {
		name     string
		statuses []session.LinkStatus
		want     string
	}{
		{"first connection", []session.LinkStatus{{State: session.LinkWaiting}, {State: session.LinkConnecting, Generation: 1}, first},
			"Connected via relay 10.0.0.1:4001 (generation 1)\n"},
		{"the same connection reported again", []session.LinkStatus{first, first}, "Connected via relay 10.0.0.1:4001 (generation 1)\n"},
		{"an outage and its end", []session.LinkStatus{first, reconnecting(1, 0), reconnecting(1, 1), reconnecting(2, 3), reconnecting(3, 7),
			back(4, 3240*time.Millisecond, "relay 10.0.0.1:4001")},
			"Connected via relay 10.0.0.1:4001 (generation 1)\n" +
				"Connection lost; reconnecting...\n" +
				"Reconnected via relay 10.0.0.1:4001 after 3.2s (7 attempts)\n"},
		{"two outages", []session.LinkStatus{first, reconnecting(1, 1), back(2, 40*time.Millisecond, "direct 10.0.0.2:4444"),
			reconnecting(2, 0), reconnecting(3, 90), back(4, 95*time.Second+300*time.Millisecond, "relay 10.0.0.1:4001")},
			"Connected via relay 10.0.0.1:4001 (generation 1)\n" +
				"Connection lost; reconnecting...\n" +
				"Reconnected via direct 10.0.0.2:4444 after 40ms (1 attempt)\n" +
				"Connection lost; reconnecting...\n" +
				"Reconnected via relay 10.0.0.1:4001 after 1m35s (90 attempts)\n"},
		// Status updates are coalesced: the Reconnecting ones may be missed.
		{"an outage seen only as it ended", []session.LinkStatus{first, back(2, 2*time.Second, "relay 10.0.0.1:4001")},
			"Connected via relay 10.0.0.1:4001 (generation 1)\n" +
				"Reconnected via relay 10.0.0.1:4001 after 2s\n"},
		{"attempts reported with Connected", []session.LinkStatus{first, reconnecting(1, 2), {State: session.LinkConnected, Generation: 2,
			Via: "relay 10.0.0.1:4001", Outage: time.Second, Attempts: 5}},
			"Connected via relay 10.0.0.1:4001 (generation 1)\n" +
				"Connection lost; reconnecting...\n" +
				"Reconnected via relay 10.0.0.1:4001 after 1s (5 attempts)\n"},
		{"no outage length from dilation", []session.LinkStatus{first, reconnecting(1, 0), back(2, 0, "relay 10.0.0.1:4001")},
			"Connected via relay 10.0.0.1:4001 (generation 1)\n" +
				"Connection lost; reconnecting...\n" +
				"Reconnected via relay 10.0.0.1:4001\n"},
		{"stopped with a reason", []session.LinkStatus{first, reconnecting(1, 4),
			{State: session.LinkStopped, Err: &session.ProtocolError{Layer: "L1", Reason: "bad \x1b[2Jthing"}}},
			"Connected via relay 10.0.0.1:4001 (generation 1)\n" +
				"Connection lost; reconnecting...\n" +
				"Connection stopped: dilation L1: bad \uFFFD[2Jthing\n"},
		{"stopped by gander itself", []session.LinkStatus{first, {State: session.LinkStopped, Err: session.ErrLinkClosed}},
			"Connected via relay 10.0.0.1:4001 (generation 1)\n"},
		{"a hostile path", []session.LinkStatus{{State: session.LinkConnected, Generation: 1, Via: "direct \x1b]0;pwned\x07:1"}},
			"Connected via direct \uFFFD]0;pwned\uFFFD:1 (generation 1)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			var link linkLines
			for _, st := range tc.statuses {
				printEvent(&out, &link, st)
			}
			if out.String() != tc.want {
				t.Errorf("printed:\n%s\nwant:\n%s", out.String(), tc.want)
			}
		})
	}
}

// Every event of the shared terminal is a line; what the peer supplied
// is sanitised, and its request for the keyboard is refused at once
// (plain lines cannot ask), saying where to answer.
func TestPrintEventShare(t *testing.T) {
	for _, tc := range []struct {
		ev   session.Event
		want string
	}{
		{session.ShareOffered{Outgoing: true, Command: "bash"}, "Sharing a terminal (bash) with the peer, read-only\n"},
		{session.ShareOffered{Command: "vim \x1b[2Jx"}, "The peer shares a terminal (vim \ufffd[2Jx); plain lines cannot show it: " +
			"watch it from the app (gander without --no-tui)\n"},
		{session.ShareGuestJoined{}, "The peer is watching your shared terminal\n"},
		{session.ShareGuestLeft{}, "The peer stopped watching your shared terminal\n"},
		{session.ShareGuestLeft{Err: errors.New("link lost")}, "The peer stopped watching your shared terminal: link lost\n"},
		{session.ShareKeyboardRequested{ID: 3}, "The peer asked for the keyboard of your shared terminal: refused " +
			"(plain lines cannot ask you; answer from the app (gander without --no-tui))\n"},
		{session.ShareTyping{Outgoing: true, Allowed: true}, "The peer may now type into your shared terminal\n"},
		{session.ShareTyping{Outgoing: true}, "The peer may no longer type into your shared terminal\n"},
		{session.ShareTyping{Allowed: true}, "The peer lets you type into its shared terminal\n"},
		{session.ShareTyping{Reason: "the host did not allow typing"}, "You may not type into the peer's shared terminal: the host did not allow typing\n"},
		{session.ShareTyping{}, "You may not type into the peer's shared terminal\n"},
		{session.ShareInputDropped{Bytes: 12, Reason: "read-only: guests may not type"},
			"Dropped 12 bytes the peer typed into your shared terminal (read-only: guests may not type)\n"},
		{session.ShareInputDropped{Bytes: 1}, "Dropped 1 bytes the peer typed into your shared terminal (it may not type)\n"},
		{session.ShareEnded{Outgoing: true}, "Your shared terminal ended\n"},
		{session.ShareEnded{Err: session.ErrPeerEndedShare}, "The peer's shared terminal ended: the peer closed the shared terminal\n"},
	} {
		var b strings.Builder
		printEvent(&b, &linkLines{}, tc.ev)
		if b.String() != tc.want {
			t.Errorf("%#v:\n got %q\nwant %q", tc.ev, b.String(), tc.want)
		}
	}
	if got := refusal(session.ShareKeyboardRequested{ID: 3}); got != (session.Answer{ID: 3, Decision: session.Deny}) {
		t.Errorf("refusal = %#v, want a Deny of 3", got)
	}
	if got := refusal(session.ShareOffered{}); got != nil {
		t.Errorf("refusal of an offer = %#v", got)
	}
}
