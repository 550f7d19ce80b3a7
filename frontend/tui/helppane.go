package tui

import (
	"strings"

	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

// helpPane is the ? overlay: every key, by where it applies, on two
// pages (all of them do not fit 80×24): the app's, then the shared
// terminal's. The root opens it, flips it with HelpPage and closes it
// on any other key.
type helpPane struct {
	*common
	help *help.Model // the root's, shared with the help line
	page int         // 0 or 1
}

// helpPages is how many pages the overlay has.
const helpPages = 2

// flip shows the next page.
func (p *helpPane) flip() { p.page = (p.page + 1) % helpPages }

// closed: the next opening starts on the first page.
func (p *helpPane) closed() { p.page = 0 }

func (p *helpPane) update(tea.Msg) tea.Cmd { return nil }
func (p *helpPane) setSize(int, int)       {}
func (p *helpPane) setFocus(focus)         {}

func (p *helpPane) helpKeys() []key.Binding {
	return []key.Binding{p.keys.HelpPage, p.keys.CloseHelp}
}

// sections are the groups of the page shown.
func (p *helpPane) sections() []helpSection {
	k := p.keys
	if p.page == 1 {
		return []helpSection{
			{"Your shared terminal", []key.Binding{k.ShareTerminal, k.StopShare, k.TakeKeyboard}},
			{"Your peer's", []key.Binding{k.WatchShare, k.AskKeyboard}},
			{"Peer asks to type", []key.Binding{k.LetType, k.KeepReadOnly}},
			{"Full-screen view", []key.Binding{k.ViewDetach, k.ViewAskKeyboard, k.ViewTilde}},
		}
	}
	return []helpSection{
		{"Session", []key.Binding{k.Confirm, k.CopyCode, k.AddForward, k.RemoveForward, k.SendFiles}},
		{"Lists", []key.Binding{k.Up, k.Down, k.SwitchPane, k.CancelTransfer, k.ClearTransfers}},
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

// view packs the key sections into rows that fit width, with blank lines
// between the rows if height allows.
func (p *helpPane) view(width, height int) string {
	var blocks []string
	for _, s := range p.sections() {
		blocks = append(blocks, p.styles.Header.Render(s.title)+"\n"+p.help.FullHelpView([][]key.Binding{s.keys}))
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
	title := p.styles.Header.Render("Keys") + p.styles.Dim.Render(" · page 1 of 2 · space: shared terminal")
	if p.page == 1 {
		title = p.styles.Header.Render("Keys: shared terminal") + p.styles.Dim.Render(" · page 2 of 2 · space: back")
	}
	return fit(title, width) + "\n\n" + strings.Join(rows, sep)
}
