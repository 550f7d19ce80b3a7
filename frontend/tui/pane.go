package tui

import (
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"

	"github.com/gander-pair/gander/session"
)

// pane is the one contract between the root model and a part of the
// screen (after soft-serve's common.Component): the root talks to its
// panes through it only.
type pane interface {
	// update takes a message: a key or a paste while the pane has the
	// focus; a session event (eventMsg), a lifecycle message (closingMsg,
	// endedMsg) or a timer, which every pane sees. What waits is returned
	// as commands: update never blocks.
	update(msg tea.Msg) tea.Cmd
	// view draws the pane in at most width×height cells.
	view(width, height int) string
	// setSize gives the pane the room it is drawn in, ahead of view: text
	// inputs are sized when they open.
	setSize(width, height int)
	// helpKeys are the bindings that apply to the pane now, for the help
	// line.
	helpKeys() []key.Binding
	// setFocus says which list has the selection, focusForwards or
	// focusTransfers: it stays under the overlays and inputs that take the
	// keyboard.
	setFocus(list focus)
}

var (
	_ pane = (*codePane)(nil)
	_ pane = (*verifierPane)(nil)
	_ pane = (*statusLine)(nil)
	_ pane = (*forwardsPane)(nil)
	_ pane = (*forwardForm)(nil)
	_ pane = (*transfersPane)(nil)
	_ pane = (*dialogQueue)(nil)
	_ pane = (*sendPrompt)(nil)
	_ pane = (*helpPane)(nil)
)

// focus is what has the keyboard. The first two are the main screen and
// say which list ↑/↓ move in; the others take every key.
type focus int

const (
	focusForwards    focus = iota // the main screen; ↑/↓ and d act on the forwards
	focusTransfers                // the main screen; ↑/↓ and x act on the transfers
	focusCode                     // the code input of the landing screen
	focusForwardForm              // the add form or the removal confirmation
	focusSending                  // the send prompt
	focusDialog                   // the first of the peer's questions
	focusHelp                     // the ? overlay: any key closes it
	focusClosing                  // Close sent: only ctrl+c
	focusEnded                    // the closed screen: any key exits
)

// Lifecycle messages, given to every pane.
type (
	// closingMsg: the user quit; forms close.
	closingMsg struct{}
	// endedMsg: the session is over; every question and form closes.
	endedMsg struct{}
)

// common is what the panes share: the keys, the styles, the clock, and
// their ways out (commands to the session, notices to the status line).
type common struct {
	keys   *keyMap
	styles *Styles
	now    func() time.Time
	send   func(session.Command) tea.Cmd
	say    func(text string, bad bool)
	stale  *staleTimer
}

// staleTimer is the one timer that zeroes rates once bytes stop moving,
// shared by the panes that show rates: at most one staleCheckMsg is on
// its way.
type staleTimer struct{ pending bool }

// start arranges a staleCheckMsg, unless one is on its way.
func (t *staleTimer) start() tea.Cmd {
	if t.pending {
		return nil
	}
	t.pending = true
	return tea.Tick(staleCheck, func(time.Time) tea.Msg { return staleCheckMsg{} })
}

// fired records that the staleCheckMsg arrived.
func (t *staleTimer) fired() { t.pending = false }
