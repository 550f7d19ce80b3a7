package tui

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	tea "charm.land/bubbletea/v2"

	"github.com/gander-pair/gander/session"
)

var terminalVersions = json.RawMessage(`{"fowl":{"features":["core-v1"]},"gander":{"features":["forwards-v1","files-v1","terminal-v1"]}}`)

// sharing is a connected app whose peer has the shared terminal.
func sharing(t *testing.T) *harness {
	h := connected(t, 100, 30, Options{})
	h.event(session.PeerConnected{Verifier: testVerifier(), PeerVersions: terminalVersions, Peer: session.ParsePeer(terminalVersions)})
	h.press(keyRune('v'))
	return h
}

func TestShareKeyShownOnlyWithAPeerThatHasIt(t *testing.T) {
	h := connected(t, 100, 30, Options{})
	if contains(h.screen(), "share terminal") {
		t.Errorf("t offered to a peer without terminal-v1:\n%s", h.screen())
	}
	h.press(keyRune('t'))
	if !contains(h.screen(), "no shared terminal") {
		t.Errorf("t to such a peer says nothing:\n%s", h.screen())
	}
	h = sharing(t)
	if !contains(h.screen(), "t share terminal") {
		t.Errorf("no t in the key bar:\n%s", h.screen())
	}
	// t hands the terminal to the view (tea.Exec): a command, no message.
	_, cmd := h.m.Update(keyRune('t'))
	if cmd == nil {
		t.Error("t gave no command")
	}
}

func TestShareHostSide(t *testing.T) {
	h := sharing(t)
	h.event(session.ShareOffered{Outgoing: true, Command: "bash"})
	if s := h.screen(); !contains(s, `sharing "bash"`) || !contains(s, "only you type") || !contains(s, "peer not watching") {
		t.Errorf("no share line:\n%s", s)
	}
	h.event(session.ShareGuestJoined{}, session.ShareKeyboardRequested{ID: 7})
	if s := h.screen(); !contains(s, "asks for the keyboard") || !contains(s, "y let them type") {
		t.Errorf("no keyboard dialog:\n%s", s)
	}
	h.press(keyRune('y'))
	h.wantSent(session.Answer{ID: 7, Decision: session.AllowOnce})
	h.event(session.ShareTyping{Outgoing: true, Allowed: true})
	if s := h.screen(); !contains(s, "you and your peer type") || !contains(s, "peer watching") || !contains(s, "R take keyboard") {
		t.Errorf("who types not shown:\n%s", s)
	}
	h.press(keyRune('R'))
	h.wantSent(session.RevokeTyping{})
	h.event(session.ShareTyping{Outgoing: true, Allowed: false}, session.ShareInputDropped{Bytes: 5})
	if s := h.screen(); !contains(s, "only you type") || !contains(s, "5 keys dropped") {
		t.Errorf("revoked not shown:\n%s", s)
	}
	// A second request, denied; then one withdrawn before an answer.
	h.event(session.ShareKeyboardRequested{ID: 8})
	h.press(keyRune('n'))
	h.wantSent(session.Answer{ID: 8, Decision: session.Deny})
	h.event(session.ShareKeyboardRequested{ID: 9}, session.PermissionWithdrawn{ID: 9})
	if h.m.dialogs.active() {
		t.Error("a withdrawn keyboard request stays")
	}
	h.press(keyRune('T'))
	h.wantSent(session.StopShare{})
	h.event(session.ShareEnded{Outgoing: true})
	if contains(h.screen(), "sharing") {
		t.Errorf("the ended share is still shown:\n%s", h.screen())
	}
}

