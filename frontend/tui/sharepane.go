package tui

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/term"
	"github.com/muesli/cancelreader"

	"github.com/gander-pair/gander/session"
)

// sharePane is the shared terminal between two gander apps: one line per
// share on the main screen, always there while a share runs, saying who
// may type; its keys start and show our share (the full-screen view
// takes the terminal through tea.Exec, and DetachKeyName gives it back
// while the share goes on), let the peer type or take it back, watch the
// peer's share and ask for its keyboard. The peer's request for ours is a
// dialog of the dialogQueue (keyboardDialog).
type sharePane struct {
	*common
	width   int
	peerHas bool // the peer runs the shared terminal (terminal-v1)

	// Ours.
	sharing     bool
	ourCommand  string
	watched     bool // the peer watches it now
	peerMayType bool
	dropped     int // bytes of the peer's keys dropped, for the line

	// The peer's.
	offered     bool
	peerCommand string
	weMayType   bool
	asked       bool // AskKeyboard sent, no answer yet
}

// shareViewDoneMsg: a full-screen view ended (err: why it failed).
type shareViewDoneMsg struct{ err error }

var _ pane = (*sharePane)(nil)

func (p *sharePane) setSize(width, _ int) { p.width = width }
func (p *sharePane) setFocus(focus)       {}

func (p *sharePane) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case eventMsg:
		p.event(msg.ev)
	case shareViewDoneMsg:
		if msg.err != nil {
			p.say("shared terminal: "+clean(msg.err.Error()), true)
		}
	case endedMsg:
		*p = sharePane{common: p.common, width: p.width}
	case tea.KeyPressMsg:
		return p.key(msg)
	}
	return nil
}

func (p *sharePane) event(ev session.Event) {
	switch e := ev.(type) {
	case session.PeerConnected:
		p.peerHas = e.Peer.Accepts(session.FeatureTerminal)
	case session.ShareOffered:
		if e.Outgoing {
			p.sharing, p.ourCommand, p.watched, p.peerMayType, p.dropped = true, e.Command, false, false, 0
			return
		}
		p.offered, p.peerCommand, p.weMayType, p.asked = true, e.Command, false, false
		p.say(fmt.Sprintf("your peer shares a terminal (%s): press w to watch", clean(e.Command)), false)
	case session.ShareGuestJoined:
		p.watched = true
	case session.ShareGuestLeft:
		p.watched = false
	case session.ShareTyping:
		if e.Outgoing {
			p.peerMayType = e.Allowed
			return
		}
		p.weMayType, p.asked = e.Allowed, false
		switch {
		case e.Allowed:
			p.say("your peer lets you type into its terminal", false)
		case e.Reason != "":
			p.say(clean(e.Reason), true)
		}
	case session.ShareInputDropped:
		p.dropped += e.Bytes
	case session.ShareEnded:
		if e.Outgoing {
			p.sharing, p.watched, p.peerMayType = false, false, false
			p.say("your shared terminal has ended", false)
		} else {
			p.offered, p.weMayType, p.asked = false, false, false
			p.say("your peer's shared terminal has ended", false)
		}
		if e.Err != nil {
			p.say("shared terminal: "+clean(e.Err.Error()), true)
		}
	}
}

// key handles the main screen's keys of the shared terminal; others pass.
func (p *sharePane) key(k tea.KeyPressMsg) tea.Cmd {
	keys := p.keys
	switch {
	case key.Matches(k, keys.ShareTerminal):
		if !p.peerHas {
			p.say("your peer's program has no shared terminal (fowl, or an older gander)", true)
			return nil
		}
		return p.fullScreen(!p.sharing, false)
	case key.Matches(k, keys.StopShare) && p.sharing:
		return p.send(session.StopShare{})
	case key.Matches(k, keys.TakeKeyboard) && p.sharing && p.peerMayType:
		return p.send(session.RevokeTyping{})
	case key.Matches(k, keys.WatchShare) && p.offered:
		return p.fullScreen(false, true)
	case key.Matches(k, keys.AskKeyboard) && p.offered && !p.weMayType:
		p.asked = true
		p.say("asked your peer for the keyboard", false)
		return p.send(session.AskKeyboard{})
	}
	return nil
}

// fullScreen hands the terminal to a view of our share (start: start it
// first) or of the peer's (watch).
func (p *sharePane) fullScreen(start, watch bool) tea.Cmd {
	v := &shareView{do: func(c session.Command) { p.send(c)() }, start: start, watch: watch}
	return tea.Exec(v, func(err error) tea.Msg { return shareViewDoneMsg{err} })
}

func (p *sharePane) helpKeys() []key.Binding {
	k := p.keys
	var out []key.Binding
	if p.peerHas {
		out = append(out, k.ShareTerminal)
	}
	if p.sharing {
		out = append(out, k.StopShare)
		if p.peerMayType {
			out = append(out, k.TakeKeyboard)
		}
	}
	if p.offered {
		out = append(out, k.WatchShare)
		if !p.weMayType {
			out = append(out, k.AskKeyboard)
		}
	}
	return out
}

