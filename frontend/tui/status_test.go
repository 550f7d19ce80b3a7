package tui

import (
	"context"
	"errors"
	"fmt"
	"github.com/gander-pair/gander/session"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// timeoutError is a net.Error that timed out, as a dial or read deadline
// gives.
type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 4001}, Err: err}
}

func TestStatusFailureReason(t *testing.T) {
	long := errors.New("something \x1b[2Jnobody foresaw went wrong, at length, in many words")
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"none", nil, ""},
		{"refused dial", opError("dial", os.NewSyscallError("connect", syscall.ECONNREFUSED)), "refused"},
		{"refused, wrapped", fmt.Errorf("dilation relay: %w", opError("dial", syscall.ECONNREFUSED)), "refused"},
		{"relay attempt refused", &session.AttemptError{Via: "relay 10.0.0.1:4001", Relay: true, Err: opError("dial", syscall.ECONNREFUSED)}, "relay refused"},
		{"direct attempt timed out", &session.AttemptError{Via: "direct 10.0.0.2:4444", Err: os.ErrDeadlineExceeded}, "direct timed out"},
		{"no partner at the relay", &session.AttemptError{Via: "relay 10.0.0.1:4001", Relay: true, Err: session.ErrNoPartnerAtRelay}, "peer not at the relay"},
		{"net timeout", fmt.Errorf("dilation relay: %w", opError("read", timeoutError{})), "timed out"},
		{"deadline", fmt.Errorf("handshake: %w", os.ErrDeadlineExceeded), "timed out"},
		{"context deadline", context.DeadlineExceeded, "timed out"},
		{"eof", fmt.Errorf("dilation relay: %w", io.EOF), "dropped"},
		{"unexpected eof", io.ErrUnexpectedEOF, "dropped"},
		{"reset", opError("read", os.NewSyscallError("read", syscall.ECONNRESET)), "dropped"},
		{"broken pipe", opError("write", syscall.EPIPE), "dropped"},
		{"network unreachable", opError("dial", syscall.ENETUNREACH), "unreachable"},
		{"host unreachable", opError("dial", syscall.EHOSTUNREACH), "unreachable"},
		{"protocol", &session.ProtocolError{Layer: "relay", Reason: "expected \"ok\\n\""}, "relay protocol error"},
		{"cannot dilate", session.ErrPeerCannotDilate, "the peer cannot dilate"},
		{"closed", session.ErrLinkClosed, "closed"},
		{"other", errors.New("no route"), "no route"},
		{"other, hostile and long", long, "something \uFFFD[2Jnobody foresaw went wrong…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := failureReason(tc.err)
			if got != tc.want {
				t.Errorf("failureReason(%v) = %q, want %q", tc.err, got, tc.want)
			}
			if w := ansi.StringWidth(got); w > maxReasonWidth {
				t.Errorf("reason %q is %d wide, more than %d", got, w, maxReasonWidth)
			}
		})
	}
}

// statusText is the status line (the last line of the view) in plain text.
func statusText(s *statusLine, width int, now time.Time) string {
	s.common = &common{styles: NewStyles(true), now: func() time.Time { return now }}
	v := ansi.Strip(s.view(width, 2))
	return v[strings.LastIndex(v, "\n")+1:]
}

func TestStatusLine(t *testing.T) {
	lost := testNow.Add(-12 * time.Second)
	refused := opError("dial", syscall.ECONNREFUSED)
	for _, tc := range []struct {
		name  string
		link  session.LinkStatus
		width int
		want  string
	}{
		{"connected direct", session.LinkStatus{State: session.LinkConnected, Via: "direct 10.0.0.2:4444"}, 80,
			"server: connected · peer: gander · path: direct 10.0.0.2:4444"},
		{"connected relay", session.LinkStatus{State: session.LinkConnected, Via: "relay 10.0.0.1:4001", Relayed: true}, 80,
			"server: connected · peer: gander · path: relay 10.0.0.1:4001"},
		{"reconnecting, nothing failed yet", session.LinkStatus{State: session.LinkReconnecting, Since: lost}, 80,
			"server: connected · peer: gander · reconnecting (12 s)"},
		{"reconnecting, attempts failed", session.LinkStatus{State: session.LinkReconnecting, Since: lost, Attempts: 7, LastFailure: refused}, 80,
			"server: connected · peer: gander · reconnecting (12 s) · 7 attempts · refused"},
		{"reconnecting, one attempt", session.LinkStatus{State: session.LinkReconnecting, Since: lost, Attempts: 1, LastFailure: timeoutError{}}, 80,
			"server: connected · peer: gander · reconnecting (12 s) · 1 attempt · timed out"},
		{"reconnecting, long", session.LinkStatus{State: session.LinkReconnecting, Since: testNow.Add(-75 * time.Second), Attempts: 31, LastFailure: refused}, 80,
			"server ✓ · gander · reconnecting (1 min 15 s) · 31 attempts · refused"},
		{"reconnecting, compact", session.LinkStatus{State: session.LinkReconnecting, Since: lost, Attempts: 7, LastFailure: refused}, 62,
			"server ✓ · gander · reconnecting (12 s) · 7 attempts · refused"},
		{"reconnecting, narrow", session.LinkStatus{State: session.LinkReconnecting, Since: lost, Attempts: 7, LastFailure: refused}, 61,
			"server ✓ · gander · reconnecting (12 s, 7 attempts)"},
		{"reconnecting, narrow, nothing failed", session.LinkStatus{State: session.LinkReconnecting, Since: lost}, 40,
			"server ✓ · gander · reconnecting (12 s)"},
		{"reconnecting, own text too long", session.LinkStatus{State: session.LinkReconnecting, Since: lost, Attempts: 2,
			LastFailure: errors.New("the relay said something long and unforeseen")}, 80,
			"server ✓ · gander · reconnecting (12 s, 2 attempts)"},
		{"stopped with a reason", session.LinkStatus{State: session.LinkStopped, Err: &session.ProtocolError{Layer: "L1", Reason: "reflection"}}, 80,
			"server: connected · peer: gander · path: stopped: L1 protocol error"},
		{"stopped, narrow", session.LinkStatus{State: session.LinkStopped, Err: session.ErrPeerCannotDilate}, 51,
			"server ✓ · gander · stopped: the peer cannot dilate"},
		{"stopped by us", session.LinkStatus{State: session.LinkStopped, Err: session.ErrLinkClosed}, 80,
			"server: connected · peer: gander · path: stopped"},
		{"too narrow for anything", session.LinkStatus{State: session.LinkReconnecting, Since: lost, Attempts: 7, LastFailure: refused}, 20,
			"server ✓ · gander ·…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &statusLine{welcomed: true, peer: "gander"}
			s.setLink(tc.link, testNow)
			if got := statusText(s, tc.width, testNow); got != tc.want {
				t.Errorf("at width %d:\n got %q\nwant %q", tc.width, got, tc.want)
			}
		})
	}
}

