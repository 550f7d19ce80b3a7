package tui

import (
	"context"
	"errors"
	"fmt"
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

	"github.com/gander-pair/gander/internal/sanitize"
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
	help   help.Model
	width  int
	height int

	code      codePane
	verifier  verifierPane
	status    statusLine
	forwards  forwardsPane
	transfers transfersPane
	dialogs   dialogQueue
	sending   *sendPrompt // open while files to send are being chosen

	showHelp       bool
	focusTransfers bool // ↑/↓ and x act on the transfers, not the forwards
	phase          phase
	peerLeft       bool  // PeerClosing arrived
	over           bool  // the session ended: Closed came, or the events stopped
	closedErr      error // Closed.Err, or errSessionStopped
	gotClosed      bool
	wantNewCode    bool // n on the spoiled-code screen
	reconnectGen   int
	staleTimer     bool // a staleCheckMsg is on its way

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
	m.code = newCodePane(m.keys, m.styles, m.send, opts.Code, opts.CodeLength)
	m.forwards = forwardsPane{keys: m.keys, send: m.send}
	m.transfers = transfersPane{send: m.send}
	m.dialogs = dialogQueue{keys: m.keys, send: m.send}
	m.resize(80, 24)
	return m
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
	case reconnectTickMsg:
		if msg.gen == m.reconnectGen && m.status.reconnecting() {
			return m, m.reconnectTick()
		}
	case copiedDoneMsg:
		if msg.seq == m.code.copySeq {
			m.code.copied = false
		}
	case staleCheckMsg:
		m.staleTimer = false
		return m, m.checkStale()
	case tea.KeyPressMsg:
		return m, m.handleKey(msg)
	case tea.PasteMsg:
		// A paste goes to the text input that has the focus; without
		// one, it is files dropped on the terminal.
		if cmd, ok := m.routeToInput(msg); ok {
			return m, cmd
		}
		if m.phase == running && !m.showHelp && !m.code.typing() {
			return m, m.openSending(msg.Content)
		}
	}
	return m, nil
}

func (m *Model) resize(w, h int) {
	m.width, m.height = w, h
	m.help.SetWidth(w - 2)
	m.code.setWidth(w)
}

// handleEvent applies one session event.
func (m *Model) handleEvent(ev session.Event) tea.Cmd {
	now := m.now()
	switch e := ev.(type) {
	case session.Welcome:
		m.status.welcomed = true
		if motd := strings.Join(strings.Fields(sanitize.Text(e.MOTD, true)), " "); motd != "" {
			m.status.say("server says: "+motd, false)
		}
	case session.Nameplates:
		m.code.setNameplates(e.Names)
	case session.CodeReady:
		m.code.ready(e.Code)
	case session.PeerConnected:
		m.verifier.verifier = e.Verifier
		m.status.setPeer(e.PeerVersions)
		m.status.say("your peer is connected: compare the verifier", false)
	case session.PermissionRequest:
		return m.ask(dialog{perm: &e})
	case session.PermissionWithdrawn:
		m.dialogs.withdraw(e.ID)
	case session.TransferOffered:
		return m.ask(dialog{offer: &e})
	case session.TransferProgress:
		m.transfers.handle(e, now)
		return m.startStaleTimer()
	case session.TransferFinished:
		m.note(m.transfers.handle(e, now))
	case session.TransfersRefused:
		if e.Unread {
			m.status.say(fmt.Sprintf("refused %d offers of your peer unread: %s", e.Count, clean(e.Reason)), true)
		} else {
			m.status.say(fmt.Sprintf("%d more offers of your peer ended: %s", e.Count, clean(e.Reason)), true)
		}
	case session.PartialsRemoved:
		if n := len(e.Removed); n > 0 {
			m.status.say(fmt.Sprintf("removed %d partial files an earlier gander left in %s", n, clean(e.Dir)), false)
		}
	case session.CommandFailed:
		m.status.say(errText(e.Err), true)
	case session.PeerClosing:
		m.peerLeft = true
		m.status.say("your peer closed the session", false)
	case session.Closed:
		m.gotClosed = true
		return m.sessionEnded(e.Err)
	case session.LinkStatus:
		if m.status.setLink(e, now) {
			m.reconnectGen++
			return m.reconnectTick()
		}
		if e.State == session.LinkStopped && e.Err != nil {
			m.status.say("connection stopped: "+errText(e.Err), true)
		}
	case session.ForwardProblem:
		m.status.say(errText(e.Err), true)
	case session.Traffic:
		m.forwards.handle(e, now)
		return m.startStaleTimer()
	case session.ServiceListening, session.AwaitingConnect, session.ForwardRefused, session.ForwardRemoved,
		session.ConnectionOpened, session.ConnectionClosed, session.OfferFailed:
		m.note(m.forwards.handle(e, now))
	}
	return nil
}