// view is one line per share (none without one): what is shared, who
// watches, who may type.
func (p *sharePane) view(width, _ int) string {
	st := p.styles
	var lines []string
	if p.sharing {
		who := st.Good.Render("only you type")
		if p.peerMayType {
			who = st.Warn.Render("you and your peer type") + " (" + st.Key.Render(p.keys.TakeKeyboard.Help().Key) + " takes it back)"
		}
		watch := "your peer is not watching"
		if p.watched {
			watch = "your peer is watching"
		}
		if p.dropped > 0 && !p.peerMayType {
			who += st.Dim.Render(fmt.Sprintf(" (%d of its keys dropped)", p.dropped))
		}
		line := fmt.Sprintf("⌨ sharing %s · %s · %s · %s show, %s back", st.Code.Render(strconv.Quote(clean(p.ourCommand))),
			watch, who, st.Key.Render(p.keys.ShareTerminal.Help().Key), session.DetachKeyName)
		lines = append(lines, line)
	}
	if p.offered {
		who := "read-only: only your peer types"
		switch {
		case p.weMayType:
			who = st.Warn.Render("you may type")
		case p.asked:
			who += st.Dim.Render(" (keyboard asked for)")
		}
		lines = append(lines, fmt.Sprintf("⌨ your peer shares %s · %s · %s watch, %s back",
			st.Code.Render(strconv.Quote(clean(p.peerCommand))), who, st.Key.Render(p.keys.WatchShare.Help().Key), session.DetachKeyName))
	}
	if len(lines) == 0 {
		return ""
	}
	return fit(strings.Join(lines, "\n"), width)
}

// keyboardDialog is the dialog of the peer's request for our keyboard.
func keyboardDialogView(st *Styles, width int) string {
	return st.Header.Render("Your peer asks for the keyboard") + "\n\n" +
		wrap("Your peer asks to type into the terminal you share: its keys would run on this machine. "+
			"You can take the keyboard back at any time (R).", width) +
		"\n\n" + wrap(st.Key.Render("y")+" let them type   "+st.Key.Render("n")+" keep read-only", width)
}

// keyboardDialogAnswer is the decision a key gives the keyboard dialog;
// false if the key is not an answer.
func keyboardDialogAnswer(keys *keyMap, k tea.KeyPressMsg) (session.Decision, bool) {
	switch {
	case key.Matches(k, keys.LetType):
		return session.AllowOnce, true
	case key.Matches(k, keys.KeepReadOnly):
		return session.Deny, true
	}
	return session.Deny, false
}

// shareView is a full-screen view of a shared terminal run by tea.Exec:
// Bubble Tea has released the terminal (cooked mode, its input reader
// stopped); the view puts it in raw mode, lends it to the session's view
// until DetachKeyName, and gives it back as it found it.
type shareView struct {
	do           func(session.Command)
	start, watch bool
	stdin        io.Reader
	stdout       io.Writer
}

func (v *shareView) SetStdin(r io.Reader)  { v.stdin = r }
func (v *shareView) SetStdout(w io.Writer) { v.stdout = w }
func (v *shareView) SetStderr(io.Writer)   {}

// errNoTerminal: the app's input is not a terminal (a test's pipe).
var errNoTerminal = errors.New("the shared terminal needs a terminal")

func (v *shareView) Run() error {
	in, ok := v.stdin.(*os.File)
	if !ok || !term.IsTerminal(in.Fd()) {
		return errNoTerminal
	}
	sizeFd := in.Fd()
	if out, ok := v.stdout.(*os.File); ok && term.IsTerminal(out.Fd()) {
		sizeFd = out.Fd()
	}
	state, err := term.MakeRaw(in.Fd())
	if err != nil {
		return err
	}
	defer term.Restore(in.Fd(), state)
	keys, err := cancelreader.NewReader(in)
	if err != nil {
		return err
	}
	defer keys.Close()

	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	defer signal.Stop(winch)
	resized := make(chan struct{}, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() { // owned by Run: stop ends it
		for {
			select {
			case <-winch:
				select {
				case resized <- struct{}{}:
				default:
				}
			case <-stop:
				return
			}
		}
	}()
	size := func() session.WinSize {
		cols, rows, err := term.GetSize(sizeFd)
		if err != nil {
			return session.WinSize{Cols: 80, Rows: 24}
		}
		return session.WinSize{Cols: cols, Rows: rows}
	}

	what := "your shared terminal"
	if v.watch {
		what = "your peer's terminal"
	}
	fmt.Fprintf(v.stdout, "\x1b[H\x1b[2Jgander: %s; %s returns to the app.\r\n", what, session.DetachKeyName)
	done := make(chan error, 1)
	view := session.TerminalView{In: keys, Out: v.stdout, Size: size, Resized: resized, Done: done}
	if v.start {
		v.do(session.StartShare{Size: size()})
	}
	if v.watch {
		v.do(session.WatchShare{View: view})
	} else {
		v.do(session.ShowShare{View: view})
	}
	return <-done
}
