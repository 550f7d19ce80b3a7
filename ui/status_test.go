package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/gander-pair/gander/dilation"
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
		{"relay attempt refused", &dilation.AttemptError{Via: "relay 10.0.0.1:4001", Relay: true, Err: opError("dial", syscall.ECONNREFUSED)}, "relay refused"},
		{"direct attempt timed out", &dilation.AttemptError{Via: "direct 10.0.0.2:4444", Err: os.ErrDeadlineExceeded}, "direct timed out"},
		{"no partner at the relay", &dilation.AttemptError{Via: "relay 10.0.0.1:4001", Relay: true, Err: dilation.ErrNoPartnerAtRelay}, "peer not at the relay"},
		{"net timeout", fmt.Errorf("dilation relay: %w", opError("read", timeoutError{})), "timed out"},
		{"deadline", fmt.Errorf("handshake: %w", os.ErrDeadlineExceeded), "timed out"},
		{"context deadline", context.DeadlineExceeded, "timed out"},
		{"eof", fmt.Errorf("dilation relay: %w", io.EOF), "dropped"},
		{"unexpected eof", io.ErrUnexpectedEOF, "dropped"},
		{"reset", opError("read", os.NewSyscallError("read", syscall.ECONNRESET)), "dropped"},
		{"broken pipe", opError("write", syscall.EPIPE), "dropped"},
		{"network unreachable", opError("dial", syscall.ENETUNREACH), "unreachable"},
		{"host unreachable", opError("dial", syscall.EHOSTUNREACH), "unreachable"},
		{"protocol", &dilation.ProtocolError{Layer: "relay", Reason: "expected \"ok\\n\""}, "relay protocol error"},
		{"cannot dilate", dilation.ErrPeerCannotDilate, "the peer cannot dilate"},
		{"closed", dilation.ErrClosed, "closed"},
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
	v := ansi.Strip(s.view(NewStyles(true), width, now))
	return v[strings.LastIndex(v, "\n")+1:]
}