// ask queues one of the peer's questions (or answers it at once).
func (m *Model) ask(d dialog) tea.Cmd {
	cmd, notice := m.dialogs.push(d)
	m.note(notice, true)
	return cmd
}

// dialogShown says whether the first of the peer's questions is on the
// screen. Before the verifier is confirmed they wait: until then the
// peer may be anyone who took the code, and the user cannot tell.
func (m *Model) dialogShown() bool { return m.dialogs.active() && m.verifier.confirmed }

// note shows a pane's notice, if any.
func (m *Model) note(text string, bad bool) {
	if text != "" {
		m.status.say(text, bad)
	}
}

// sessionEnded handles the end of the session: the expected answer to our
// Close, or the session ending by itself.
func (m *Model) sessionEnded(err error) tea.Cmd {
	m.over, m.closedErr = true, err
	if m.phase == closing {
		return tea.Quit
	}
	m.phase = ended
	m.dialogs.clear()
	m.forwards.form, m.forwards.removing = nil, ""
	m.showHelp = false
	return nil
}

func (m *Model) reconnectTick() tea.Cmd {
	gen := m.reconnectGen
	return tea.Tick(reconnectingTick, func(time.Time) tea.Msg { return reconnectTickMsg{gen} })
}

// startStaleTimer arranges for rates to drop to nothing once the session
// stops reporting traffic (it reports only while bytes move).
func (m *Model) startStaleTimer() tea.Cmd {
	if m.staleTimer {
		return nil
	}
	m.staleTimer = true
	return tea.Tick(staleCheck, func(time.Time) tea.Msg { return staleCheckMsg{} })
}

func (m *Model) checkStale() tea.Cmd {
	now := m.now()
	moving := m.forwards.expireRates(now)
	if m.transfers.expireRates(now) {
		moving = true
	}
	if moving {
		return m.startStaleTimer()
	}
	return nil
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
	m.forwards.form, m.forwards.removing = nil, ""
	m.status.say("closing…", false)
	return tea.Batch(
		m.send(session.Close{Timeout: closeTimeout}),
		tea.Tick(quitAfter, func(time.Time) tea.Msg { return quitTimeoutMsg{} }),
	)
}

// handleKey routes a key: ctrl+c first, then whatever has the focus (an
// ended session, the help overlay, a dialog, a form, the code input), and
// only then the keys of the main screen.
func (m *Model) handleKey(k tea.KeyPressMsg) tea.Cmd {
	if key.Matches(k, m.keys.ForceQuit) {
		return m.quit()
	}
	switch {
	case m.phase == ended:
		if m.spoiled() && key.Matches(k, m.keys.NewCode) {
			m.wantNewCode = true
		}
		return tea.Quit
	case m.phase == closing:
		return nil
	case m.showHelp:
		m.showHelp = false // any key closes it
		return nil
	case m.dialogShown():
		blocked := m.dialogs.blocked
		cmd, acc := m.dialogs.update(k, m.styles, m.modalWidth())
		if acc != nil {
			m.transfers.accept(*acc)
		}
		if m.dialogs.blocked && !blocked {
			m.status.say("denying everything your peer asks for the rest of this session", false)
		}
		return cmd
	case m.sending != nil:
		return m.updateSending(k)
	case m.forwards.capturing():
		return m.forwards.handleKey(k)
	case m.code.typing():
		if key.Matches(k, m.keys.Help) { // codes have no '?'
			m.showHelp = true
			return nil
		}
		return m.code.update(k)
	}
	switch {
	case key.Matches(k, m.keys.Quit):
		return m.quit()
	case key.Matches(k, m.keys.Help):
		m.showHelp = true
	case key.Matches(k, m.keys.CopyCode) && m.code.state == codeReady:
		m.code.copied = true
		m.code.copySeq++
		seq := m.code.copySeq
		return tea.Batch(
			tea.SetClipboard(m.code.code),
			tea.Tick(copiedFor, func(time.Time) tea.Msg { return copiedDoneMsg{seq} }),
		)
	case key.Matches(k, m.keys.Confirm) && m.verifier.known():
		m.verifier.confirmed = !m.verifier.confirmed
	case key.Matches(k, m.keys.SendFiles):
		return m.openSending("")
	case key.Matches(k, m.keys.AddForward):
		m.focusTransfers = false
		return m.forwards.openForm(m.styles, m.modalWidth()-4)
	case key.Matches(k, m.keys.SwitchPane):
		m.focusTransfers = !m.focusTransfers && !m.transfers.empty()
	case key.Matches(k, m.keys.Up, m.keys.Down):
		delta := 1
		if key.Matches(k, m.keys.Up) {
			delta = -1
		}
		if m.transfersFocused() {
			m.transfers.move(delta)
		} else {
			m.forwards.move(delta)
		}
	case key.Matches(k, m.keys.RemoveForward) && !m.transfersFocused():
		m.forwards.confirmRemove()
	case key.Matches(k, m.keys.CancelTransfer) && m.transfersFocused():
		return m.transfers.cancel()
	}
	return nil
}

