package tui

import (
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/gander-pair/gander/session"
	"github.com/gander-pair/gander/wormhole/codes"
)

// codeState is where the code pane is.
type codeState int

const (
	codeEntering codeState = iota // the landing screen: typing a code
	codeWaiting                   // AllocateCode or SetCode sent: waiting for CodeReady
	codeReady                     // the code is known; waiting for the peer
)

// maxCompletionLines bounds the completion list under the input.
const maxCompletionLines = 3

// codePane is the landing screen (type a code, Tab completes, Enter on an
// empty line allocates one) and then the code, shown to be read aloud.
type codePane struct {
	*common
	length int // words in a code, for completion

	state     codeState
	input     textinput.Model
	allocated bool // we asked for a new code: the peer has to be told it
	code      string

	nameplates  []string
	listed      bool      // ListNameplates was sent
	listedAt    time.Time // when it was last sent
	pendingTab  bool      // a Tab waits for the Nameplates answer
	completions []string
	hint        string // "no completions"
	err         string // what codes.Parse said about the code typed
	warning     string // an unknown word: Enter again uses the code anyway
	warnedFor   string // the code the warning is about

	// copied says how the last c went, until copySeq's timer fires.
	copied    string
	copiedOK  bool
	copySeq   int
	clipboard clipboard
	// nobody: nobody was on the nameplate when we joined.
	nobody bool
	// serverDown: the mailbox server is out of reach, so the peer
	// cannot find us yet.
	serverDown bool
}

// copiedShownFor is how long the copy's note stays under the code.
const copiedShownFor = 8 * time.Second

func newCodePane(c *common, code string, length int) *codePane {
	in := textinput.New()
	in.Prompt = "> "
	in.Placeholder = "7-guitarist-revenge"
	in.SetStyles(c.styles.Input)
	in.CharLimit = 200
	in.Focus()
	p := &codePane{common: c, length: length, input: in, clipboard: systemClipboard()}
	if code != "" {
		// The session joins with it already.
		p.state, p.code = codeWaiting, code
		p.input.Blur()
	}
	return p
}

// typing says whether the code input has the keyboard.
func (p *codePane) typing() bool { return p.state == codeEntering }

func (p *codePane) setSize(width, _ int) { p.input.SetWidth(max(10, min(width-4, 48))) }

func (p *codePane) setFocus(focus) {}

// update takes the session's code and nameplates; a key or a paste while
// typing; c once the code is ready.
func (p *codePane) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case eventMsg:
		switch e := msg.ev.(type) {
		case session.Nameplates:
			p.setNameplates(e.Names)
		case session.CodeReady:
			p.ready(e.Code)
		case session.NobodyOnCode:
			p.nobody = true
		case session.PeerConnected:
			p.nobody = false
		case session.ServerStatus:
			p.serverDown = !e.Connected
		}
	case copiedMsg:
		if msg.seq == p.copySeq {
			return p.showCopied(msg)
		}
	case copiedDoneMsg:
		if msg.seq == p.copySeq {
			p.copied = ""
		}
	case tea.KeyPressMsg:
		if p.typing() {
			return p.edit(msg)
		}
		if key.Matches(msg, p.keys.CopyCode) && p.state == codeReady {
			return p.copy()
		}
	case tea.PasteMsg:
		if p.typing() {
			return p.edit(msg)
		}
	}
	return nil
}

// copy puts the code on the clipboard; copiedMsg then says how, for a
// moment.
func (p *codePane) copy() tea.Cmd {
	p.copySeq++
	cmd, byTool := p.clipboard.copy(p.code, p.copySeq)
	if byTool {
		return cmd
	}
	return tea.Batch(cmd, p.showCopied(copiedMsg{seq: p.copySeq}))
}

// showCopied shows how the copy went, for copiedShownFor.
func (p *codePane) showCopied(msg copiedMsg) tea.Cmd {
	p.copied, p.copiedOK = msg.text()
	return tea.Tick(copiedShownFor, func(time.Time) tea.Msg { return copiedDoneMsg{msg.seq} })
}

func (p *codePane) helpKeys() []key.Binding {
	switch p.state {
	case codeEntering:
		return []key.Binding{p.keys.Submit, p.keys.Complete, p.keys.Help, p.keys.ForceQuit}
	case codeReady:
		return []key.Binding{p.keys.CopyCode}
	}
	return nil
}

// edit handles a key or a paste while typing.
func (p *codePane) edit(msg tea.Msg) tea.Cmd {
	if k, ok := msg.(tea.KeyPressMsg); ok {
		switch {
		case key.Matches(k, p.keys.Complete):
			var cmd tea.Cmd
			if p.shouldList() {
				// Nameplates are only worth asking the server for once
				// someone wants completing; words need no server.
				p.listed, p.listedAt, p.pendingTab = true, time.Now(), true
				cmd = p.send(session.ListNameplates{})
			}
			p.complete()
			return cmd
		case key.Matches(k, p.keys.Submit):
			return p.submit()
		}
	}
	before := p.input.Value()
	var cmd tea.Cmd
	p.input, cmd = p.input.Update(msg)
	if p.input.Value() != before {
		p.completions, p.hint, p.err, p.warning, p.pendingTab = nil, "", "", "", false
	}
	return cmd
}

// nameplatesRelisted is how often a Tab may ask the server again.
const nameplatesRelisted = 2 * time.Second

