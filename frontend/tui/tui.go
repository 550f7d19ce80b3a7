// Package tui is gander's full-screen frontend (Bubble Tea). It imports
// session and leaf helpers only: it reads a session's events and sends
// it commands, like the plain-lines and JSON frontends beside it.
//
// The tree of models:
//
//	Model (this file)         routes messages, lays the screen out, keeps the
//	│                         phase (running, closing, ended) and the focus;
//	│                         draws the header and the closed screen
//	├── codePane              landing screen: type or allocate a code (Tab
//	│                         completes); then the code, c copies it
//	├── verifierPane          the verifier, once the peer is there; v confirms
//	├── forwardsPane          the services table, traffic and connections;
//	│   │                     a adds, ↑/↓ select, d removes
//	│   └── forwardForm       its add form and removal confirmation (a modal)
//	├── transfersPane         file transfers with progress; ↑/↓, x cancels
//	├── dialogQueue           the peer's questions, one modal at a time:
//	│                         port requests and incoming files
//	├── sendPrompt            files to send (a drop, or s), while open
//	├── helpPane              the ? overlay
//	└── statusLine            the last notice and the connections' state
//
// Every pane implements pane (pane.go): update, view, setSize, helpKeys,
// setFocus. Keys and pastes go to the pane with the focus (Model.focus);
// session events, lifecycle messages and timers go to every pane, each
// taking what concerns it. Panes reach out through common: commands to
// the session (send), notices to the status line (say). Anything that
// waits is a tea.Cmd; styles are in styles.go, key bindings in keys.go.
package tui

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/gander-pair/gander/session"
	"github.com/gander-pair/gander/wormhole/codes"
)

// Timing of the interface. Nothing ticks while the session is idle: the
// reconnection timer runs only while reconnecting, the others fire once.
const (
	closeTimeout     = 2 * time.Second // the Close command's wait for the peer's goodbye
	quitAfter        = 4 * time.Second // give up waiting for Closed
	copiedFor        = 3 * time.Second // the "copied" note
	reconnectingTick = time.Second
	staleCheck       = time.Second // zeroes rates once bytes stop moving
	// maxWaitingOffers is how many of the peer's file offers may wait
	// for an answer; the next is refused at once. (Permission requests
	// are bounded by the session: session.MaxPendingAsks.)
	maxWaitingOffers = 16
)

// Options configure the interface.
type Options struct {
	// Code is the code given on the command line; the session joins with
	// it already, so there is no code to type.
	Code string
	// CodeLength is the number of words in a code, for completion
	// (0: codes.DefaultLength).
	CodeLength int
	Version    string // shown in the header
	// Logger receives "ui stopped" with the number of frames drawn when
	// Run ends; nil discards it.
	Logger *slog.Logger
	// Now is the clock for rates, estimates and the reconnection timer;
	// nil means time.Now.
	Now func() time.Time
	// NoColor draws without colours (NO_COLOR); bold, faint, underline and
	// reverse remain, and nothing depends on colour alone.
	NoColor bool
	// Home expands ~ in dropped paths; empty means the user's home.
	Home string
}

// ClosedError is what Run returns when the session ended unhappily: Err
// is the session's Closed.Err (session.ErrWrongCode,
// session.ErrLinkStopped, ...); its text is sanitised.
type ClosedError struct{ Err error }

func (e *ClosedError) Error() string { return clean(e.Err.Error()) }
func (e *ClosedError) Unwrap() error { return e.Err }

// errSessionStopped: the events ended without a Closed.
var errSessionStopped = errors.New("the session stopped")

// Session is what the interface drives: a *session.Session (tests give
// it a fake).
type Session interface {
	Do(session.Command) error
	Events() <-chan session.Event
}

// ErrNewCode is what Run returns when the code was spoiled (someone else
// used its nameplate) and the user asked for a new one: main starts a
// new session without a code.
var ErrNewCode = errors.New("the user asked for a new code")

// phase is where the whole interface is.
type phase int

const (
	running phase = iota
	closing       // Close sent: waiting for Closed
	ended         // Closed arrived by itself: any key exits
)