func TestShareGuestSide(t *testing.T) {
	h := sharing(t)
	h.event(session.ShareOffered{Command: "zsh"})
	if s := h.screen(); !contains(s, "Enter ~ k asks for the keyboard") {
		t.Errorf("the offer's notice does not say how to ask from the view:\n%s", s)
	}
	if hint := (&shareView{watch: true}).hint(); !contains(hint, "Ctrl-] returns to the app") || !contains(hint, "Enter ~ k asks to type") {
		t.Errorf("the guest's view starts with %q", hint)
	}
	if s := h.screen(); !contains(s, `your peer shares "zsh"`) || !contains(s, "only your peer types") || !contains(s, "w watch") || !contains(s, "r ask keyboard") {
		t.Errorf("no share line:\n%s", s)
	}
	h.press(keyRune('r'))
	h.wantSent(session.AskKeyboard{})
	h.event(session.ShareTyping{Allowed: true})
	if s := h.screen(); !contains(s, "you may type") || contains(s, "r ask keyboard") {
		t.Errorf("allowed not shown:\n%s", s)
	}
	h.event(session.ShareTyping{Allowed: false, Reason: "the host took the keyboard back"})
	if s := h.screen(); !contains(s, "took the keyboard back") || !contains(s, "only your peer types") {
		t.Errorf("revoked not shown:\n%s", s)
	}
	// The view's end, failed, is a notice.
	h.m.Update(shareViewDoneMsg{err: errNoTerminal})
	if !contains(h.screen(), "needs a terminal") {
		t.Errorf("the view's failure not shown:\n%s", h.screen())
	}
	h.event(session.ShareEnded{})
	if contains(h.screen(), "shares") {
		t.Errorf("the ended share is still shown:\n%s", h.screen())
	}
}

// The view run without a terminal fails at once, sending nothing.
func TestShareViewNeedsATerminal(t *testing.T) {
	var sent []session.Command
	v := &shareView{do: func(c session.Command) error { sent = append(sent, c); return nil }, start: true}
	v.SetStdin(nil)
	v.SetStdout(nil)
	if err := v.Run(); err != errNoTerminal || len(sent) != 0 {
		t.Errorf("Run = %v, sent %v", err, sent)
	}
	var _ tea.ExecCommand = v
}

// A view whose command the session refuses outright (too many commands
// queued) ends at once, saying why, rather than waiting for a Done that
// never comes.
func TestShareViewRefusedEndsAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name         string
		start, watch bool
		refuse       string // the command refused
		want         string
	}{
		{"watch", false, true, "session.WatchShare", "could not show the shared terminal: the session is busy"},
		{"show", false, false, "session.ShowShare", "could not show the shared terminal: the session is busy"},
		{"start", true, false, "session.StartShare", "could not start sharing your terminal: the session is busy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ptmx, tty, err := pty.Open()
			if err != nil {
				t.Skip("no pty:", err)
			}
			defer ptmx.Close()
			defer tty.Close()
			go func() { // drain what the view writes
				buf := make([]byte, 1024)
				for {
					if _, err := ptmx.Read(buf); err != nil {
						return
					}
				}
			}()
			var sent []string
			v := &shareView{start: tc.start, watch: tc.watch, ended: make(chan struct{}), // never ends
				do: func(c session.Command) error {
					name := fmt.Sprintf("%T", c)
					sent = append(sent, name)
					if name == tc.refuse {
						return session.ErrTooManyCommands
					}
					return nil
				}}
			v.SetStdin(tty)
			v.SetStdout(tty)
			done := make(chan error, 1)
			go func() { done <- v.Run() }()
			select {
			case err := <-done:
				if !errors.Is(err, session.ErrTooManyCommands) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("Run = %v, want %q", err, tc.want)
				}
				if sent[len(sent)-1] != tc.refuse {
					t.Errorf("sent %v after the refusal of %s", sent, tc.refuse)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the refused view waits")
			}
		})
	}
}

// The help's second page lists the shared terminal's keys, the
// full-screen view's escapes too; space flips, any other key closes,
// and the next ? starts on the first page again.
func TestScreenHelpOverlayShare(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	withForwards(h)
	h.press(keyRune('?'), keyRune(' '))
	h.golden("help_overlay_share")
	s := h.screen()
	for _, want := range []string{"t share terminal", "T stop share", "R take keyboard", "w watch", "r ask keyboard",
		"y     let them type", "ctrl+]", "enter ~ k", "enter ~ ~"} {
		if !contains(s, want) {
			t.Errorf("no %q on the help's second page:\n%s", want, s)
		}
	}
	h.press(keyRune(' '))
	if s := h.screen(); !contains(s, "page 1 of 2") || !contains(s, "Port request") {
		t.Errorf("space did not flip back:\n%s", s)
	}
	h.press(keyRune(' '), keyRune('x'))
	if contains(h.screen(), "Keys") {
		t.Errorf("x did not close the help:\n%s", h.screen())
	}
	h.press(keyRune('?'))
	if !contains(h.screen(), "page 1 of 2") {
		t.Errorf("the help reopened on its second page:\n%s", h.screen())
	}
}
