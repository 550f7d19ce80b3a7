package terminal

// OutputFilter keeps a host's output from doing to the guest's terminal
// more than drawing: it drops the escape strings that reach past the
// screen (OSC 52 clipboard writes and reads, OSC 1337 and other
// terminal-specific commands, colour and font queries, DCS — tmux's
// passthrough among them — APC, PM and SOS) and passes everything else,
// titles (OSC 0, 1, 2), the working directory (OSC 7) and hyperlinks
// (OSC 8) included. It is stateful across chunks, since output is cut
// anywhere, and holds back at most the few bytes of an OSC's number.
// Not safe for concurrent use.
type OutputFilter struct {
	state  outState
	intro  []byte // ESC ] and the digits so far, while the number is read
	inStr  byte   // the introducer of the string being dropped or passed
	stEsc  bool   // an ESC inside a string: maybe the start of ST
	passed bool   // the string in progress is passed, not dropped
}

type outState int

const (
	outNormal    outState = iota
	outEsc                // an ESC ended the last chunk
	outOSCNumber          // reading an OSC's number
	outString             // inside a string (passed or dropped)
)

// maxOSCNumber bounds the digits read of an OSC's number.
const maxOSCNumber = 8

// passedOSC are the OSC commands a host may send a guest's terminal.
var passedOSC = map[string]bool{"0": true, "1": true, "2": true, "7": true, "8": true}

// Filter returns what of chunk may be written to the guest's terminal.
func (f *OutputFilter) Filter(chunk []byte) []byte {
	out := make([]byte, 0, len(chunk)+len(f.intro))
	for _, c := range chunk {
		out = f.step(out, c)
	}
	return out
}

func (f *OutputFilter) step(out []byte, c byte) []byte {
	switch f.state {
	case outNormal:
		if c == esc {
			f.state = outEsc
			return out
		}
		return append(out, c)
	case outEsc:
		switch c {
		case ']':
			f.state, f.intro = outOSCNumber, append(f.intro[:0], esc, ']')
		case 'P', 'X', '^', '_':
			f.state, f.inStr, f.passed, f.stEsc = outString, c, false, false
		case esc:
			// ESC ESC: terminals start over at the second, so the first
			// does nothing; written, it could join what follows a
			// dropped string into a new sequence.
		default:
			f.state = outNormal
			out = append(out, esc, c)
		}
		return out
	case outOSCNumber:
		if c >= '0' && c <= '9' && len(f.intro) < 2+maxOSCNumber {
			f.intro = append(f.intro, c)
			return out
		}
		f.state, f.inStr, f.stEsc = outString, ']', false
		f.passed = passedOSC[string(f.intro[2:])] && c == ';'
		if f.passed {
			out = append(out, f.intro...)
		}
		return f.step(out, c)
	}
	// outString: it ends at ST (ESC \), BEL for an OSC, or CAN/SUB; an
	// ESC followed by anything else ends it too and starts a sequence,
	// as terminals parse it.
	if f.stEsc {
		f.stEsc = false
		if c == '\\' {
			f.state = outNormal
			if f.passed {
				out = append(out, esc, '\\')
			}
			return out
		}
		f.state = outEsc
		return f.step(out, c)
	}
	switch {
	case c == esc:
		f.stEsc = true
		return out
	case f.inStr == ']' && c == bel, c == 0x18, c == 0x1a:
		f.state = outNormal
	}
	if f.passed {
		out = append(out, c)
	}
	return out
}