// Messages.
type (
	// eventMsg is a session event, read by waitForEvent.
	eventMsg struct{ ev session.Event }
	// eventsClosedMsg: the events channel closed without a Closed.
	eventsClosedMsg struct{}
	// quitTimeoutMsg: Closed did not come in time after Close.
	quitTimeoutMsg struct{}
	// reconnectTickMsg redraws "reconnecting (12 s)"; gen is the
	// reconnection it belongs to.
	reconnectTickMsg struct{ gen int }
	// copiedDoneMsg ends the "copied" note number seq.
	copiedDoneMsg struct{ seq int }
	// staleCheckMsg zeroes rates that stopped.
	staleCheckMsg struct{}
)

// Model is the root model: it routes messages to the panes and lays them
// out. Session events arrive through waitForEvent, commands leave through
// send; Update itself never blocks.
type Model struct {
	sess     Session
	done     chan struct{} // closed by stop: a pending waitForEvent returns
	stopOnce sync.Once

	opts   Options
	now    func() time.Time
	styles *Styles
	keys   *keyMap
	help   help.Model // the help line, and the overlay's key lists
	stale  staleTimer
	common *common // what the panes share
	width  int
	height int

	code        *codePane
	verifier    *verifierPane
	status      *statusLine
	forwards    *forwardsPane
	forwardForm *forwardForm
	transfers   *transfersPane
	dialogs     *dialogQueue
	keysHelp    *helpPane
	share       *sharePane  // the shared terminal's line and keys
	sending     *sendPrompt // open while files to send are being chosen
	// peerTakesNoFiles: the peer does not advertise file transfer.
	peerTakesNoFiles bool

	showHelp    bool
	list        focus // the list ↑/↓ act on when both are shown: focusForwards or focusTransfers
	phase       phase
	peerLeft    bool  // PeerClosing arrived
	over        bool  // the session ended: Closed came, or the events stopped
	closedErr   error // Closed.Err, or errSessionStopped
	gotClosed   bool
	wantNewCode bool // n on the spoiled-code screen

	frames atomic.Int64
}

// New returns the root model of the interface to sess; main starts the
// session.
func New(sess Session, opts Options) *Model {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.CodeLength < 1 {
		opts.CodeLength = codes.DefaultLength
	}
	if opts.Home == "" {
		opts.Home, _ = os.UserHomeDir()
	}
	m := &Model{
		sess: sess, done: make(chan struct{}),
		opts: opts, now: opts.Now,
		styles: NewStyles(opts.NoColor), keys: newKeyMap(),
		help: help.New(),
	}
	m.help.Styles = m.styles.Help
	m.status = &statusLine{}
	c := &common{keys: m.keys, styles: m.styles, now: m.now, send: m.send, say: m.status.say, stale: &m.stale}
	m.common, m.status.common = c, c
	m.code = newCodePane(c, opts.Code, opts.CodeLength)
	m.verifier = &verifierPane{common: c, waiting: func() int { return len(m.dialogs.items) }}
	m.forwards = &forwardsPane{common: c}
	m.forwardForm = &forwardForm{m.forwards}
	m.transfers = &transfersPane{common: c}
	m.dialogs = &dialogQueue{common: c, onAccept: m.transfers.accept}
	m.keysHelp = &helpPane{common: c, help: &m.help}
	m.share = &sharePane{common: c}
	m.resize(80, 24)
	return m
}

// panes are every pane there is now, in a fixed order: each sees every
// session event, lifecycle message and timer.
func (m *Model) panes() []pane {
	ps := []pane{m.status, m.code, m.verifier, m.forwards, m.forwardForm, m.transfers, m.dialogs, m.keysHelp, m.share}
	if m.sending != nil {
		ps = append(ps, m.sending)
	}
	return ps
}

// broadcast gives msg to every pane.
func (m *Model) broadcast(msg tea.Msg) tea.Cmd {
	var cmds []tea.Cmd
	for _, p := range m.panes() {
		cmds = append(cmds, p.update(msg))
	}
	return tea.Batch(cmds...)
}

// Run shows the interface on the terminal (alternate screen, bracketed
// paste) until the user quits and the session has closed, or the session
// ended and the user pressed a key. It returns a *ClosedError if the
// session ended unhappily (a wrong code, a lost connection), for main to
// print once the terminal is restored.
func Run(ctx context.Context, sess Session, opts Options) error {
	return New(sess, opts).run(ctx)
}

