package tui

import (
	"encoding/json"
	"testing"

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
	if s := h.screen(); !contains(s, `sharing "bash"`) || !contains(s, "only you type") || !contains(s, "not watching") {
		t.Errorf("no share line:\n%s", s)
	}
	h.event(session.ShareGuestJoined{}, session.ShareKeyboardRequested{ID: 7})
	if s := h.screen(); !contains(s, "asks for the keyboard") || !contains(s, "y let them type") {
		t.Errorf("no keyboard dialog:\n%s", s)
	}
	h.press(keyRune('y'))
	h.wantSent(session.Answer{ID: 7, Decision: session.AllowOnce})
	h.event(session.ShareTyping{Outgoing: true, Allowed: true})
	if s := h.screen(); !contains(s, "you and your peer type") || !contains(s, "your peer is watching") || !contains(s, "R take keyboard") {
		t.Errorf("who types not shown:\n%s", s)
	}
	h.press(keyRune('R'))
	h.wantSent(session.RevokeTyping{})
	h.event(session.ShareTyping{Outgoing: true, Allowed: false}, session.ShareInputDropped{Bytes: 5})
	if s := h.screen(); !contains(s, "only you type") || !contains(s, "5 of its keys dropped") {
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
	v := &shareView{do: func(c session.Command) { sent = append(sent, c) }, start: true}
	v.SetStdin(nil)
	v.SetStdout(nil)
	if err := v.Run(); err != errNoTerminal || len(sent) != 0 {
		t.Errorf("Run = %v, sent %v", err, sent)
	}
	var _ tea.ExecCommand = v
}