// Without dilation's Since, the time counts from the first Reconnecting
// status this line saw.
func TestStatusReconnectingWithoutSince(t *testing.T) {
	s := &statusLine{welcomed: true, peer: "fowl"}
	s.setLink(session.LinkStatus{State: session.LinkConnected, Via: "direct 10.0.0.2:4444"}, testNow)
	if started := s.setLink(session.LinkStatus{State: session.LinkReconnecting}, testNow); !started {
		t.Errorf("the first Reconnecting status did not start a reconnection")
	}
	if started := s.setLink(session.LinkStatus{State: session.LinkReconnecting, Attempts: 3}, testNow.Add(5*time.Second)); started {
		t.Errorf("a repeated Reconnecting status started another reconnection")
	}
	want := "server: connected · peer: fowl · reconnecting (9 s) · 3 attempts"
	if got := statusText(s, 80, testNow.Add(9*time.Second)); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestStatusReconnectedNotice(t *testing.T) {
	lost := testNow.Add(-time.Minute)
	reconnecting := func(attempts int) session.LinkStatus {
		return session.LinkStatus{State: session.LinkReconnecting, Generation: 2, Since: lost, Attempts: attempts,
			LastFailure: opError("dial", syscall.ECONNREFUSED)}
	}
	relay := session.LinkStatus{State: session.LinkConnected, Generation: 3, Via: "relay 10.0.0.1:4001", Relayed: true}
	withOutage := func(st session.LinkStatus, d time.Duration) session.LinkStatus { st.Outage = d; return st }
	for _, tc := range []struct {
		name     string
		statuses []session.LinkStatus
		want     string
	}{
		{"first connection", []session.LinkStatus{{State: session.LinkConnecting, Generation: 1}, relay}, ""},
		{"back after attempts", []session.LinkStatus{relay, reconnecting(1), reconnecting(7), withOutage(relay, 12*time.Second)},
			"reconnected via relay after 12 s (7 attempts)"},
		{"back at once", []session.LinkStatus{relay, reconnecting(0), withOutage(relay, 230*time.Millisecond)},
			"reconnected via relay after 0.2 s"},
		{"back directly", []session.LinkStatus{relay, reconnecting(1), withOutage(session.LinkStatus{State: session.LinkConnected, Generation: 3, Via: "direct 10.0.0.2:4444"}, 3200*time.Millisecond)},
			"reconnected via direct after 3.2 s (1 attempt)"},
		{"attempts reported with Connected", []session.LinkStatus{relay, reconnecting(2), func() session.LinkStatus {
			st := withOutage(relay, 2*time.Minute+5*time.Second)
			st.Attempts = 40
			return st
		}()}, "reconnected via relay after 2 min 5 s (40 attempts)"},
		// A status update that missed the Reconnecting ones still says so.
		{"only the outage seen", []session.LinkStatus{relay, withOutage(relay, 4*time.Second)}, ""},
		{"outage without reconnecting seen", []session.LinkStatus{{State: session.LinkConnecting, Generation: 1}, withOutage(relay, 4*time.Second)},
			"reconnected via relay after 4.0 s"},
		// Without dilation's Outage, the time since the loss.
		{"no outage from dilation", []session.LinkStatus{relay, reconnecting(5), relay}, "reconnected via relay after 1 min 0 s (5 attempts)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &statusLine{welcomed: true, peer: "gander"}
			for _, st := range tc.statuses {
				s.setLink(st, testNow)
			}
			if s.notice != tc.want || s.noticeBad {
				t.Errorf("notice %q (bad %v), want %q", s.notice, s.noticeBad, tc.want)
			}
		})
	}
}

// The notice is said once: a Connected status repeated later does not
// push out a newer notice.
func TestStatusReconnectedNoticeOnce(t *testing.T) {
	s := &statusLine{}
	s.setLink(session.LinkStatus{State: session.LinkConnected, Generation: 1}, testNow)
	s.setLink(session.LinkStatus{State: session.LinkReconnecting, Generation: 1, Attempts: 2}, testNow)
	s.setLink(session.LinkStatus{State: session.LinkConnected, Generation: 2, Outage: time.Second}, testNow)
	s.say("your peer closed the session", false)
	s.setLink(session.LinkStatus{State: session.LinkConnected, Generation: 2, Outage: time.Second}, testNow)
	if s.notice != "your peer closed the session" {
		t.Errorf("notice %q after a repeated Connected status", s.notice)
	}
}