// idleFPS is the renderer's frame rate (Bubble Tea's default is 60).
const idleFPS = 30

// run runs the program; tests give it a fake terminal.
func (m *Model) run(ctx context.Context, options ...tea.ProgramOption) error {
	// The renderer wakes at its frame rate even when nothing changed;
	// 30 a second keeps typing smooth and an idle app near 0.3% of a core.
	_, err := tea.NewProgram(m, append([]tea.ProgramOption{tea.WithContext(ctx), tea.WithFPS(idleFPS)}, options...)...).Run()
	m.stop()
	m.opts.Logger.Info("ui stopped", "frames", m.Frames())
	if err != nil && ctx.Err() == nil {
		return err
	}
	return m.Err()
}

// Frames is the number of times View has drawn the screen: the interface
// draws only when a message arrives, and this tells a test (or the log)
// that nothing redraws in a loop.
func (m *Model) Frames() int64 { return m.frames.Load() }

// Err is the error Run returns: ErrNewCode if the user asked for a new
// code after a spoiled one, a *ClosedError if the session ended
// unhappily, else nil.
func (m *Model) Err() error {
	if m.wantNewCode {
		return ErrNewCode
	}
	if !m.over || m.happy() || errors.Is(m.closedErr, session.ErrLonely) {
		return nil
	}
	return &ClosedError{Err: m.closedErr}
}

// happy reports whether the session closed as it should: by a Close, the
// peer's goodbye or an interrupt, the peer there (whether or not it
// answered our goodbye in time).
func (m *Model) happy() bool {
	return m.gotClosed && (m.closedErr == nil || errors.Is(m.closedErr, session.ErrCloseTimeout))
}

// spoiled reports whether the session ended because someone other than
// the peer used the code's nameplate.
func (m *Model) spoiled() bool { return errors.Is(m.closedErr, session.ErrCodeSpoiled) }

// stop makes pending waitForEvent and send commands return.
func (m *Model) stop() { m.stopOnce.Do(func() { close(m.done) }) }

// Init starts reading session events.
func (m *Model) Init() tea.Cmd { return m.waitForEvent() }

// waitForEvent reads the next session event; Update issues it again after
// each one.
func (m *Model) waitForEvent() tea.Cmd {
	events, done := m.sess.Events(), m.done
	return func() tea.Msg {
		select {
		case ev, ok := <-events:
			if !ok {
				return eventsClosedMsg{}
			}
			return eventMsg{ev}
		case <-done:
			return nil
		}
	}
}

// send hands a command to the session (Do never blocks for long; after
// the end it does nothing).
func (m *Model) send(c session.Command) tea.Cmd {
	sess := m.sess
	return func() tea.Msg {
		sess.Do(c)
		return nil
	}
}

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.resize(msg.Width, msg.Height)
	case eventMsg:
		cmd := m.handleEvent(msg.ev)
		if m.gotClosed {
			return m, cmd // Closed is the last event
		}
		return m, tea.Batch(cmd, m.waitForEvent())
	case eventsClosedMsg:
		if !m.gotClosed {
			return m, m.sessionEnded(errSessionStopped)
		}
	case quitTimeoutMsg:
		m.opts.Logger.Warn("ui: the session did not close in time")
		return m, tea.Quit
	case tea.KeyPressMsg, tea.PasteMsg:
		return m, m.handleInput(msg)
	case staleCheckMsg:
		m.stale.fired()
		return m, m.broadcast(msg)
	default:
		// The panes' timers.
		return m, m.broadcast(msg)
	}
	return m, nil
}

// resize gives every pane the room it is drawn in.
func (m *Model) resize(w, h int) {
	m.width, m.height = w, h
	m.help.SetWidth(w - 2)
	for _, p := range []pane{m.code, m.verifier, m.forwards, m.transfers, m.share} {
		p.setSize(w-2, h)
	}
	m.status.setSize(w, 2)
	for _, p := range []pane{m.forwardForm, m.dialogs} {
		p.setSize(m.modalWidth()-4, h-4)
	}
	m.keysHelp.setSize(m.helpWidth(), h-4)
}

