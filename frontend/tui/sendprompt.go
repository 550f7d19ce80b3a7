package tui

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/gander-pair/gander/session"
)

// sendPrompt is where files dropped on the terminal land: a paste while
// no input has the focus opens it holding the pasted text (s opens it
// empty, to type a path). It shows the paths it understood; Enter offers
// them to the peer, Esc forgets them.
type sendPrompt struct {
	*common
	input  textinput.Model
	home   string
	paths  []string
	err    string
	closed bool // sent or cancelled: the root drops it
}

// newSendPrompt opens a prompt holding text; cmd focuses its input.
func newSendPrompt(c *common, width int, text, home string) (p *sendPrompt, cmd tea.Cmd) {
	in := textinput.New()
	in.Prompt = "> "
	in.Placeholder = "drop files here, or type a path"
	in.SetStyles(c.styles.Input)
	in.CharLimit = 64 << 10
	in.SetWidth(max(10, width-3))
	p = &sendPrompt{common: c, input: in, home: home}
	p.input.SetValue(text)
	p.input.CursorEnd()
	p.parse()
	return p, p.input.Focus()
}

// parse reads the paths in the prompt and checks that each exists (a
// stat, quick enough for Update); the complaint is shown as the text
// changes.
func (p *sendPrompt) parse() {
	p.paths, p.err = nil, ""
	text := strings.TrimSpace(p.input.Value())
	if text == "" {
		return
	}
	paths, err := ParseDroppedPaths(text, p.home)
	if err != nil {
		if errors.Is(err, ErrNotPaths) {
			p.err = "not a file path: give an absolute path, ~/…, or drop the file on the terminal"
		} else {
			p.err = errText(err)
		}
		return
	}
	for _, path := range paths {
		info, err := os.Stat(path)
		switch {
		case err != nil:
			p.err = fmt.Sprintf("%s: no such file or directory", clean(path))
			return
		case !info.Mode().IsRegular() && !info.IsDir():
			p.err = fmt.Sprintf("%s is neither a file nor a directory", clean(path))
			return
		}
	}
	p.paths = paths
}

// update handles a key or a paste; Enter offers the files and closes the
// prompt, Esc closes it.
func (p *sendPrompt) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.KeyPressMsg:
		switch {
		case key.Matches(msg, p.keys.Cancel):
			p.closed = true
			return nil
		case key.Matches(msg, p.keys.Submit):
			if len(p.paths) == 0 {
				if p.err == "" {
					p.err = "nothing to send yet"
				}
				return nil
			}
			p.closed = true
			p.say(fmt.Sprintf("offering %d item(s) to your peer…", len(p.paths)), false)
			return p.send(session.SendFiles{Paths: p.paths})
		}
	case tea.PasteMsg:
	default:
		return nil
	}
	var cmd tea.Cmd
	p.input, cmd = p.input.Update(msg)
	p.parse()
	return cmd
}

func (p *sendPrompt) helpKeys() []key.Binding {
	return []key.Binding{p.keys.SendSubmit, p.keys.Cancel}
}

func (p *sendPrompt) setSize(int, int) {}
func (p *sendPrompt) setFocus(focus)   {}

func (p *sendPrompt) view(width, _ int) string {
	st := p.styles
	var b strings.Builder
	b.WriteString(st.Header.Render("Send files to your peer") + "\n\n")
	b.WriteString(p.input.View())
	for i, path := range p.paths {
		if i == maxCompletionLines {
			b.WriteString("\n" + st.Dim.Render(fmt.Sprintf("  … and %d more", len(p.paths)-i)))
			break
		}
		b.WriteString("\n" + fit("  "+st.Good.Render("✓ ")+clean(path), width))
	}
	if p.err != "" {
		b.WriteString("\n" + wrap(st.Bad.Render("✗ ")+p.err, width))
	}
	b.WriteString("\n\n" + st.Key.Render("enter") + " send   " + st.Key.Render("esc") + " cancel")
	return b.String()
}
