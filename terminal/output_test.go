package terminal

import (
	"bytes"
	"testing"
)

func TestOutputFilter(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"text and csi", "hi \x1b[1;31mred\x1b[0m\x1b[?1049h", "hi \x1b[1;31mred\x1b[0m\x1b[?1049h"},
		{"title bel", "\x1b]0;vim\x07x", "\x1b]0;vim\x07x"},
		{"title st", "\x1b]2;vim\x1b\\x", "\x1b]2;vim\x1b\\x"},
		{"hyperlink", "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\", "\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"},
		{"osc 52 write", "a\x1b]52;c;cHduZWQ=\x07b", "ab"},
		{"osc 52 st", "a\x1b]52;c;cHduZWQ=\x1b\\b", "ab"},
		{"osc 52 read", "\x1b]52;c;?\x07", ""},
		{"iterm file", "\x1b]1337;File=inline=1:AAAA\x07x", "x"},
		{"colour query", "\x1b]10;?\x07x", "x"},
		{"osc without number", "\x1b];x\x07y", "y"},
		{"osc 0 without ;", "\x1b]0\x07y", "y"},
		{"long number", "\x1b]000000000000;x\x07y", "y"},
		// The DCS ends at its first ESC, as a terminal parses it; what is
		// left is a lone ST, which no terminal acts on.
		{"dcs tmux passthrough", "\x1bPtmux;\x1b\x1b]52;c;eA==\x07\x1b\\x", "\x1b\\x"},
		{"decrqss", "\x1bP$qm\x1b\\x", "x"},
		{"apc", "\x1b_Ga=T;AAAA\x1b\\x", "x"},
		{"esc ends a string", "\x1b]52;c;eA==\x1b[31mx", "\x1b[31mx"},
		{"can ends a string", "\x1b]52;c;eA==\x18x", "x"},
		{"escape escape", "\x1b\x1b[A", "\x1b[A"},
		{"no sequence across a drop", "\x1b\x1b]0\x07_", "_"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f OutputFilter
			if got := f.Filter([]byte(tc.in)); string(got) != tc.want {
				t.Errorf("Filter(%q) = %q, want %q", tc.in, got, tc.want)
			}
			// The same, a byte at a time.
			var g OutputFilter
			var got []byte
			for i := range len(tc.in) {
				got = append(got, g.Filter([]byte{tc.in[i]})...)
			}
			if string(got) != tc.want {
				t.Errorf("byte by byte: %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzOutputFilter: however the output is cut into chunks, the result is
// the same, and it never holds an OSC 52 or a DCS.
func FuzzOutputFilter(f *testing.F) {
	f.Add([]byte("a\x1b]52;c;eA==\x07b\x1b]0;t\x07"), uint8(5))
	f.Add([]byte("\x1bPtmux;\x1b\x1b]52;c;eA==\x07\x1b\\"), uint8(9))
	f.Fuzz(func(t *testing.T, in []byte, at uint8) {
		var whole OutputFilter
		want := whole.Filter(in)
		cut := int(at) % (len(in) + 1)
		var split OutputFilter
		got := append(split.Filter(in[:cut]), split.Filter(in[cut:])...)
		if !bytes.Equal(got, want) {
			t.Fatalf("%q cut at %d gives %q, whole %q", in, cut, got, want)
		}
		for _, bad := range []string{"\x1b]52", "\x1bP", "\x1b_", "\x1b]1337"} {
			if bytes.Contains(want, []byte(bad)) {
				t.Fatalf("%q gives %q, which holds %q", in, want, bad)
			}
		}
	})
}
