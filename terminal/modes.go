package terminal

import "strings"

// ScreenModes follows what a program's output does to the terminal that
// shows it, enough to give that terminal back clean: whether it left the
// alternate screen on. Restore's other resets are harmless whatever the
// program did. Not safe for concurrent use.
type ScreenModes struct {
	alt    bool
	esc    bool   // the last byte was ESC
	inCSI  bool   // inside ESC [ ...
	params []byte // of the CSI so far
}

// maxCSIParams bounds the CSI parameters looked at.
const maxCSIParams = 32

// Observe reads output the terminal is about to show.
func (m *ScreenModes) Observe(b []byte) {
	for _, c := range b {
		switch {
		case m.inCSI && c >= 0x40 && c <= 0x7e:
			m.inCSI = false
			m.csi(c)
		case m.inCSI && len(m.params) < maxCSIParams:
			m.params = append(m.params, c)
		case m.inCSI:
			m.inCSI = false // too long for a mode we follow
		case m.esc && c == '[':
			m.inCSI, m.params = true, m.params[:0]
		}
		m.esc = c == esc
	}
}

func (m *ScreenModes) csi(final byte) {
	p := string(m.params)
	if (final != 'h' && final != 'l') || !strings.HasPrefix(p, "?") {
		return
	}
	for _, mode := range strings.Split(p[1:], ";") {
		switch mode {
		case "47", "1047", "1049":
			m.alt = final == 'h'
		}
	}
}

// Alternate reports whether the alternate screen is on.
func (m *ScreenModes) Alternate() bool { return m.alt }

// Restore is what puts the terminal back in the state a shell expects:
// the scroll region reset (with the cursor kept where it is), the normal
// screen back if the alternate one is on (only then: leaving it restores
// a saved cursor), the cursor shown, attributes, insert mode, cursor
// keys, keypad, mouse reporting, focus events and bracketed paste off.
func (m *ScreenModes) Restore() string {
	s := "\x1b7\x1b[r\x1b8"
	if m.alt {
		s += "\x1b[?1049l"
	}
	return s + "\x1b[?25h\x1b[0m\x1b[4l\x1b[?1l\x1b>" +
		"\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1004l\x1b[?2004l"
}
