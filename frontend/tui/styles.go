package tui

import (
	"charm.land/bubbles/v2/help"
	"charm.land/bubbles/v2/textinput"
	"charm.land/lipgloss/v2"
)

// Styles holds every style the interface uses; nothing else in the package
// calls lipgloss.NewStyle. Colours are the terminal's own 16 ANSI colours,
// so they follow the user's theme on dark and light backgrounds alike.
// Nothing relies on colour alone: selection has a "›" marker, choices a
// "(•)", states a word or a symbol.
type Styles struct {
	Header  lipgloss.Style // "gander 0.1.0"
	Title   lipgloss.Style // a pane's title
	Dim     lipgloss.Style // secondary text
	Key     lipgloss.Style // a key named in running text: "press v"
	Good    lipgloss.Style // ✓ confirmed, connected
	Warn    lipgloss.Style // unknown word, reconnecting
	Bad     lipgloss.Style // errors
	Code    lipgloss.Style // the wormhole code, to read aloud
	CodeBox lipgloss.Style
	Hex     lipgloss.Style // the verifier
	// Selected is the selected table row, on top of its "›" marker.
	Selected lipgloss.Style
	Column   lipgloss.Style // table column headings
	Modal    lipgloss.Style // dialogs and the help overlay
	Ended    lipgloss.Style // the box around the closed-session message
	Bar      lipgloss.Style // a progress bar's filled part
	BarEmpty lipgloss.Style
	Status   lipgloss.Style // the status line
	Help     help.Styles
	Input    textinput.Styles
}

// NewStyles returns the styles; noColor drops every colour (NO_COLOR) and
// keeps only bold, faint, underline and reverse.
func NewStyles(noColor bool) *Styles {
	fg := func(s lipgloss.Style, c string) lipgloss.Style {
		if noColor {
			return s
		}
		return s.Foreground(lipgloss.Color(c))
	}
	plain := lipgloss.NewStyle()
	s := &Styles{
		Header:   plain.Bold(true),
		Title:    plain.Bold(true).Underline(true),
		Dim:      plain.Faint(true),
		Key:      fg(plain.Bold(true), "6"),
		Good:     fg(plain.Bold(true), "2"),
		Warn:     fg(plain.Bold(true), "3"),
		Bad:      fg(plain.Bold(true), "1"),
		Code:     fg(plain.Bold(true), "6"),
		Hex:      fg(plain.Bold(true), "5"),
		Selected: plain.Bold(true),
		Column:   plain.Faint(true).Underline(true),
		Bar:      fg(plain, "2"),
		BarEmpty: plain.Faint(true),
		Status:   plain,
	}
	border := func(st lipgloss.Style, c string) lipgloss.Style {
		if noColor {
			return st
		}
		return st.BorderForeground(lipgloss.Color(c))
	}
	s.CodeBox = border(plain.Border(lipgloss.RoundedBorder()).Padding(0, 2), "6")
	s.Modal = border(plain.Border(lipgloss.RoundedBorder()).Padding(0, 1), "4")
	s.Ended = border(plain.Border(lipgloss.DoubleBorder()).Padding(0, 1), "1")

	s.Help = help.Styles{
		ShortKey:       s.Key,
		ShortDesc:      plain,
		ShortSeparator: s.Dim,
		Ellipsis:       s.Dim,
		FullKey:        s.Key,
		FullDesc:       plain,
		FullSeparator:  s.Dim,
	}

	// The text inputs' cursor must not blink: a blinking cursor is a timer
	// firing twice a second, and a redraw each time.
	in := textinput.DefaultStyles(true)
	in.Cursor.Blink = false
	if noColor {
		state := textinput.StyleState{
			Text:        plain,
			Placeholder: plain.Faint(true),
			Suggestion:  plain.Faint(true),
			Prompt:      plain.Bold(true),
		}
		in.Focused, in.Blurred = state, state
		in.Cursor.Color = nil
	}
	s.Input = in
	return s
}
