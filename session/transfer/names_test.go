package transfer

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name            string
		ok, okOnWindows bool
	}{
		{"report.pdf", true, true},
		{".bashrc", true, true},
		{"name with spaces é 日本.txt", true, true},
		{"...", true, false}, // Windows strips trailing dots
		{"aux.c", true, false},
		{"con.txt", true, false},
		{"COM1.log", true, false},
		{"what?.txt", true, false},
		{"a<b>", true, false},
		{"trailing space ", false, false}, // spoofs "trailing space"
		{"trailing dot.", true, false},
		{"console", true, true},
		{"COM10", true, true},
		{"LPT", true, true},
		{strings.Repeat("a", 255), true, true},

		{"", false, false},
		{".", false, false},
		{"..", false, false},
		{"../x", false, false},
		{"/etc/passwd", false, false},
		{"a/b", false, false},
		{`a\b`, false, false},
		{`..\..\x`, false, false},
		{"C:", false, false},
		{`C:\Windows`, false, false},
		{"file.txt:stream", false, false},
		{"CON", false, false},
		{"con", false, false},
		{"Nul", false, false},
		{"NUL ", false, false},
		{"nul.", false, false},
		{"PRN", false, false},
		{"AUX", false, false},
		{"COM1", false, false},
		{"com9", false, false},
		{"COM¹", false, false},
		{"LPT1", false, false},
		{"CONIN$", false, false},
		{"a\x00b", false, false},
		{"a\nb", false, false},
		{"\x1b[31mred", false, false},
		{"tab\there", false, false},
		{"del\x7f", false, false},
		{"c1\u0085", false, false},
		{"bad\xffutf8", false, false},
		{strings.Repeat("a", 256), false, false},

		// Names that look like other names (finding 9).
		{"txt.\u202Eexe", false, false},              // right-to-left override: "exe" shows reversed
		{"soft\u00ADhyphen", false, false},           // invisible soft hyphen
		{" ", false, false},                          // a lone space
		{"   ", false, false},                        // nothing but spaces
		{" leading", false, false},                   // leading space
		{"zero\u200Bwidth", false, false},            // zero-width space
		{"joiner\u200D", false, false},               // zero-width joiner
		{"\uFEFFbom", false, false},                  // byte order mark
		{"isolate\u2066x\u2069", false, false},       // bidi isolates
		{"mark\u200F", false, false},                 // right-to-left mark
		{"arabic\u061Cmark", false, false},           // Arabic letter mark
		{"word\u2060joiner", false, false},           // word joiner
		{"no\u00A0break", false, false},              // no-break space
		{"ideographic\u3000space", false, false},     // ideographic space
		{"line\u2028sep", false, false},              // line separator
		{"para\u2029sep", false, false},              // paragraph separator
		{"hangul\u3164filler", false, false},         // draws nothing
		{"\u2800", false, false},                     // braille blank
		{"tag\U000E0041", false, false},              // tag character (Cf)
		{"emoji\uFE0F.txt", true, true},              // variation selector: allowed
		{"cafe\u0301.txt", true, true},               // combining accent: allowed
		{"\u05E9\u05DC\u05D5\u05DD.txt", true, true}, // Hebrew letters: allowed
	}
	for _, tt := range tests {
		for _, windows := range []bool{false, true} {
			want := tt.ok
			if windows {
				want = tt.okOnWindows
			}
			if err := checkNameOn(tt.name, windows); (err == nil) != want {
				t.Errorf("checkNameOn(%q, windows=%v) = %v, want ok=%v", tt.name, windows, err, want)
			}
		}
	}
}

func TestCheckPath(t *testing.T) {
	tests := []struct {
		path string
		ok   bool
	}{
		{"a", true},
		{"a/b/c.txt", true},
		{"a/.hidden/b", true},
		{"", false},
		{"/etc/passwd", false},
		{"../x", false},
		{"a/../../b", false},
		{"a/./b", false},
		{"a//b", false},
		{"a/", false},
		{"a/b\x00", false},
		{`a\..\b`, false},
		{"a/CON/b", false},
		{"C:/x", false},
		{strings.Repeat("a/", 2048) + "b", false},
		{strings.Repeat("a/", maxPathDepth-1) + "b", true},
		{strings.Repeat("a/", maxPathDepth) + "b", false},
		{"a/\u202Etxt.exe", false},
		{"a/ /b", false},
		{"a/b /c", false},
		{"a/\u00AD", false},
	}
	for _, tt := range tests {
		if err := checkPath(tt.path); (err == nil) != tt.ok {
			t.Errorf("checkPath(%q) = %v, want ok=%v", tt.path, err, tt.ok)
		}
	}
}

func TestNumberedName(t *testing.T) {
	tests := []struct {
		name string
		kind Kind
		want string
	}{
		{"notes.txt", KindFile, "notes (2).txt"},
		{"archive.tar.gz", KindFile, "archive.tar (2).gz"},
		{".bashrc", KindFile, ".bashrc (2)"},
		{"Makefile", KindFile, "Makefile (2)"},
		{"photos.2024", KindDirectory, "photos.2024 (2)"},
	}
	for _, tt := range tests {
		if got := numberedName(tt.name, tt.kind, 2); got != tt.want {
			t.Errorf("numberedName(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestPartialName(t *testing.T) {
	for _, name := range []string{"a", strings.Repeat("é", 127)} {
		got := partialName(name, "0123abcd")
		if len(got) > maxNameLen || !utf8.ValidString(got) || checkName(got) != nil || !strings.HasPrefix(got, ".") {
			t.Errorf("partialName(%d bytes) = %q (%d bytes)", len(name), got, len(got))
		}
	}
}

// FuzzCheckPath: whatever passes the check stays inside the directory it
// is joined to, on every system.
func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "a/../../b", "/etc/passwd", `C:\x`, "a//b", "CON", "a/\x00",
		"a/txt.\u202Eexe", "soft\u00ADhyphen", " ", "a/ b", "a/b ", "x\u200B", "\u3164"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if checkPath(p) != nil {
			return
		}
		if !filepath.IsLocal(filepath.FromSlash(p)) || strings.Contains(p, `\`) || strings.Contains(p, ":") {
			t.Fatalf("checkPath accepted %q", p)
		}
		if strings.Count(p, "/") >= maxPathDepth {
			t.Fatalf("checkPath accepted %q, %d levels deep", p, strings.Count(p, "/")+1)
		}
		for elem := range strings.SplitSeq(p, "/") {
			if elem == "" || elem == "." || elem == ".." {
				t.Fatalf("checkPath accepted %q", p)
			}
			// Nothing invisible, reordering or blank at an end: what
			// the user is shown is what is written.
			if strings.TrimSpace(elem) != elem || strings.TrimFunc(elem, unicode.IsSpace) == "" {
				t.Fatalf("checkPath accepted %q: element %q has blank ends", p, elem)
			}
			for _, r := range elem {
				if unicode.Is(unicode.Cf, r) || unicode.IsControl(r) || (r != ' ' && unicode.IsSpace(r)) {
					t.Fatalf("checkPath accepted %q: element %q has U+%04X", p, elem, r)
				}
			}
		}
	})
}
