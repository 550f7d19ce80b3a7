package terminal

import (
	"strings"
	"testing"
)

func TestScreenModes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []string
		alt    bool
	}{
		{"nothing", []string{"hello"}, false},
		{"1049 on", []string{"\x1b[?1049h"}, true},
		{"1049 on and off", []string{"\x1b[?1049h", "x\x1b[?1049l"}, false},
		{"47", []string{"\x1b[?47h"}, true},
		{"1047 among others", []string{"\x1b[?1;1047h"}, true},
		{"split across chunks", []string{"\x1b", "[?10", "49h"}, true},
		{"not private", []string{"\x1b[1049h"}, false},
		{"other mode", []string{"\x1b[?25l"}, false},
		{"too long", []string{"\x1b[?" + strings.Repeat("1;", 20) + "1049h"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m ScreenModes
			for _, c := range tc.chunks {
				m.Observe([]byte(c))
			}
			if m.Alternate() != tc.alt {
				t.Fatalf("Alternate = %v, want %v", m.Alternate(), tc.alt)
			}
			if strings.Contains(m.Restore(), "\x1b[?1049l") != tc.alt {
				t.Fatalf("Restore %q leaves the alternate screen: %v, want %v", m.Restore(), !tc.alt, tc.alt)
			}
		})
	}
}
