package terminal

import (
	"bytes"
	"time"
	"unicode/utf8"
)

// Why a guest's input was cut: the reasons FilterInput gives.
const (
	ReasonStringControl = "escape string (OSC, DCS, APC, PM or SOS: clipboard, title, terminal queries)"
	ReasonReply         = "terminal reply or query (device attributes, mode reports, window reports)"
	ReasonPasteMarker   = "bracketed-paste marker"
	ReasonC1            = "C1 control character"
	ReasonInvalidUTF8   = "bytes that are not UTF-8"
	ReasonIncomplete    = "incomplete escape sequence"
)

const (
	esc = 0x1b
	bel = 0x07
)

// FilterInput keeps of a guest's input what a keyboard sends: text,
// control keys, Alt+key, and the CSI and SS3 sequences of cursor,
// function and editing keys and mouse reports. It cuts what could make
// the host's programs, or the host's own terminal through a program that
// echoes, do more than a typist can: OSC/DCS/APC/PM/SOS strings (OSC 52
// clipboard writes, title changes, DECRQSS), CSI sequences with private
// or intermediate bytes that only terminals send as replies (device
// attributes, DECRPM), window reports, bracketed-paste markers (a
// guest's own "end of paste" inside a paste would break out of it), C1
// controls and bytes that are not UTF-8. It returns the kept bytes and
// the distinct reasons for what it cut (nil if nothing was).
//
// It is pure and looks at one message at a time: an escape sequence cut
// by the end of the message is dropped, except a lone ESC, the Escape
// key.
func FilterInput(in []byte) (kept []byte, reasons []string) {
	out := make([]byte, 0, len(in))
	cut := func(reason string) {
		// An ESC that ends out is the Escape key (no kept sequence ends
		// with ESC). It would join what follows the cut into a new
		// sequence ("ESC <cut> ]52;..."), so the cut takes it too.
		for len(out) > 0 && out[len(out)-1] == esc {
			out = out[:len(out)-1]
		}
		for _, r := range reasons {
			if r == reason {
				return
			}
		}
		reasons = append(reasons, reason)
	}
	for i := 0; i < len(in); {
		c := in[i]
		switch {
		case c == esc:
			n, reason := escapeLength(in[i:])
			if reason != "" {
				cut(reason)
			} else {
				out = append(out, in[i:i+n]...)
			}
			i += n
		case c < utf8.RuneSelf:
			out = append(out, c)
			i++
		default:
			r, size := utf8.DecodeRune(in[i:])
			switch {
			case r == utf8.RuneError && size <= 1:
				cut(ReasonInvalidUTF8)
			case r >= 0x80 && r <= 0x9f:
				cut(ReasonC1)
			default:
				out = append(out, in[i:i+size]...)
			}
			i += size
		}
	}
	return out, reasons
}

// escapeLength is the length of the escape sequence at the start of b
// (b[0] is ESC), and why it must be cut ("" if it is a key).
func escapeLength(b []byte) (int, string) {
	if len(b) == 1 {
		return 1, "" // the Escape key
	}
	switch b[1] {
	case '[':
		return csiLength(b)
	case 'O': // SS3: F1-F4 and the keypad in application mode
		if len(b) < 3 {
			return len(b), ReasonIncomplete
		}
		if b[2] >= 0x40 && b[2] <= 0x7e {
			return 3, ""
		}
		return 2, ReasonIncomplete
	case ']', 'P', 'X', '^', '_':
		return stringLength(b, b[1] == ']'), ReasonStringControl
	case esc:
		// ESC ESC: Alt+Escape, or an Escape before a sequence; keep the
		// first, look at the second on its own.
		return 1, ""
	}
	if b[1] >= 0x20 && b[1] < 0x7f {
		return 2, "" // Alt+key
	}
	return 1, "" // ESC then a control key: both are keys
}

