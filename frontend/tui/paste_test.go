package tui

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseDroppedPaths(t *testing.T) {
	const home = "/home/me"
	tests := []struct {
		name  string
		paste string
		want  []string
	}{
		// iTerm2 and macOS Terminal: backslash escapes, space-separated.
		{"iTerm2, one file", `/Users/me/report.pdf `, []string{"/Users/me/report.pdf"}},
		{"iTerm2, escaped space", `/Users/me/My\ File.txt`, []string{"/Users/me/My File.txt"}},
		{"macOS Terminal, shell specials", `/Users/me/a\ \(1\)\&\'b\'\$x.txt`, []string{"/Users/me/a (1)&'b'$x.txt"}},
		{"macOS Terminal, several", `/Users/me/a\ b.txt /Users/me/c.txt /Users/me/Dir\ 2 `,
			[]string{"/Users/me/a b.txt", "/Users/me/c.txt", "/Users/me/Dir 2"}},
		{"iTerm2, unicode", `/Users/me/Résumé\ 日本.txt`, []string{"/Users/me/Résumé 日本.txt"}},

		// GNOME Terminal and other VTE terminals: single quotes when needed,
		// space-separated with a trailing space.
		{"GNOME Terminal, quoted", `'/home/me/My File.txt' `, []string{"/home/me/My File.txt"}},
		{"GNOME Terminal, several", `'/home/me/a b.txt' '/home/me/c d.txt' /home/me/plain `,
			[]string{"/home/me/a b.txt", "/home/me/c d.txt", "/home/me/plain"}},
		{"GNOME Terminal, apostrophe", `'/home/me/it'\''s here.txt' `, []string{"/home/me/it's here.txt"}},
		{"GNOME Terminal (older), file URI", "file:///home/me/My%20File.txt\r\n", []string{"/home/me/My File.txt"}},

		// Windows Terminal: double-quoted Windows paths, and /mnt paths in WSL.
		{"Windows Terminal, quoted", `"C:\Users\me\My File.txt"`, []string{`C:\Users\me\My File.txt`}},
		{"Windows Terminal, unquoted", `C:\Users\me\notes.txt`, []string{`C:\Users\me\notes.txt`}},
		{"Windows Terminal, several", `"C:\Users\me\a b.txt" C:\Users\me\c.txt "D:\Dir\"`,
			[]string{`C:\Users\me\a b.txt`, `C:\Users\me\c.txt`, `D:\Dir\`}},
		{"Windows Terminal, UNC", `"\\server\share\My File.txt"`, []string{`\\server\share\My File.txt`}},
		{"Windows Terminal, WSL", `/mnt/c/Users/me/notes.txt`, []string{"/mnt/c/Users/me/notes.txt"}},
		{"Windows Terminal, WSL quoted", `'/mnt/c/Users/me/My File.txt'`, []string{"/mnt/c/Users/me/My File.txt"}},

		// kitty: file URIs or quoted paths, one per line.
		{"kitty, URIs", "file:///home/me/a%20b.txt\nfile:///home/me/c%23d.txt\n",
			[]string{"/home/me/a b.txt", "/home/me/c#d.txt"}},
		{"kitty, URI list with CRLF", "file:///home/me/a.txt\r\nfile:///home/me/b.txt\r\n",
			[]string{"/home/me/a.txt", "/home/me/b.txt"}},
		{"kitty, quoted paths", "'/home/me/a b.txt'\n'/home/me/c.txt'\n", []string{"/home/me/a b.txt", "/home/me/c.txt"}},

		// Konsole: "Paste Location" quotes like a shell; "Paste URL" gives URIs.
		{"Konsole, location", `'/home/me/My File.txt' '/home/me/other.txt'`,
			[]string{"/home/me/My File.txt", "/home/me/other.txt"}},
		{"Konsole, URL with localhost", "file://localhost/home/me/a%20b.txt", []string{"/home/me/a b.txt"}},
		{"Konsole, URL with one slash", "file:/home/me/x.txt", []string{"/home/me/x.txt"}},

		// Alacritty, WezTerm, foot: plain or double-quoted paths.
		{"WezTerm, double quotes", `"/home/me/a b.txt" "/home/me/\"q\".txt"`, []string{"/home/me/a b.txt", `/home/me/"q".txt`}},
		{"double quotes keep other backslashes", `"/home/me/a\b.txt"`, []string{`/home/me/a\b.txt`}},

		// Any terminal with bracketed paste left on the content.
		{"bracketed paste", "\x1b[200~/home/me/a\\ b.txt \x1b[201~", []string{"/home/me/a b.txt"}},
		{"windows file URI", "file:///C:/Users/me/My%20File.txt", []string{"C:/Users/me/My File.txt"}},

		// Typed by hand.
		{"tilde", `~/notes.txt ~`, []string{"/home/me/notes.txt", "/home/me"}},
		{"nothing", " \r\n\t", nil},
		{"mixed spaces and newlines", "/a \n /b\r\n\t/c", []string{"/a", "/b", "/c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseDroppedPaths(tt.paste, home)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, %v\nwant %q", got, err, tt.want)
			}
		})
	}
}

func TestParseDroppedPathsRejects(t *testing.T) {
	tests := map[string]string{
		"prose":                  "hello world",
		"relative path":          "notes.txt",
		"unterminated single":    `'/home/me/a b`,
		"unterminated double":    `"/home/me/a b`,
		"trailing backslash":     `/home/me/a\`,
		"remote URI":             "file://otherhost/home/me/a.txt",
		"http URL":               "https://example.com/a.txt",
		"bad percent escape":     "file:///home/me/%zz",
		"NUL from a URI":         "file:///home/me/a%00b",
		"escape sequence":        "/home/me/\x1b]0;title\x07",
		"one good, one relative": "/home/me/a.txt b.txt",
		"quoted tilde":           `'~/x'`,
		"tilde user":             "~bob/x",
	}
	for name, paste := range tests {
		t.Run(name, func(t *testing.T) {
			if got, err := ParseDroppedPaths(paste, "/home/me"); !errors.Is(err, ErrNotPaths) {
				t.Fatalf("got %q, %v; want ErrNotPaths", got, err)
			}
		})
	}
}

func TestParseDroppedPathsWithoutHome(t *testing.T) {
	if got, err := ParseDroppedPaths("~/x", ""); !errors.Is(err, ErrNotPaths) {
		t.Fatalf("got %q, %v; want ErrNotPaths", got, err)
	}
}

// FuzzParseDroppedPaths: any paste gives paths or an error, never a
// panic, and every path is absolute and free of control characters.
func FuzzParseDroppedPaths(f *testing.F) {
	for _, s := range []string{
		`/Users/me/My\ File.txt /b`,
		`'/home/me/it'\''s' `,
		`"C:\Users\me\My File.txt"`,
		"file:///home/me/a%20b\r\nfile://localhost/c\n",
		"\x1b[200~~/x\x1b[201~",
		`"/a\"b" \\srv\s`,
		`'unterminated`,
	} {
		f.Add(s, "/home/me")
	}
	f.Fuzz(func(t *testing.T, paste, home string) {
		paths, err := ParseDroppedPaths(paste, home)
		if err != nil {
			if !errors.Is(err, ErrNotPaths) {
				t.Fatalf("error %v does not wrap ErrNotPaths", err)
			}
			return
		}
		for _, p := range paths {
			if p == "" || strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("ParseDroppedPaths(%q) gave %q", paste, p)
			}
			// Only a percent escape may make bytes that are not UTF-8.
			if utf8.ValidString(paste) && utf8.ValidString(home) && !strings.Contains(paste, "%") && !utf8.ValidString(p) {
				t.Fatalf("ParseDroppedPaths(%q) gave invalid UTF-8 %q", paste, p)
			}
		}
	})
}
