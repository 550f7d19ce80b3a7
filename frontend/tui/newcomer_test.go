package tui

import (
	"context"
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/gander-pair/gander/session"
)

// withLosses gives the connected harness a forward up and a transfer at
// 26%.
func withLosses(h *harness) {
	h.event(
		session.AwaitingConnect{Service: "web", Addr: "127.0.0.1:8000"},
		session.ServiceListening{Service: "database", Addr: "127.0.0.1:5432"},
		session.TransferProgress{ID: 1, Name: "notes.txt", Outgoing: true, Size: 1000, Done: 260, Files: 1},
	)
}

// q with forwards up and a transfer under way asks first; any key but y
// stays, y says goodbye.
func TestQuitAsksWhatWouldStop(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	withLosses(h)
	h.press(keyRune('q'))
	h.wantSent()
	if s := h.screen(); !contains(s, "quit? 2 forwards and notes.txt at 26% would stop (y/N)") {
		t.Fatalf("no question:\n%s", s)
	}
	h.golden("quit_question")
	h.press(keyRune('x'))
	h.wantSent()
	if contains(h.screen(), "quit?") || h.m.phase != running {
		t.Fatalf("x did not keep the session:\n%s", h.screen())
	}
	h.press(keyCtrlC)
	h.press(keyRune('y'))
	h.wantSent(session.Close{Timeout: closeTimeout})
	// Nothing to lose: q closes at once, as before.
	h2 := connected(t, 80, 24, Options{})
	h2.press(keyRune('q'))
	h2.wantSent(session.Close{Timeout: closeTimeout})
}

// Ctrl-C twice quits: the second is the yes.
func TestCtrlCTwiceQuits(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	withLosses(h)
	h.press(keyCtrlC)
	h.wantSent()
	h.press(keyCtrlC)
	h.wantSent(session.Close{Timeout: closeTimeout})
}

// The peer's goodbye says what it stopped here, from this side's own
// screen, and n starts again without the files already sent.
func TestPeerClosedSaysWhatStopped(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	withLosses(h)
	h.event(session.PeerClosing{}, session.Closed{})
	if s := h.screen(); !contains(s, "Your peer closed the session: 2 forwards closed, notes.txt stopped at 26%.") {
		t.Fatalf("screen:\n%s", s)
	}
	h.golden("peer_closed_losses")
	h.press(keyRune('n'))
	if err := h.m.Err(); !errors.Is(err, ErrNewCode) || !peerCame(err) {
		t.Errorf("n after the peer left: Err() = %v, want a new code after a peer", err)
	}
}

// After a wrong code, n starts again (the files to send still unsent).
func TestWrongCodeStartsAgain(t *testing.T) {
	h := newHarness(t, Options{Code: "7-guitarist-revenge"}, 80, 24)
	h.event(session.Welcome{}, session.CodeReady{Code: "7-guitarist-revenge"}, session.Closed{Err: session.ErrWrongCode})
	if !contains(h.screen(), "n to start again") {
		t.Fatalf("no way on but exit:\n%s", h.screen())
	}
	h.press(keyRune('n'))
	if err := h.m.Err(); !errors.Is(err, ErrNewCode) || peerCame(err) {
		t.Errorf("Err() = %v, want a new code with no peer", err)
	}
}