func TestStatusLine(t *testing.T) {
	lost := testNow.Add(-12 * time.Second)
	refused := opError("dial", syscall.ECONNREFUSED)
	for _, tc := range []struct {
		name  string
		link  dilation.Status
		width int
		want  string
	}{
		{"connected direct", dilation.Status{State: dilation.Connected, Via: "direct 10.0.0.2:4444"}, 80,
			"server: connected · peer: gander · path: direct 10.0.0.2:4444"},
		{"connected relay", dilation.Status{State: dilation.Connected, Via: "relay 10.0.0.1:4001", Relayed: true}, 80,
			"server: connected · peer: gander · path: relay 10.0.0.1:4001"},
		{"reconnecting, nothing failed yet", dilation.Status{State: dilation.Reconnecting, Since: lost}, 80,
			"server: connected · peer: gander · reconnecting (12 s)"},
		{"reconnecting, attempts failed", dilation.Status{State: dilation.Reconnecting, Since: lost, Attempts: 7, LastFailure: refused}, 80,
			"server: connected · peer: gander · reconnecting (12 s) · 7 attempts · refused"},
		{"reconnecting, one attempt", dilation.Status{State: dilation.Reconnecting, Since: lost, Attempts: 1, LastFailure: timeoutError{}}, 80,
			"server: connected · peer: gander · reconnecting (12 s) · 1 attempt · timed out"},
		{"reconnecting, long", dilation.Status{State: dilation.Reconnecting, Since: testNow.Add(-75 * time.Second), Attempts: 31, LastFailure: refused}, 80,
			"server ✓ · gander · reconnecting (1 min 15 s) · 31 attempts · refused"},
		{"reconnecting, compact", dilation.Status{State: dilation.Reconnecting, Since: lost, Attempts: 7, LastFailure: refused}, 62,
			"server ✓ · gander · reconnecting (12 s) · 7 attempts · refused"},
		{"reconnecting, narrow", dilation.Status{State: dilation.Reconnecting, Since: lost, Attempts: 7, LastFailure: refused}, 61,
			"server ✓ · gander · reconnecting (12 s, 7 attempts)"},
		{"reconnecting, narrow, nothing failed", dilation.Status{State: dilation.Reconnecting, Since: lost}, 40,
			"server ✓ · gander · reconnecting (12 s)"},
		{"reconnecting, own text too long", dilation.Status{State: dilation.Reconnecting, Since: lost, Attempts: 2,
			LastFailure: errors.New("the relay said something long and unforeseen")}, 80,
			"server ✓ · gander · reconnecting (12 s, 2 attempts)"},
		{"stopped with a reason", dilation.Status{State: dilation.Stopped, Err: &dilation.ProtocolError{Layer: "L1", Reason: "reflection"}}, 80,
			"server: connected · peer: gander · path: stopped: L1 protocol error"},
		{"stopped, narrow", dilation.Status{State: dilation.Stopped, Err: dilation.ErrPeerCannotDilate}, 51,
			"server ✓ · gander · stopped: the peer cannot dilate"},
		{"stopped by us", dilation.Status{State: dilation.Stopped, Err: dilation.ErrClosed}, 80,
			"server: connected · peer: gander · path: stopped"},
		{"too narrow for anything", dilation.Status{State: dilation.Reconnecting, Since: lost, Attempts: 7, LastFailure: refused}, 20,
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
	s.setLink(dilation.Status{State: dilation.Connected, Via: "direct 10.0.0.2:4444"}, testNow)
	if started := s.setLink(dilation.Status{State: dilation.Reconnecting}, testNow); !started {
		t.Errorf("the first Reconnecting status did not start a reconnection")
	}
	if started := s.setLink(dilation.Status{State: dilation.Reconnecting, Attempts: 3}, testNow.Add(5*time.Second)); started {
		t.Errorf("a repeated Reconnecting status started another reconnection")
	}
	want := "server: connected · peer: fowl · reconnecting (9 s) · 3 attempts"
	if got := statusText(s, 80, testNow.Add(9*time.Second)); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestStatusReconnectedNotice(t *testing.T) {
	lost := testNow.Add(-time.Minute)
	reconnecting := func(attempts int) dilation.Status {
		return dilation.Status{State: dilation.Reconnecting, Generation: 2, Since: lost, Attempts: attempts,
			LastFailure: opError("dial", syscall.ECONNREFUSED)}
	}
	relay := dilation.Status{State: dilation.Connected, Generation: 3, Via: "relay 10.0.0.1:4001", Relayed: true}
	withOutage := func(st dilation.Status, d time.Duration) dilation.Status { st.Outage = d; return st }
	for _, tc := range []struct {
		name     string
		statuses []dilation.Status
		want     string
	}{
		{"first connection", []dilation.Status{{State: dilation.Connecting, Generation: 1}, relay}, ""},
		{"back after attempts", []dilation.Status{relay, reconnecting(1), reconnecting(7), withOutage(relay, 12*time.Second)},
			"reconnected via relay after 12 s (7 attempts)"},
		{"back at once", []dilation.Status{relay, reconnecting(0), withOutage(relay, 230*time.Millisecond)},
			"reconnected via relay after 0.2 s"},
		{"back directly", []dilation.Status{relay, reconnecting(1), withOutage(dilation.Status{State: dilation.Connected, Generation: 3, Via: "direct 10.0.0.2:4444"}, 3200*time.Millisecond)},
			"reconnected via direct after 3.2 s (1 attempt)"},
		{"attempts reported with Connected", []dilation.Status{relay, reconnecting(2), func() dilation.Status {
			st := withOutage(relay, 2*time.Minute+5*time.Second)
			st.Attempts = 40
			return st
		}()}, "reconnected via relay after 2 min 5 s (40 attempts)"},
		// A status update that missed the Reconnecting ones still says so.
		{"only the outage seen", []dilation.Status{relay, withOutage(relay, 4*time.Second)}, ""},
		{"outage without reconnecting seen", []dilation.Status{{State: dilation.Connecting, Generation: 1}, withOutage(relay, 4*time.Second)},
			"reconnected via relay after 4.0 s"},
		// Without dilation's Outage, the time since the loss.
		{"no outage from dilation", []dilation.Status{relay, reconnecting(5), relay}, "reconnected via relay after 1 min 0 s (5 attempts)"},
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
	s.setLink(dilation.Status{State: dilation.Connected, Generation: 1}, testNow)
	s.setLink(dilation.Status{State: dilation.Reconnecting, Generation: 1, Attempts: 2}, testNow)
	s.setLink(dilation.Status{State: dilation.Connected, Generation: 2, Outage: time.Second}, testNow)
	s.say("your peer closed the session", false)
	s.setLink(dilation.Status{State: dilation.Connected, Generation: 2, Outage: time.Second}, testNow)
	if s.notice != "your peer closed the session" {
		t.Errorf("notice %q after a repeated Connected status", s.notice)
	}
}
