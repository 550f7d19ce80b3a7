package codes

import (
	"errors"
	"strings"
	"testing"
	"unicode"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"4-alkali-assume", " 7-guitarist-revenge\n", "", "-", "4", "4-", "0-",
		"4--x", "4-x-", "x-y", "4-a b", "4-a\tb", "\ufeff4-x", "4-\u200b",
		"4-\xff", "٤-x", "4-ünïcödé", "123-purple-elephant-x-y-z", "\u00a04-x\u3000",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, err := Parse(s)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || code != "" {
				t.Fatalf("Parse(%q) = %q, %v (%T)", s, code, err, err)
			}
			_ = e.Error()
			return
		}
		if code != strings.TrimSpace(s) {
			t.Fatalf("Parse(%q) = %q: changed more than surrounding space", s, code)
		}
		if again, err := Parse(code); err != nil || again != code {
			t.Fatalf("Parse(Parse(%q)) = %q, %v; want %q", s, again, err, code)
		}
		if strings.IndexFunc(code, unicode.IsSpace) >= 0 {
			t.Fatalf("Parse(%q) = %q contains whitespace", s, code)
		}
		if n := Nameplate(code); n == "" || strings.Trim(n, "0123456789") != "" {
			t.Fatalf("Parse(%q) = %q: bad nameplate %q", s, code, n)
		}
		// CheckWords never panics, and only returns its own error type.
		if err := CheckWords(code); err != nil {
			var u *UnknownWordError
			if !errors.As(err, &u) || len(u.Suggestions) > 3 {
				t.Fatalf("CheckWords(%q) = %v", code, err)
			}
			_ = u.Error()
		}
	})
}

func FuzzComplete(f *testing.F) {
	for _, s := range []struct {
		typed  string
		length int
	}{
		{"", 2}, {"1", 2}, {"12-", 2}, {"12-ar", 2}, {"12-AR", 3},
		{"12-armistice-ba", 2}, {"12-armistice-baboon-", 2}, {"12-\u212a", 2},
		{"x-a", 2}, {"12--", 0}, {"12-ärm", 2}, {" 1", -5},
	} {
		f.Add(s.typed, s.length)
	}
	nameplates := []string{"1", "12", "123", "7", "abc", "", "1-"}
	f.Fuzz(func(t *testing.T, typed string, length int) {
		for _, c := range Complete(nameplates, typed, length) {
			if len(c) < len(typed) || !strings.EqualFold(c[:len(typed)], typed) {
				t.Fatalf("Complete(%q, %d) gave %q", typed, length, c)
			}
		}
	})
}