// handleEvent applies one session event: the root keeps how the session
// ends; the panes take the rest.
func (m *Model) handleEvent(ev session.Event) tea.Cmd {
	switch e := ev.(type) {
	case session.PeerConnected:
		// What the peer advertises decides what is offered (session's
		// capabilities): no file sending to a peer without it.
		m.peerTakesNoFiles = !e.Peer.Accepts(session.FeatureFiles)
	case session.PeerClosing:
		m.peerLeft = true
	case session.Closed:
		m.gotClosed = true
		return m.sessionEnded(e.Err)
	}
	return m.broadcast(eventMsg{ev})
}

// dialogShown says whether the first of the peer's questions is on the
// screen. Before the verifier is confirmed they wait: until then the
// peer may be anyone who took the code, and the user cannot tell.
func (m *Model) dialogShown() bool { return m.dialogs.active() && m.verifier.confirmed }

// sessionEnded handles the end of the session: the expected answer to our
// Close, or the session ending by itself.
func (m *Model) sessionEnded(err error) tea.Cmd {
	m.over, m.closedErr = true, err
	if m.phase == closing {
		return tea.Quit
	}
	m.phase = ended
	m.showHelp = false
	return m.broadcast(endedMsg{})
}

// quit begins closing: a goodbye to the peer, then Closed (or a timeout).
// Pressed again, or once the session has ended, it quits at once.
func (m *Model) quit() tea.Cmd {
	switch m.phase {
	case closing, ended:
		return tea.Quit
	}
	m.phase = closing
	m.showHelp = false
	cmd := m.broadcast(closingMsg{})
	m.status.say("closing…", false)
	return tea.Batch(
		cmd,
		m.send(session.Close{Timeout: closeTimeout}),
		tea.Tick(quitAfter, func(time.Time) tea.Msg { return quitTimeoutMsg{} }),
	)
}

// focus says what has the keyboard: an ended or closing session, the
// help overlay, a dialog, the send prompt, a form, the code input, and
// only then the main screen.
func (m *Model) focus() focus {
	switch {
	case m.phase == ended:
		return focusEnded
	case m.phase == closing:
		return focusClosing
	case m.showHelp:
		return focusHelp
	case m.dialogShown():
		return focusDialog
	case m.sending != nil:
		return focusSending
	case m.forwards.capturing():
		return focusForwardForm
	case m.code.typing():
		return focusCode
	}
	return m.listFocus()
}

// listFocus is the list ↑/↓ and x act on: the transfers when chosen with
// tab, or when there are transfers but no forwards.
func (m *Model) listFocus() focus {
	if !m.transfers.empty() && (m.list == focusTransfers || m.forwards.empty()) {
		return focusTransfers
	}
	return focusForwards
}

// paneWith is the pane that takes the keys when f has the focus (nil
// for the closing and ended screens, which the root draws).
func (m *Model) paneWith(f focus) pane {
	switch f {
	case focusForwards:
		return m.forwards
	case focusTransfers:
		return m.transfers
	case focusCode:
		return m.code
	case focusForwardForm:
		return m.forwardForm
	case focusSending:
		return m.sending
	case focusDialog:
		return m.dialogs
	case focusHelp:
		return m.keysHelp
	}
	return nil
}

// modal is the pane drawn over the screen, if any, and its inner width.
func (m *Model) modal() (p pane, width int) {
	switch {
	case m.showHelp:
		return m.keysHelp, m.helpWidth()
	case m.dialogShown():
		return m.dialogs, m.modalWidth() - 4
	case m.sending != nil:
		return m.sending, m.modalWidth() - 4
	case m.forwards.capturing():
		return m.forwardForm, m.modalWidth() - 4
	}
	return nil, 0
}

// handleInput routes a key or a paste: ctrl+c first, then whatever has
// the focus. A paste with no text input focused is files dropped on the
// terminal.
func (m *Model) handleInput(msg tea.Msg) tea.Cmd {
	k, isKey := msg.(tea.KeyPressMsg)
	if isKey && key.Matches(k, m.keys.ForceQuit) {
		return m.quit()
	}
	switch f := m.focus(); f {
	case focusEnded:
		if !isKey {
			return nil
		}
		if m.spoiled() && key.Matches(k, m.keys.NewCode) {
			m.wantNewCode = true
		}
		return tea.Quit
	case focusClosing:
		return nil
	case focusHelp:
		m.showHelp = m.showHelp && !isKey // any key closes it
		return nil
	case focusForwards, focusTransfers:
		if !isKey {
			return m.openSending(msg.(tea.PasteMsg).Content)
		}
		return m.mainKey(k, f)
	case focusCode:
		if isKey && key.Matches(k, m.keys.Help) { // codes have no '?'
			m.showHelp = true
			return nil
		}
		return m.code.update(msg)
	case focusSending:
		cmd := m.sending.update(msg)
		if m.sending.closed {
			m.sending = nil
		}
		return cmd
	default:
		return m.paneWith(f).update(msg)
	}
}