// The mailbox server going away while waiting for the peer shows on the
// status line with the time it has been gone, ticking; back, it says so.
func TestServerReconnectingWhileWaiting(t *testing.T) {
	h := newHarness(t, Options{}, 80, 24)
	h.event(session.Welcome{})
	h.press(keyEnter)
	h.event(session.CodeReady{Code: "7-guitarist-revenge"})
	lost := h.clock
	h.event(session.ServerStatus{Since: lost})
	h.advance(12 * time.Second)
	h.event(session.ServerStatus{Since: lost, Attempts: 3, LastFailure: syscall.ECONNREFUSED})
	if s := h.screen(); !contains(s, "server: reconnecting (12 s) · 3 attempts · refused") {
		t.Fatalf("status line:\n%s", s)
	}
	h.golden("server_reconnecting_waiting")
	// The tick redraws it.
	h.advance(time.Second)
	cmd := h.m.status.update(reconnectTickMsg{gen: h.m.status.reconnectGen})
	if cmd == nil || !contains(h.screen(), "reconnecting (13 s)") {
		t.Errorf("the tick did not go on:\n%s", h.screen())
	}
	h.event(session.ServerStatus{Connected: true, Outage: 13 * time.Second})
	if s := h.screen(); !contains(s, "server: connected") || !contains(s, "the mailbox server is back after 13 s") {
		t.Errorf("back:\n%s", s)
	}
	if h.m.status.update(reconnectTickMsg{gen: h.m.status.reconnectGen}) != nil {
		t.Error("the tick goes on once the server is back")
	}
}

// Mid-session too, beside the path.
func TestServerReconnectingMidSession(t *testing.T) {
	h := connected(t, 100, 24, Options{})
	h.press(keyRune('v'))
	h.event(session.ServerStatus{Since: h.clock})
	h.advance(5 * time.Second)
	if s := h.screen(); !contains(s, "server: reconnecting (5 s) · peer: gander · path: direct") {
		t.Fatalf("status line:\n%s", s)
	}
	h.golden("server_reconnecting_connected")
}

// A notice goes after noticeFor; the verifier's goes once it is
// confirmed; "closing…" stays.
func TestNoticesExpire(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	if !contains(h.screen(), "compare the verifier") {
		t.Fatal("no verifier note")
	}
	if h.m.status.expiry() != nil {
		t.Error("the verifier's note has a timer: it goes with the state")
	}
	h.press(keyRune('v'))
	if contains(h.screen(), "compare the verifier") {
		t.Errorf("the verifier note stayed after v:\n%s", h.screen())
	}
	h.m.status.say("refused by peer: no", true)
	seq := h.m.status.noticeSeq
	if h.m.status.expiry() == nil || h.m.status.expiry() != nil {
		t.Error("want exactly one expiry timer for the notice")
	}
	h.m.Update(noticeExpiredMsg{seq: seq - 1})
	if !contains(h.screen(), "refused by peer") {
		t.Error("an older notice's timer ended the new one")
	}
	h.m.Update(noticeExpiredMsg{seq: seq})
	if contains(h.screen(), "refused by peer") {
		t.Errorf("the notice did not expire:\n%s", h.screen())
	}
	h.m.status.hold("closing…")
	if h.m.status.expiry() != nil {
		t.Error("a held notice expires")
	}
}

// The hint when nobody is on the code joined.
func TestNobodyOnCodeHint(t *testing.T) {
	h := newHarness(t, Options{Code: "7-guitarist-revenge"}, 80, 24)
	h.event(session.Welcome{}, session.CodeReady{Code: "7-guitarist-revenge"}, session.NobodyOnCode{Nameplate: "7"})
	if s := h.screen(); !contains(s, "Nobody is on this code yet — waiting for your peer") || !contains(s, "used already") {
		t.Fatalf("screen:\n%s", s)
	}
	h.golden("nobody_on_code")
}

// The verifier in words only for a gander peer; fowl shows hex alone.
func TestVerifierWordsOnlyWithGander(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	if !contains(h.screen(), "words aardvark amusement") {
		t.Errorf("no words with a gander peer:\n%s", h.screen())
	}
	f := newHarness(t, Options{Code: "7-guitarist-revenge"}, 80, 24)
	f.event(session.CodeReady{Code: "7-guitarist-revenge"},
		session.PeerConnected{Verifier: testVerifier(), Peer: session.ParsePeer(nil)})
	if contains(f.screen(), "words") || !contains(f.screen(), "0007 0e15") {
		t.Errorf("a fowl peer's verifier:\n%s", f.screen())
	}
}

