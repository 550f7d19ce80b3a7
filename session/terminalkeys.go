package session

// AskKeyboardEscape is the guest's way to ask for the keyboard from
// inside WatchShare's view, as ssh's "~." escapes: "~" then "k" at the
// start of a line (after Enter, or first in the view). "~~" there types
// one "~". It works only while the guest may not type (its keys are
// dropped by the host then anyway): once allowed, every key goes to the
// host unchanged, so nothing is taken from a shell user.
const AskKeyboardEscape = "Enter ~ k"

// keyEscapes is a guest view's keyboard that reads AskKeyboardEscape:
// the escape's keys are taken out and ask is called instead. Its state
// is one byte of look-ahead, so it needs no timer.
type keyEscapes struct {
	in CancelReader
	// readOnly says whether the escape is read now (the guest may not
	// type); ask asks the host for the keyboard.
	readOnly func() bool
	ask      func()

	buf       []byte // what in gave
	pending   []byte // what is left to hand out, filtered
	out       []byte // pending's room, reused
	err       error  // in's error, after pending
	midLine   bool   // a key other than Enter came last
	tildeHeld bool   // a "~" at a line's start waits for the next key
}

func newKeyEscapes(in CancelReader, readOnly func() bool, ask func()) *keyEscapes {
	return &keyEscapes{in: in, readOnly: readOnly, ask: ask, buf: make([]byte, 4096)}
}

func (k *keyEscapes) Cancel() bool { return k.in.Cancel() }

func (k *keyEscapes) Read(p []byte) (int, error) {
	for len(k.pending) == 0 {
		if k.err != nil {
			return 0, k.err
		}
		n, err := k.in.Read(k.buf)
		k.err = err
		if n > 0 {
			k.out = k.filter(k.out[:0], k.buf[:n], k.readOnly())
			k.pending = k.out
		}
	}
	n := copy(p, k.pending)
	k.pending = k.pending[n:]
	return n, nil
}

// filter appends to dst what of keys goes to the host (at most one byte
// more than keys: a held "~"), calling ask for each escape.
func (k *keyEscapes) filter(dst, keys []byte, readOnly bool) []byte {
	for _, b := range keys {
		if k.tildeHeld {
			k.tildeHeld = false
			switch {
			case readOnly && b == 'k':
				k.ask()
				continue // nothing was typed: still a line's start
			case readOnly && b == '~':
				dst = append(dst, '~')
				k.midLine = true
				continue
			}
			dst = append(dst, '~')
		}
		if readOnly && !k.midLine && b == '~' {
			k.tildeHeld = true
			continue
		}
		dst = append(dst, b)
		k.midLine = b != '\r' && b != '\n'
	}
	return dst
}