// mainKey handles a key of the main screen: the root's own (quit, help,
// send, which list), then the code's, the verifier's and the list's.
func (m *Model) mainKey(k tea.KeyPressMsg, list focus) tea.Cmd {
	switch {
	case key.Matches(k, m.keys.Quit):
		return m.quit()
	case key.Matches(k, m.keys.Help):
		m.showHelp = true
		return nil
	case key.Matches(k, m.keys.SendFiles):
		return m.openSending("")
	case key.Matches(k, m.keys.AddForward):
		m.list = focusForwards
		return m.forwards.update(k)
	case key.Matches(k, m.keys.SwitchPane):
		if m.list == focusTransfers || m.transfers.empty() {
			m.list = focusForwards
		} else {
			m.list = focusTransfers
		}
		return nil
	}
	return tea.Batch(m.code.update(k), m.verifier.update(k), m.paneWith(list).update(k), m.share.update(k))
}

// openSending opens the send prompt holding text (a drop, or nothing).
func (m *Model) openSending(text string) tea.Cmd {
	if m.peerTakesNoFiles {
		m.status.say("your peer's program does not take files (fowl, or an older gander)", true)
		return nil
	}
	var cmd tea.Cmd
	m.sending, cmd = newSendPrompt(m.common, m.modalWidth()-4, text, m.opts.Home)
	return cmd
}

// helpKeys are the bindings that apply now, for the help line.
func (m *Model) helpKeys() help.KeyMap {
	k := m.keys
	switch f := m.focus(); f {
	case focusEnded:
		if m.spoiled() {
			return bindings{short: []key.Binding{k.NewCode, k.Exit}}
		}
		return bindings{short: []key.Binding{k.Exit}}
	case focusClosing:
		return bindings{short: []key.Binding{k.ForceQuit}}
	case focusForwards, focusTransfers:
	default:
		return bindings{short: m.paneWith(f).helpKeys()}
	}
	short := []key.Binding{k.Help, k.Quit}
	if m.verifier.known() {
		short = append(short, m.verifier.helpKeys()...)
	} else {
		short = append(short, m.code.helpKeys()...)
	}
	short = append(short, k.AddForward)
	if m.verifier.known() && !m.peerTakesNoFiles {
		short = append(short, k.SendFiles)
	}
	short = append(short, m.paneWith(m.listFocus()).helpKeys()...)
	short = append(short, m.share.helpKeys()...)
	if !m.transfers.empty() {
		short = append(short, k.SwitchPane)
	}
	return bindings{short: short}
}

// View implements tea.Model.
func (m *Model) View() tea.View {
	m.frames.Add(1)
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.WindowTitle = "gander"
	return v
}

// render draws the screen as text.
func (m *Model) render() string {
	w, h := m.width, m.height
	list := m.listFocus()
	for _, p := range m.panes() {
		p.setFocus(list)
	}
	header := m.header(w)
	if m.phase == ended {
		return m.endedView(header, w, h)
	}
	bottom := m.status.view(w, 2) + "\n" + m.help.View(m.helpKeys())
	room := max(1, h-lipgloss.Height(header)-lipgloss.Height(bottom)-1)
	body := m.body(w, room)
	screen := header + "\n\n" + fitHeight(body, room) + "\n" + bottom
	if p, width := m.modal(); p != nil {
		screen = overlay(screen, m.styles.Modal.Render(p.view(width, h-4)), w, h)
	}
	return clip(screen, w, h)
}