// c with a clipboard program says which, once it has run; one that
// fails falls back to OSC 52 and says so.
func TestCopyWithClipboardProgram(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		runErr  error
		want    string
		wantRun string
	}{
		{"wayland", map[string]string{"WAYLAND_DISPLAY": "wayland-0", "DISPLAY": ":0"}, nil, "✓ copied to the clipboard with wl-copy", "wl-copy"},
		{"x11", map[string]string{"DISPLAY": ":0"}, nil, "✓ copied to the clipboard with xclip", "xclip"},
		{"x11 failing", map[string]string{"DISPLAY": ":0"}, errors.New("exit status 1"), "xclip failed; sent to the terminal's clipboard (OSC 52)", "xclip"},
		{"no display", nil, nil, "sent to the terminal's clipboard (OSC 52): if paste doesn't work", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Options{}, 80, 24)
			h.press(keyEnter)
			h.event(session.CodeReady{Code: "7-guitarist-revenge"})
			var ran, stdin string
			h.m.code.clipboard = clipboard{
				getenv:   func(k string) string { return tc.env[k] },
				lookPath: func(name string) (string, error) { return "/usr/bin/" + name, nil },
				run: func(_ context.Context, path string, _ []string, in string) error {
					ran, stdin = path, in
					return tc.runErr
				},
				goos: "linux",
			}
			for _, msg := range h.press(keyRune('c')) {
				h.m.Update(msg)
			}
			if !contains(h.screen(), tc.want) {
				t.Errorf("screen:\n%s", h.screen())
			}
			if tc.name == "no display" {
				h.golden("copied_osc52")
			}
			if tc.wantRun != "" && (ran != "/usr/bin/"+tc.wantRun || stdin != "7-guitarist-revenge") {
				t.Errorf("ran %q with %q", ran, stdin)
			}
			if tc.wantRun == "" && ran != "" {
				t.Errorf("ran %q with no display", ran)
			}
		})
	}
	if _, _, ok := noClipboardTools.tool(); ok {
		t.Error("noClipboardTools found one")
	}
	_ = exec.ErrNotFound
}

// An unreachable mailbox server at the start: what it is, in words, and
// n tries again.
func TestUnreachableMailboxScreen(t *testing.T) {
	h := newHarness(t, Options{}, 80, 24)
	err := unreachableError{}
	h.event(session.Closed{Err: err})
	if s := h.screen(); !contains(s, "Cannot reach the mailbox server.") || !contains(s, "n to start again") {
		t.Fatalf("screen:\n%s", s)
	}
	h.golden("mailbox_unreachable")
	h.press(keyRune('n'))
	if !errors.Is(h.m.Err(), ErrNewCode) {
		t.Errorf("n did not start again: %v", h.m.Err())
	}
}

// unreachableError stands for mailbox's *ConnectError, with its text.
type unreachableError struct{}

func (unreachableError) Error() string {
	return "cannot reach the mailbox server at ws://mailbox.example:4000/v1 (connection refused: nothing listens there): " +
		"check the address (--mailbox) and the network"
}
func (unreachableError) Is(target error) bool { return target == session.ErrMailboxUnreachable }

func TestLossesText(t *testing.T) {
	two := losses{forwards: 1, transfers: []transferLoss{{"a.txt", "at 5%"}, {"b dir", ""}}}
	if got, want := two.question(), "quit? 1 forward and a.txt at 5% and b dir would stop (y/N)"; got != want {
		t.Errorf("question = %q, want %q", got, want)
	}
	if got, want := two.peerClosedText(), "1 forward closed, a.txt stopped at 5% and b dir stopped"; got != want {
		t.Errorf("peerClosedText = %q, want %q", got, want)
	}
	three := losses{transfers: []transferLoss{{"a", "at 1%"}, {"b", "at 2%"}, {"c", "at 3%"}}}
	if got, want := three.question(), "quit? 3 transfers would stop (y/N)"; got != want {
		t.Errorf("question = %q, want %q", got, want)
	}
	if got, want := three.peerClosedText(), "3 transfers stopped"; got != want {
		t.Errorf("peerClosedText = %q, want %q", got, want)
	}
}
