package tui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/gander-pair/gander/session"
)

// testVerifier is a 32-byte verifier: 0001 0203 ... 1e1f.
// ganderVersions is what a gander peer advertises (session.AppVersions).
var ganderVersions = json.RawMessage(`{"fowl":{"features":["core-v1"]},"gander":{"features":["forwards-v1","files-v1"]}}`)

func testVerifier() []byte {
	v := make([]byte, 32)
	for i := range v {
		v[i] = byte(i * 7)
	}
	return v
}

// connected brings a harness to a connected session, joined with a code
// given on the command line, with a gander peer over a direct path.
func connected(t *testing.T, width, height int, opts Options) *harness {
	opts.Code = "7-guitarist-revenge"
	h := newHarness(t, opts, width, height)
	h.event(
		session.Welcome{MOTD: "Welcome to the \x1b[31mtest\x1b[0m server"},
		session.CodeReady{Code: "7-guitarist-revenge"},
		session.PeerConnected{Verifier: testVerifier(), PeerVersions: ganderVersions, Peer: session.ParsePeer(ganderVersions)},
		session.LinkStatus{State: session.LinkConnected, Generation: 1, Via: "direct 10.0.0.2:4444"},
	)
	return h
}

// withForwards adds two services, ours and the peer's, with traffic over
// one second.
func withForwards(h *harness) {
	h.event(
		session.AwaitingConnect{Service: "web", Addr: "127.0.0.1:8000"},
		session.ServiceListening{Service: "database", Addr: "127.0.0.1:5432"},
		session.ConnectionOpened{ID: 1, Service: "web", Incoming: true},
		session.Traffic{Services: []session.ServiceStats{
			{Service: "web", Offered: true, Addr: "127.0.0.1:8000", Open: 1, Total: 3, BytesIn: 1_000, BytesOut: 200_000},
			{Service: "database", Addr: "127.0.0.1:5432", Open: 0, Total: 1, BytesIn: 4_000, BytesOut: 512},
		}, Connections: []session.ConnectionStats{
			{ID: 1, Service: "web", Incoming: true, Since: h.clock, BytesIn: 300, BytesOut: 100_000},
		}},
	)
	h.advance(time.Second)
	h.event(session.Traffic{Services: []session.ServiceStats{
		{Service: "web", Offered: true, Addr: "127.0.0.1:8000", Open: 1, Total: 3, BytesIn: 21_000, BytesOut: 1_400_000},
		{Service: "database", Addr: "127.0.0.1:5432", Open: 0, Total: 1, BytesIn: 4_000, BytesOut: 512},
	}, Connections: []session.ConnectionStats{
		{ID: 1, Service: "web", Incoming: true, Since: h.clock.Add(-time.Second), BytesIn: 20_300, BytesOut: 1_300_000},
	}})
}

func TestScreenLandingCompletions(t *testing.T) {
	h := newHarness(t, Options{}, 80, 24)
	h.event(session.Welcome{})
	h.typeText("7-guitarist-re")
	h.press(keyTab)
	h.event(session.Nameplates{Names: []string{"7", "12"}})
	h.golden("landing_completions")
}

func TestScreenLandingBadCode(t *testing.T) {
	h := newHarness(t, Options{}, 80, 24)
	h.event(session.Welcome{})
	h.typeText("7 guitarist revenge")
	h.press(keyEnter)
	h.golden("landing_bad_code")
}

func TestScreenAllocatedCode(t *testing.T) {
	h := newHarness(t, Options{}, 80, 24)
	h.event(session.Welcome{})
	h.press(keyEnter)
	h.event(session.CodeReady{Code: "7-guitarist-revenge"})
	h.golden("allocated_code")
}

func TestScreenConnectedVerifier(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.golden("connected_verifier")
	h.press(keyRune('v'))
	h.golden("connected_verifier_confirmed")
}

func TestScreenForwardsTraffic(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	withForwards(h)
	h.golden("forwards_traffic")
}

func TestScreenAddForwardError(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	withForwards(h)
	h.press(keyRune('a'))
	h.typeText("ssh:port22")
	h.golden("add_forward_error")
}

func TestScreenPermissionDialog(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.press(keyRune('v'))
	h.event(
		session.PermissionRequest{ID: 1, Request: session.ListenRequest{Service: "web", Port: 8080}},
		session.PermissionRequest{ID: 2, Request: session.ListenRequest{Service: "db"}},
	)
	h.golden("permission_dialog")
}

// Before the verifier is confirmed the questions wait, with a hint.
func TestScreenQuestionsHeld(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.event(
		session.PermissionRequest{ID: 1, Request: session.ListenRequest{Service: "web", Port: 8080}},
		session.TransferOffered{ID: 4, Name: "report.pdf", Size: 2_345_678, SaveDir: "/home/alice/Downloads"},
	)
	h.golden("questions_held")
}

func TestScreenIncomingFile(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.press(keyRune('v'))
	h.event(session.TransferOffered{ID: 4, Name: "report.pdf", Size: 2_345_678, SaveDir: "/home/alice/Downloads"})
	h.golden("incoming_file")
}

func TestScreenTransfersMidway(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	withForwards(h)
	h.event(
		session.TransferProgress{ID: 4, Name: "report.pdf", Size: 10_000_000, Done: 1_000_000, Files: 1},
		session.TransferFinished{ID: 3, Name: "notes.txt", Outgoing: true},
	)
	h.advance(time.Second)
	h.event(session.TransferProgress{ID: 4, Name: "report.pdf", Size: 10_000_000, Done: 3_000_000, Files: 1})
	h.golden("transfers_midway")
}

