package sanitize

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestText(t *testing.T) {
	tests := []struct {
		name, in     string
		keepNewlines bool
		want         string
	}{
		{"plain text", "hello, wörld", false, "hello, wörld"},
		{"CSI colour", "\x1b[31mred\x1b[0m", false, "\uFFFD[31mred\uFFFD[0m"},
		{"OSC title", "\x1b]0;pwned\x07x", false, "\uFFFD]0;pwned\uFFFDx"},
		{"C1 CSI", "a\u009b2Jb", false, "a\uFFFD2Jb"},
		{"carriage return overwrite", "safe\rEVIL", false, "safe\uFFFDEVIL"},
		{"newline dropped", "a\nb", false, "a\uFFFDb"},
		{"newline kept", "a\nb\tc", true, "a\nb\tc"},
		{"bidi override", "file\u202Etxt.exe", false, "file\uFFFDtxt.exe"},
		{"invalid utf-8", "a\xffb", false, "a\uFFFDb"},
		{"NUL", "a\x00b", true, "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Text(tt.in, tt.keepNewlines); got != tt.want {
				t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// Text from the network is shown at most maxShownText runes long: a
// server's 4 MiB MOTD or a peer's endless reason cannot fill the screen
// (or the terminal's scrollback) on its own.
func TestSanitizeCapsLength(t *testing.T) {
	exact := strings.Repeat("é", maxShownText)
	if got := Text(exact, false); got != exact {
		t.Errorf("a text of exactly %d runes was changed", maxShownText)
	}
	got := Text(strings.Repeat("é", 1<<20)+"\x1b", true)
	if want := exact + "…"; got != want {
		t.Errorf("Sanitize of 1 Mi runes = %d runes, want %d and …", utf8.RuneCountInString(got), maxShownText)
	}
}