// transfersFocused says whether ↑/↓ and x act on the transfers: when
// chosen with tab, or when there are transfers but no forwards.
func (m *Model) transfersFocused() bool {
	return !m.transfers.empty() && (m.focusTransfers || len(m.forwards.rows) == 0)
}

// routeToInput gives a paste to the text input with the focus, if any.
func (m *Model) routeToInput(msg tea.Msg) (cmd tea.Cmd, taken bool) {
	if m.phase != running || m.showHelp {
		return nil, true
	}
	switch {
	case m.dialogShown():
		if m.dialogs.typing() {
			cmd, _ := m.dialogs.update(msg, m.styles, m.modalWidth())
			return cmd, true
		}
		return nil, true
	case m.sending != nil:
		return m.updateSending(msg), true
	case m.forwards.form != nil:
		return m.forwards.handleKey(msg), true
	case m.code.typing():
		return m.code.update(msg), true
	}
	return nil, false
}

// openSending opens the send prompt holding text (a drop, or nothing).
func (m *Model) openSending(text string) tea.Cmd {
	m.sending = newSendPrompt(m.styles, m.modalWidth()-4, text, m.opts.Home)
	return m.sending.input.Focus()
}

func (m *Model) updateSending(msg tea.Msg) tea.Cmd {
	cmd, done := m.sending.update(msg, m.keys, m.send)
	if done {
		if len(m.sending.paths) > 0 && cmd != nil {
			m.status.say(fmt.Sprintf("offering %d item(s) to your peer…", len(m.sending.paths)), false)
		}
		m.sending = nil
	}
	return cmd
}

// helpKeys are the bindings that apply now, for the help line.
func (m *Model) helpKeys() help.KeyMap {
	k := m.keys
	switch {
	case m.phase == ended && m.spoiled():
		return bindings{short: []key.Binding{k.NewCode, k.Exit}}
	case m.phase == ended:
		return bindings{short: []key.Binding{k.Exit}}
	case m.phase == closing:
		return bindings{short: []key.Binding{k.ForceQuit}}
	case m.showHelp:
		return bindings{short: []key.Binding{key.NewBinding(key.WithKeys("esc"), key.WithHelp("any key", "close help"))}}
	case m.dialogShown() && m.dialogs.typing():
		return bindings{short: []key.Binding{k.Submit, k.Cancel}}
	case m.dialogShown() && m.dialogs.items[0].perm != nil:
		return bindings{short: []key.Binding{k.AllowOnce, k.AllowAlways, k.Deny, k.DenyAll, k.Block}}
	case m.dialogShown():
		return bindings{short: []key.Binding{k.Accept, k.AcceptInto, k.Refuse, k.RefuseAll, k.Block}}
	case m.forwards.removing != "":
		return bindings{short: []key.Binding{k.Yes, k.No}}
	case m.sending != nil:
		send := key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "send"))
		return bindings{short: []key.Binding{send, k.Cancel}}
	case m.forwards.form != nil:
		add := key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "add"))
		return bindings{short: []key.Binding{add, k.SwitchKind, k.Cancel}}
	case m.code.typing():
		return bindings{short: []key.Binding{k.Submit, k.Complete, k.Help, k.ForceQuit}}
	}
	short := []key.Binding{k.Help, k.Quit}
	if m.code.state == codeReady && !m.verifier.known() {
		short = append(short, k.CopyCode)
	}
	if m.verifier.known() && !m.verifier.confirmed {
		short = append(short, k.Confirm)
	}
	short = append(short, k.AddForward)
	if m.verifier.known() {
		short = append(short, k.SendFiles)
	}
	if m.transfersFocused() {
		short = append(short, k.CancelTransfer)
	} else if len(m.forwards.rows) > 0 {
		short = append(short, k.RemoveForward)
	}
	if !m.transfers.empty() {
		short = append(short, k.SwitchPane)
	}
	return bindings{short: short}
}