func (m *Model) header(w int) string {
	left := m.styles.Header.Render("gander")
	if m.opts.Version != "" {
		left += " " + m.styles.Dim.Render(m.opts.Version)
	}
	if m.code.code == "" || m.code.state != codeReady {
		return fit(" "+left, w)
	}
	right := "code " + m.styles.Code.Render(clean(m.code.code))
	gap := w - 1 - lipgloss.Width(left) - lipgloss.Width(right) - 1
	if gap < 2 {
		return fit(" "+left, w)
	}
	return " " + left + strings.Repeat(" ", gap) + right
}

// body is the middle of the screen, h lines at most: the code until the
// peer comes, then the verifier; the forwards; the transfers, if any. The
// forwards and the transfers share what room is left.
func (m *Model) body(w, h int) string {
	inner := w - 2
	var top pane = m.code
	if m.verifier.known() {
		top = m.verifier
	}
	topView := top.view(inner, h)
	if line := m.share.view(inner, h); line != "" {
		topView += "\n\n" + line
	}
	sections := []string{topView}
	room := h - lipgloss.Height(topView)
	showForwards := m.verifier.known() || !m.forwards.empty()
	showTransfers := !m.transfers.empty()
	fwHeight, trHeight := room-1, room-1
	if showForwards && showTransfers {
		room -= 2
		fwNeed := 2 + max(1, len(m.forwards.rows))
		trNeed := lipgloss.Height(m.transfers.view(inner, room))
		fwHeight = max(3, min(fwNeed, room-min(trNeed, room/2)))
		trHeight = room - fwHeight
	}
	if showForwards {
		sections = append(sections, m.forwards.view(inner, fwHeight))
	}
	if showTransfers {
		sections = append(sections, m.transfers.view(inner, max(2, trHeight)))
	}
	return indent(strings.Join(sections, "\n\n"), 1)
}

func (m *Model) endedView(header string, w, h int) string {
	var title, detail string
	switch {
	case m.happy() && m.peerLeft:
		title = "Your peer closed the session."
	case m.happy():
		title = "The session is over."
	case errors.Is(m.closedErr, session.ErrLonely):
		title = "Nobody came: the wormhole closed before your peer connected."
	case m.spoiled():
		title = "This code is spoiled."
		detail = clean(m.closedErr.Error()) + "\nPress n for a new code (give it to your peer), any other key to exit."
	case errors.Is(m.closedErr, session.ErrWrongCode):
		title = "Wrong code."
		detail = clean(m.closedErr.Error()) + "\nCheck the code with your peer and try again."
	case !m.gotClosed:
		title = "The session stopped."
	default:
		title = "The session ended with an error."
		detail = clean(m.closedErr.Error())
	}
	st := m.styles
	width := min(w-4, 70)
	text := st.Header.Render(title)
	if m.Err() != nil {
		text = st.Bad.Render("✗ " + title)
	}
	if detail != "" {
		text += "\n\n" + wrap(detail, width-4)
	}
	text += "\n\n" + st.Dim.Render("Press any key to exit.")
	box := st.Ended.Render(text)
	body := lipgloss.Place(w, max(1, h-2), lipgloss.Center, lipgloss.Center, box)
	return clip(header+"\n\n"+fitHeight(body, max(1, h-2)), w, h)
}

// modalWidth is the outer width of the dialogs and forms.
func (m *Model) modalWidth() int { return max(20, min(m.width-4, 64)) }

// helpWidth is the inner width of the help overlay.
func (m *Model) helpWidth() int { return max(16, min(m.width-8, 76)) }

// overlay draws box in the middle of screen.
func overlay(screen, box string, w, h int) string {
	x := max(0, (w-lipgloss.Width(box))/2)
	y := max(0, (h-lipgloss.Height(box))/2)
	return lipgloss.NewCompositor(
		lipgloss.NewLayer(screen),
		lipgloss.NewLayer(box).X(x).Y(y).Z(1),
	).Render()
}

// fitHeight pads or cuts s to exactly h lines.
func fitHeight(s string, h int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
		lines[h-1] = " …"
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	return strings.Join(lines, "\n")
}

// clip cuts the screen to w×h, for terminals too small for some pane.
func clip(s string, w, h int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for i, l := range lines {
		if ansi.StringWidth(l) > w {
			lines[i] = ansi.Truncate(l, w, "")
		}
	}
	return strings.Join(lines, "\n")
}

func indent(s string, n int) string {
	prefix := strings.Repeat(" ", n)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}

var _ tea.Model = (*Model)(nil)