// csiLength reads ESC [ params intermediates final.
func csiLength(b []byte) (int, string) {
	i := 2
	paramsStart := i
	for i < len(b) && b[i] >= 0x30 && b[i] <= 0x3f {
		i++
	}
	params := b[paramsStart:i]
	interStart := i
	for i < len(b) && b[i] >= 0x20 && b[i] <= 0x2f {
		i++
	}
	intermediates := b[interStart:i]
	if i >= len(b) {
		return len(b), ReasonIncomplete
	}
	final := b[i]
	n := i + 1
	if final < 0x40 || final > 0x7e {
		return i, ReasonIncomplete // the stray byte is looked at on its own
	}
	if len(intermediates) > 0 {
		return n, ReasonReply // DECRPM ($y) and the like
	}
	if len(params) > 0 {
		switch params[0] {
		case '<': // SGR mouse report: ESC [ < b ; x ; y M/m
			if final == 'M' || final == 'm' {
				return n, ""
			}
			return n, ReasonReply
		case '?', '>', '=':
			return n, ReasonReply // DA1/DA2/DA3 and DEC mode replies
		}
	}
	switch final {
	case 'A', 'B', 'C', 'D', 'E', 'F', 'H', 'P', 'Q', 'R', 'S', 'Z', 'I', 'O', 'u', 'M':
		// cursor and function keys, Shift-Tab, focus in/out, kitty's
		// CSI u keys, X10 mouse (ESC [ M then three bytes, kept as text)
		return n, ""
	case '~':
		if bytes.Equal(params, []byte("200")) || bytes.Equal(params, []byte("201")) {
			return n, ReasonPasteMarker
		}
		return n, "" // Insert, Delete, Page Up/Down, F5-F12, ...
	}
	return n, ReasonReply // c (DA), n (DSR), t (window reports), x, ...
}

// stringLength is the length of an escape string (OSC, DCS, ...) at the
// start of b: up to and including its ST (ESC \), or BEL for an OSC, or
// the whole of b if it has no end.
func stringLength(b []byte, belEnds bool) int {
	for i := 2; i < len(b); i++ {
		switch {
		case belEnds && b[i] == bel:
			return i + 1
		case b[i] == esc && i+1 < len(b) && b[i+1] == '\\':
			return i + 2
		case b[i] == 0x18 || b[i] == 0x1a: // CAN, SUB cancel a string
			return i + 1
		}
	}
	return len(b)
}

// InputFilter is FilterInput across the messages of one guest: a message
// that ends with the Escape key could join the next one into a sequence
// (ESC, then "]52;c;..."), so Filter holds such an ESC back and filters
// it with the next message. Flush types it alone (the caller calls it
// when no message followed within EscapeHold); the next message is then
// filtered as following that ESC, and dropped whole if, after it, it
// would make a sequence that FilterInput cuts. Not safe for concurrent
// use.
type InputFilter struct {
	held    int  // ESCs that wait: not yet written
	sentEsc bool // the last byte written was a lone ESC
}

// maxHeldEscapes bounds the ESCs held back; a longer run is written, and
// the next message filtered as following it.
const maxHeldEscapes = 16

// ReasonSplitSequence is why a message after a flushed Escape is dropped.
const ReasonSplitSequence = "escape sequence split across messages"

// EscapeHold is how long an Escape key at the end of a message waits for
// the next message before it is typed alone.
const EscapeHold = 50 * time.Millisecond

// Filter filters one message; what it returns may be written at once.
func (f *InputFilter) Filter(in []byte) (kept []byte, reasons []string) {
	if len(in) == 0 {
		return nil, nil
	}
	prefix := f.held
	if f.sentEsc {
		prefix++
	}
	if prefix > 0 {
		in = append(bytes.Repeat([]byte{esc}, prefix), in...)
	}
	kept, reasons = FilterInput(in)
	if f.sentEsc {
		if len(kept) == 0 || kept[0] != esc {
			if len(kept) > 0 {
				reasons = append(reasons, ReasonSplitSequence)
			}
			f.held = 0
			return nil, reasons // the ESC written stays last
		}
		kept = kept[1:] // that ESC is already written
	}
	f.held, f.sentEsc = 0, false
	run := 0
	for run < len(kept) && kept[len(kept)-1-run] == esc {
		run++
	}
	if run > maxHeldEscapes {
		f.sentEsc = true // written: the next message follows it
	} else {
		f.held = run
		kept = kept[:len(kept)-run]
	}
	return kept, reasons
}

// Held reports whether Escape keys wait for Flush.
func (f *InputFilter) Held() bool { return f.held > 0 }

// Flush returns the held Escape keys, if any, to be written alone.
func (f *InputFilter) Flush() []byte {
	if f.held == 0 {
		return nil
	}
	out := bytes.Repeat([]byte{esc}, f.held)
	f.held, f.sentEsc = 0, true
	return out
}