// helpSections are the help overlay's groups.
func (m *Model) helpSections() []helpSection {
	k := m.keys
	return []helpSection{
		{"Session", []key.Binding{k.Confirm, k.CopyCode, k.AddForward, k.RemoveForward, k.SendFiles}},
		{"Lists", []key.Binding{k.Up, k.Down, k.SwitchPane, k.CancelTransfer}},
		{"Anywhere", []key.Binding{k.Help, k.Quit, k.ForceQuit}},
		{"Code entry", []key.Binding{k.Complete, k.Submit}},
		{"Port request", []key.Binding{k.AllowOnce, k.AllowAlways, k.Deny, k.DenyAll, k.Block}},
		{"Incoming file", []key.Binding{k.Accept, k.AcceptInto, k.Refuse, k.RefuseAll, k.Block}},
	}
}

type helpSection struct {
	title string
	keys  []key.Binding
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
	header := m.header(w)
	if m.phase == ended {
		return m.endedView(header, w, h)
	}
	bottom := m.status.view(m.styles, w, m.now()) + "\n" + m.help.View(m.helpKeys())
	room := max(1, h-lipgloss.Height(header)-lipgloss.Height(bottom)-1)
	body := m.body(w, room)
	screen := header + "\n\n" + fitHeight(body, room) + "\n" + bottom

	switch {
	case m.showHelp:
		screen = overlay(screen, m.modal(m.helpView(max(16, min(w-8, 76)), h-4)), w, h)
	case m.dialogShown():
		screen = overlay(screen, m.modal(m.dialogs.view(m.styles, m.modalWidth()-4)), w, h)
	case m.forwards.removing != "":
		screen = overlay(screen, m.modal(m.forwards.confirmView(m.styles, m.modalWidth()-4)), w, h)
	case m.forwards.form != nil:
		screen = overlay(screen, m.modal(m.forwards.formView(m.styles, m.modalWidth()-4)), w, h)
	case m.sending != nil:
		screen = overlay(screen, m.modal(m.sending.view(m.styles, m.modalWidth()-4)), w, h)
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
	var top string
	if m.verifier.known() {
		top = m.verifier.view(m.styles, inner, len(m.dialogs.items))
	} else {
		top = m.code.view(m.styles, inner)
	}
	sections := []string{top}
	room := h - lipgloss.Height(top)
	showForwards := m.verifier.known() || len(m.forwards.rows) > 0
	showTransfers := !m.transfers.empty()
	fwHeight, trHeight := room-1, room-1
	if showForwards && showTransfers {
		room -= 2
		fwNeed := 2 + max(1, len(m.forwards.rows))
		trNeed := lipgloss.Height(m.transfers.view(m.styles, inner, room, false))
		fwHeight = max(3, min(fwNeed, room-min(trNeed, room/2)))
		trHeight = room - fwHeight
	}
	if showForwards {
		sections = append(sections, m.forwards.view(m.styles, inner, fwHeight, !m.transfersFocused(), m.now()))
	}
	if showTransfers {
		sections = append(sections, m.transfers.view(m.styles, inner, max(2, trHeight), m.transfersFocused()))
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

// helpView is the ? overlay: the key sections, packed into rows that fit
// width, with blank lines between the rows if height allows.
func (m *Model) helpView(width, height int) string {
	var blocks []string
	for _, s := range m.helpSections() {
		blocks = append(blocks, m.styles.Header.Render(s.title)+"\n"+m.help.FullHelpView([][]key.Binding{s.keys}))
	}
	var rows []string
	var row []string
	rowWidth := 0
	for _, b := range blocks {
		bw := lipgloss.Width(b)
		if len(row) > 0 && rowWidth+3+bw > width {
			rows = append(rows, lipgloss.JoinHorizontal(lipgloss.Top, row...))
			row, rowWidth = nil, 0
		}
		if len(row) > 0 {
			row = append(row, "   ")
			rowWidth += 3
		}
		row = append(row, b)
		rowWidth += bw
	}
	rows = append(rows, lipgloss.JoinHorizontal(lipgloss.Top, row...))
	sep := "\n\n"
	if lipgloss.Height(strings.Join(rows, sep))+2 > height {
		sep = "\n"
	}
	return m.styles.Header.Render("Keys") + "\n\n" + strings.Join(rows, sep)
}

func (m *Model) modalWidth() int { return max(20, min(m.width-4, 64)) }

func (m *Model) modal(content string) string { return m.styles.Modal.Render(content) }

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