func TestScreenHelpOverlay(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	withForwards(h)
	h.press(keyRune('?'))
	h.golden("help_overlay")
}

func TestScreenClosedWrongCode(t *testing.T) {
	h := newHarness(t, Options{Code: "7-guitarist-revenge"}, 80, 24)
	h.event(
		session.Welcome{},
		session.CodeReady{Code: "7-guitarist-revenge"},
		session.Closed{Err: session.ErrWrongCode},
	)
	h.golden("closed_wrong_code")
	var closed *ClosedError
	if err := h.m.Err(); !errors.As(err, &closed) {
		t.Errorf("Err() = %v, want a *ClosedError", err)
	}
}

func TestScreenNarrowConnected(t *testing.T) {
	h := connected(t, 60, 20, Options{})
	withForwards(h)
	h.event(session.ServiceListening{Service: "a-service-with-a-very-long-name", Addr: "127.0.0.1:65000"})
	h.golden("narrow_connected")
}

func TestScreenReconnecting(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.event(session.LinkStatus{State: session.LinkReconnecting, Generation: 1})
	h.advance(12 * time.Second)
	h.golden("reconnecting")
}

// Reconnecting with attempts failing: since when, how many, why.
func TestScreenReconnectingAttempts(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	lost := h.clock
	h.event(session.LinkStatus{State: session.LinkReconnecting, Generation: 1, Since: lost})
	h.advance(12 * time.Second)
	h.event(session.LinkStatus{State: session.LinkReconnecting, Generation: 2, Since: lost, Attempts: 7,
		LastFailure: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}})
	h.golden("reconnecting_attempts")
}

func TestScreenNarrowReconnecting(t *testing.T) {
	h := connected(t, 60, 20, Options{})
	lost := h.clock
	h.advance(12 * time.Second)
	h.event(session.LinkStatus{State: session.LinkReconnecting, Generation: 2, Since: lost, Attempts: 7,
		LastFailure: errors.New("dilation relay: something else went wrong")})
	h.golden("narrow_reconnecting")
}

// Back after a loss: the path, and a notice of how long it took.
func TestScreenReconnected(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	lost := h.clock
	h.event(session.LinkStatus{State: session.LinkReconnecting, Generation: 1, Since: lost, Attempts: 7})
	h.advance(12 * time.Second)
	h.event(session.LinkStatus{State: session.LinkConnected, Generation: 3, Via: "relay 10.0.0.1:4001", Relayed: true,
		Outage: 12 * time.Second})
	h.golden("reconnected")
}

func TestScreenStopped(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.event(session.LinkStatus{State: session.LinkStopped, Generation: 1,
		Err: &session.ProtocolError{Layer: "L1", Reason: "the peer's dilation side equals ours (a reflection?)"}})
	h.golden("stopped")
}

func TestScreenSanitisesPeerText(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.event(
		session.ServiceListening{Service: "evil\x1b]0;pwned\x07", Addr: "127.0.0.1:1"},
		session.CommandFailed{Err: errors.New("bad\x1b[2Jthing")},
	)
	raw := h.m.View().Content
	for _, bad := range []string{"\x1b]0;", "\x07", "\x1b[2J"} {
		if contains(raw, bad) {
			t.Errorf("the view holds %q from the peer", bad)
		}
	}
}

// Every screen fits the terminal, down to very small ones.
func TestScreensFitAnySize(t *testing.T) {
	scenarios := map[string]func(h *harness){
		"landing": func(h *harness) {
			h.typeText("7-guitarist-re")
			h.press(keyTab)
			h.press(keyEnter)
		},
		"connected": func(h *harness) {
			h.event(session.CodeReady{Code: "7-guitarist-revenge"},
				session.PeerConnected{Verifier: testVerifier()})
			withForwards(h)
			h.event(session.TransferProgress{ID: 1, Name: "a-long-file-name.tar.gz", Size: 1e9, Done: 1e8})
		},
		"dialog": func(h *harness) {
			h.event(session.PeerConnected{Verifier: testVerifier()})
			h.press(keyRune('v'))
			h.event(session.TransferOffered{ID: 1, Name: "x", SaveDir: "/a/very/long/folder/name/somewhere"})
			h.press(keyRune('f'))
		},
		"form": func(h *harness) {
			h.press(keyEnter)
			h.event(session.CodeReady{Code: "7-guitarist-revenge"})
			h.press(keyRune('a'))
			h.typeText("x:y")
		},
		"reconnecting": func(h *harness) {
			h.event(session.PeerConnected{Verifier: testVerifier()},
				session.LinkStatus{State: session.LinkReconnecting, Since: h.clock, Attempts: 1234,
					LastFailure: errors.New(strings.Repeat("a long reason ", 10))})
			h.advance(3 * time.Hour)
		},
		"help": func(h *harness) { h.press(keyRune('?')) },
		"closed": func(h *harness) {
			h.event(session.Closed{Err: fmt.Errorf("%w%s", session.ErrWrongCode, make([]byte, 200))})
		},
	}
	for name, setup := range scenarios {
		for _, size := range [][2]int{{80, 24}, {60, 20}, {40, 12}, {20, 6}, {1, 1}} {
			h := newHarness(t, Options{}, size[0], size[1])
			setup(h)
			lines := strings.Split(strings.TrimSuffix(h.screen(), "\n"), "\n")
			if len(lines) > size[1] {
				t.Errorf("%s at %dx%d: %d lines", name, size[0], size[1], len(lines))
			}
			for _, l := range lines {
				if w := ansi.StringWidth(l); w > size[0] {
					t.Errorf("%s at %dx%d: line %q is %d wide", name, size[0], size[1], l, w)
				}
			}
		}
	}
}