// shouldList says whether a Tab asks the server for its nameplates: the
// first time, and again (at most every nameplatesRelisted) while what is
// typed is a nameplate the last list did not have: the peer may have made
// its code since (someone who opens the app before their peer did).
func (p *codePane) shouldList() bool {
	if !p.listed {
		return true
	}
	typed := p.input.Value()
	if strings.Contains(typed, "-") || time.Since(p.listedAt) < nameplatesRelisted {
		return false
	}
	return len(codes.Complete(p.nameplates, typed, p.length)) == 0
}

// complete completes the code typed so far: one completion fills in,
// several are listed (and their common prefix filled in).
func (p *codePane) complete() {
	typed := p.input.Value()
	list := codes.Complete(p.nameplates, typed, p.length)
	p.completions, p.hint = nil, ""
	switch len(list) {
	case 0:
		if !p.pendingTab {
			p.hint = "nothing matches"
		}
	case 1:
		p.input.SetValue(list[0])
		p.input.CursorEnd()
		p.pendingTab = false
	default:
		if prefix := commonPrefix(list); len(prefix) > len(typed) {
			p.input.SetValue(prefix)
			p.input.CursorEnd()
		}
		p.completions = list
		p.pendingTab = false
	}
}

// setNameplates takes the server's answer, and finishes a Tab that waited
// for it.
func (p *codePane) setNameplates(names []string) {
	p.nameplates = names
	if p.pendingTab && p.state == codeEntering {
		p.complete()
	}
	p.pendingTab = false
}

func (p *codePane) submit() tea.Cmd {
	typed := strings.TrimSpace(p.input.Value())
	if typed == "" {
		p.state, p.allocated = codeWaiting, true
		p.input.Blur()
		return p.send(session.AllocateCode{})
	}
	code, err := codes.Parse(typed)
	if err != nil {
		p.err = errText(err)
		return nil
	}
	if err := codes.CheckWords(code); err != nil && p.warnedFor != code {
		p.warning, p.warnedFor = errText(err), code
		return nil
	}
	p.state, p.code = codeWaiting, code
	p.completions, p.hint, p.err, p.warning = nil, "", "", ""
	p.input.Blur()
	return p.send(session.SetCode{Code: code})
}

// ready records the code the session reports.
func (p *codePane) ready(code string) {
	p.state, p.code = codeReady, code
	p.input.Blur()
}

func (p *codePane) view(width, _ int) string {
	st := p.styles
	var b strings.Builder
	switch p.state {
	case codeEntering:
		b.WriteString(wrap("Type the code you were given ("+st.Key.Render("Tab")+" completes), or press "+
			st.Key.Render("Enter")+" on an empty line for a new code.", width))
		b.WriteString("\n\n")
		b.WriteString(p.input.View())
		for _, line := range p.completionLines(width - 2) {
			b.WriteString("\n  " + st.Dim.Render(line))
		}
		if p.hint != "" {
			b.WriteString("\n  " + st.Dim.Render(p.hint))
		}
		if p.err != "" {
			b.WriteString("\n" + wrap(st.Bad.Render("✗ ")+p.err, width))
		}
		if p.warning != "" {
			b.WriteString("\n" + wrap(st.Warn.Render("! ")+p.warning, width))
			b.WriteString("\n  " + st.Dim.Render("Press Enter again to use this code anyway."))
		}
	case codeWaiting:
		if p.allocated {
			b.WriteString("Asking the server for a new code…")
		} else {
			b.WriteString("Joining with code " + st.Code.Render(clean(p.code)) + "…")
		}
	case codeReady:
		if p.allocated {
			b.WriteString("Your wormhole code:\n")
		} else {
			b.WriteString("Joined with the code:\n")
		}
		b.WriteString(st.CodeBox.Render(st.Code.Render(spaced(clean(p.code)))))
		b.WriteString("\n")
		if p.allocated {
			b.WriteString(fit("Tell your peer to run: "+st.Code.Render("gander "+clean(p.code)), width) + "\n")
		}
		switch {
		case p.copied != "" && p.copiedOK:
			b.WriteString(wrap(st.Good.Render("✓ ")+p.copied, width))
		case p.copied != "":
			b.WriteString(wrap(st.Warn.Render("• ")+p.copied, width))
		default:
			b.WriteString(st.Dim.Render("press ") + st.Key.Render("c") + st.Dim.Render(" to copy the code"))
		}
		if p.nobody {
			b.WriteString("\n\n" + wrap("Nobody is on this code yet — waiting for your peer. A code works only once: "+
				"if it was used already, ask your peer for a new one.", width))
		} else {
			b.WriteString("\n\nWaiting for your peer to join…")
		}
		if p.serverDown {
			b.WriteString("\n" + wrap(st.Warn.Render("The mailbox server is out of reach: your peer cannot find you "+
				"until it is back (gander keeps trying)."), width))
		}
	}
	return b.String()
}

// completionLines lays the completions out in rows of at most width
// cells, with "… and N more" if they do not fit in maxCompletionLines.
func (p *codePane) completionLines(width int) []string {
	var lines []string
	line := ""
	for i, c := range p.completions {
		c = clean(c)
		if line != "" && len(line)+2+len(c) > width {
			if len(lines) == maxCompletionLines-1 {
				return append(lines, line+"  … and "+strconv.Itoa(len(p.completions)-i)+" more")
			}
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += "  "
		}
		line += c
	}
	if line != "" {
		lines = append(lines, fit(line, width))
	}
	return lines
}

// spaced spreads a code's words out to be read aloud: "7 - guitarist - revenge".
func spaced(code string) string { return strings.ReplaceAll(code, "-", " - ") }

func commonPrefix(list []string) string {
	prefix := list[0]
	for _, s := range list[1:] {
		for !strings.HasPrefix(s, prefix) {
			prefix = prefix[:len(prefix)-1]
		}
	}
	return prefix
}
