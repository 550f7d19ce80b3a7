package sanitize

import (
	"strings"
	"unicode"
)

// The rules for file names a peer sends, shared by the gander file
// transfer (session/transfer) and the unpacking of received zips
// (internal/zipsafe).

// SpoofingRune reports whether r could make a name look like another one when
// shown: format characters (category Cf: bidirectional overrides such as
// U+202E, which shows "exe.txt" for "txt.exe", the soft hyphen, zero-width
// spaces and joiners, the byte order mark), line and paragraph
// separators, spaces other than U+0020 (no-break, ideographic, ...), and
// characters that draw nothing (Hangul fillers, the braille blank).
// Variation selectors and combining marks stay allowed: they only change
// the character before them.
func SpoofingRune(r rune) bool {
	switch {
	case unicode.Is(unicode.Cf, r), unicode.In(r, unicode.Zl, unicode.Zp):
		return true
	case r != ' ' && unicode.IsSpace(r), r != ' ' && unicode.Is(unicode.Zs, r):
		return true
	}
	switch r {
	case 0x115F, 0x1160, 0x3164, 0xFFA0, // Hangul fillers
		0x2800, // braille pattern blank
		0x034F: // combining grapheme joiner
		return true
	}
	return false
}

// WindowsDeviceName reports whether s names a Windows device, in any case.
func WindowsDeviceName(s string) bool {
	s = strings.ToUpper(s)
	switch s {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if len(s) < 4 || (s[:3] != "COM" && s[:3] != "LPT") {
		return false
	}
	switch s[3:] {
	case "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "¹", "²", "³":
		return true
	}
	return false
}
