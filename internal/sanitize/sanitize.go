// Package sanitize makes text from the network safe to show on a
// terminal; every frontend uses it.
package sanitize

import (
	"strings"
	"unicode"
)

// maxShownText caps, in runes, any one text from the network that
// Text lets through. The mailbox server's texts are cut to 512 bytes
// already; this covers every other source (a peer's reasons and names).
const maxShownText = 512

// Text makes text from the network (a server's MOTD, a peer's error
// message or file name) safe to print on a terminal: escape sequences and
// other control characters are replaced, so a hostile peer cannot move the
// cursor, retitle the window or hide text. Newlines and tabs survive only if
// keepNewlines is set. Text longer than maxShownText runes is cut, ending
// in "…": the result is for display only.
func Text(s string, keepNewlines bool) string {
	var b strings.Builder
	shown := 0
	for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
		if shown == maxShownText {
			b.WriteString("…")
			break
		}
		shown++
		switch {
		case keepNewlines && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case unicode.IsControl(r), r == '\u2028', r == '\u2029',
			unicode.Is(unicode.Bidi_Control, r):
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Line is Text for one line: no newlines or tabs.
func Line(s string) string { return Text(s, false) }
