package tui

import (
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/gander-pair/gander/session"
)

// The forwards part of issue 14 ("what a newcomer hit"), on screen.

var keyBackspace = tea.KeyPressMsg{Code: tea.KeyBackspace}

// Item 13: the port field starts as the peer's, can be changed or
// cleared; allow always says its scope.
func TestPermissionPortField(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.press(keyRune('v'))
	for i := int64(1); i <= 4; i++ {
		h.event(session.PermissionRequest{ID: i, Request: session.ListenRequest{Service: "web", Port: 8080}})
	}
	h.press(keyRune('o')) // as asked
	h.press(keyBackspace, keyBackspace, keyBackspace, keyBackspace, keyRune('a'))
	h.press(keyBackspace, keyBackspace, keyBackspace, keyBackspace, keyRune('9'), keyRune('0'), keyRune('0'), keyRune('0'), keyRune('a'))
	h.press(keyBackspace, keyBackspace, keyBackspace, keyBackspace)
	h.press(keyRune('9'), keyRune('9'), keyRune('9'), keyRune('9'), keyRune('9'), keyRune('9')) // five digits at most
	h.press(keyRune('o'))
	if !contains(h.screen(), "is not a port") {
		t.Fatalf("no complaint about port 99999:\n%s", h.screen())
	}
	h.press(keyRune('d'))
	h.wantSent(
		session.Answer{ID: 1, Decision: session.AllowOnce},
		session.Answer{ID: 2, Decision: session.AllowAlways, Port: session.AnyPort},
		session.Answer{ID: 3, Decision: session.AllowAlways, Port: 9000},
		session.Answer{ID: 4, Decision: session.Deny},
	)
}

func TestScreenPermissionPortEdited(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.press(keyRune('v'))
	h.event(session.PermissionRequest{ID: 1, Request: session.ListenRequest{Service: "web", Port: 8080}})
	h.press(keyBackspace, keyBackspace, keyBackspace, keyBackspace, keyRune('9'), keyRune('0'), keyRune('0'), keyRune('0'))
	h.golden("permission_port_edited")
	h.press(keyBackspace, keyBackspace, keyBackspace, keyRune('o'))
	h.golden("permission_port_bad")
}

func TestScreenPermissionAnyPort(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.press(keyRune('v'))
	h.event(session.PermissionRequest{ID: 1, Request: session.ListenRequest{Service: "db"}})
	h.golden("permission_any_port")
}

// Item 14: refusals say who refused and why, in words.
func TestScreenOfferRefused(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.press(keyRune('v'))
	for _, r := range []struct{ name, reason string }{
		{"web", "No service permitted for name: web"},
		{"docs", "No service permitted for name: docs (refused by the user)"},
		{"db", "Desired port 5432 does not match 5433"},
		{"chat", "no answer from the user"},
	} {
		h.event(session.ForwardRefused{Service: r.name, Reason: r.reason, ByPeer: true},
			session.OfferFailed{Service: r.name, Err: &session.DeniedError{Service: r.name, Reason: r.reason}})
	}
	h.golden("offer_refused")
	if s := h.screen(); contains(s, "failed") || contains(s, "No service permitted") {
		t.Errorf("raw refusal text on screen:\n%s", s)
	}
}

func TestRefusalWords(t *testing.T) {
	for _, tt := range []struct{ reason, notice string }{
		{"No service permitted for name: web", `your peer refused "web": not permitted by its rules`},
		{"No service permitted for name: web (refused by the user)", `your peer refused "web"`},
		{"Refused by the peer", `your peer refused "web"`},
		{session.ErrDeniedRecently.Error(), `your peer refused "web": it was refused a moment ago`},
		{session.ErrDeniedForSession.Error(), `your peer refused "web": it refuses everything this session`},
		{session.ErrNoAnswer.Error(), `your peer did not answer about "web"`},
		{"Desired port 80 does not match 8080", `your peer refused "web": it takes only port 8080, not 80`},
		{"Too many listeners for the peer (at most 64)", `your peer refused "web": Too many listeners for the peer (at most 64)`},
	} {
		if got := peerRefusal(tt.reason).notice("web"); got != tt.notice {
			t.Errorf("%q: %q, want %q", tt.reason, got, tt.notice)
		}
	}
	if got := peerRefusal("\x1b[31mred").notice("web"); strings.ContainsRune(got, 0x1b) {
		t.Errorf("the peer's control characters reach the screen: %q", got)
	}
	if got := ourRefusal("web", "No service permitted for name: web (refused by the user)"); got != `you refused "web"` {
		t.Errorf("our own no: %q", got)
	}
}

// Item 1: what the peer ended says so, until d clears it.
func TestScreenForwardsWithdrawn(t *testing.T) {
	h := connected(t, 80, 24, Options{})
	h.press(keyRune('v'))
	withForwards(h)
	h.event(session.ForwardWithdrawn{Service: "database"}, session.ForwardWithdrawn{Service: "web", Ours: true})
	h.golden("forwards_withdrawn")
	h.press(keyRune('d'), keyRune('y'))
	h.wantSent(session.Remove{Service: "web"})
}
