package codes

import (
	"bytes"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func TestWordList(t *testing.T) {
	// Spot checks from the reference's _wordlist.py.
	for _, c := range []struct {
		b         byte
		even, odd string
	}{
		{0x00, "aardvark", "adroitness"},
		{0x04, "adrift", "alkali"},
		{0x09, "algol", "applicant"},
		{0x10, "assume", "autopsy"},
		{0x80, "merit", "intention"},
		{0xFF, "zulu", "yucatan"},
	} {
		if got := evenWords.words[c.b]; got != c.even {
			t.Errorf("even[%#02x] = %q, want %q", c.b, got, c.even)
		}
		if got := oddWords.words[c.b]; got != c.odd {
			t.Errorf("odd[%#02x] = %q, want %q", c.b, got, c.odd)
		}
	}
	for _, l := range []*wordList{evenWords, oddWords} {
		if len(l.index) != 256 {
			t.Errorf("list has %d distinct words, want 256", len(l.index))
		}
		for i, w := range l.words {
			if l.index[w] != i || w != strings.ToLower(w) {
				t.Errorf("word %d %q: index %d", i, w, l.index[w])
			}
		}
	}
	for w := range evenWords.index {
		if _, ok := oddWords.index[w]; ok {
			t.Errorf("%q is on both lists", w)
		}
	}
}

func TestGenerate(t *testing.T) {
	for _, c := range []struct {
		nameplate string
		length    int
		random    []byte
		want      string
	}{
		// Upstream test_wordlist.py: os.urandom gives 0x04 then 0x10.
		{"4", 2, []byte{0x04, 0x10}, "4-alkali-assume"},
		{"1", 1, []byte{0x00}, "1-adroitness"},
		{"123", 3, []byte{0x00, 0x00, 0x00}, "123-adroitness-aardvark-adroitness"},
		{"7", 4, []byte{0xFF, 0xFF, 0x80, 0x80}, "7-yucatan-zulu-intention-merit"},
		{"0", 2, []byte{0x09, 0x0A}, "0-applicant-allow"}, // Algol/Apollo columns lowercased elsewhere
		{"42", 2, []byte{0x0A, 0x09}, "42-apollo-algol"},
		{"5", 2, []byte{0x04, 0x10, 0x99}, "5-alkali-assume"}, // reads only what it needs
	} {
		got, err := Generate(bytes.NewReader(c.random), c.nameplate, c.length)
		if err != nil || got != c.want {
			t.Errorf("Generate(%x, %q, %d) = %q, %v; want %q", c.random, c.nameplate, c.length, got, err, c.want)
		}
	}
}

func TestGenerateErrors(t *testing.T) {
	for _, c := range []struct {
		name      string
		r         func() *bytes.Reader
		nameplate string
		length    int
	}{
		{"empty nameplate", nil, "", 2},
		{"letters", nil, "4a", 2},
		{"unicode digit", nil, "٤", 2},
		{"zero length", nil, "4", 0},
		{"negative length", nil, "4", -1},
		{"short random", func() *bytes.Reader { return bytes.NewReader([]byte{1}) }, "4", 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := bytes.NewReader(make([]byte, 8))
			if c.r != nil {
				r = c.r()
			}
			if got, err := Generate(r, c.nameplate, c.length); err == nil {
				t.Errorf("Generate = %q, want error", got)
			}
		})
	}
	if _, err := Generate(iotest.ErrReader(errors.New("boom")), "4", 2); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("reader error not passed on: %v", err)
	}
}

func TestGenerateRoundTrip(t *testing.T) {
	for i := 0; i < 500; i++ {
		length := 1 + i%5
		code, err := Generate(nil, "17", length)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Parse(code); err != nil || got != code {
			t.Fatalf("Parse(%q) = %q, %v", code, got, err)
		}
		if err := CheckWords(code); err != nil {
			t.Fatalf("CheckWords(%q) = %v", code, err)
		}
		if n := strings.Count(code, "-"); n != length {
			t.Fatalf("%q has %d words, want %d", code, n, length)
		}
		// Typing any prefix of the code offers a completion leading to it.
		for j := 1; j <= len(code); j++ {
			typed := code[:j]
			found := false
			for _, c := range Complete([]string{"17", "3"}, typed, length) {
				if strings.HasPrefix(code, c) || c == code {
					found = true
				}
			}
			if !found {
				t.Fatalf("Complete(%q) has nothing leading to %q", typed, code)
			}
		}
	}
}

func TestParse(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"4-alkali-assume", "4-alkali-assume"},
		{"  4-alkali-assume\n", "4-alkali-assume"},
		{"\t7-guitarist-revenge\r\n", "7-guitarist-revenge"},
		{"\u00a04-x\u3000", "4-x"},             // Unicode spaces trimmed too
		{"4-Alkali-ASSUME", "4-Alkali-ASSUME"}, // case kept: it matters to the peer
		{"123-purple-elephant", "123-purple-elephant"},
		{"1-abc", "1-abc"},
		{"0-x", "0-x"},
		{"007-bond", "007-bond"},
		{"4-one-two-three-four-five", "4-one-two-three-four-five"},
		{"4-ünïcödé-日本語", "4-ünïcödé-日本語"},
		{"4-\uFFFD", "4-\uFFFD"}, // a real U+FFFD is valid text
		{"4-a_b.c!", "4-a_b.c!"},
	} {
		got, err := Parse(c.in)
		if err != nil || got != c.want {
			t.Errorf("Parse(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		in   string
		kind ErrorKind
		char rune
	}{
		{"", Empty, 0},
		{" \t\n", Empty, 0},
		{"4-alkali assume", InnerSpace, ' '},
		{"4 -alkali", InnerSpace, ' '},
		{"4-alkali\tassume", InnerSpace, '\t'},
		{"4-alkali\u00a0assume", InnerSpace, '\u00a0'},
		{"4-alkali\x00", InvalidText, 0},
		{"4-alkali\x1b[31m", InvalidText, 0x1b},
		{"4-al\u200bkali", InvalidText, '\u200b'},
		{"\ufeff4-alkali", InvalidText, '\ufeff'},
		{"4-alk\u202eali", InvalidText, '\u202e'},
		{"4-alkali\xff", InvalidText, '\uFFFD'},
		{"-alkali-assume", MissingNameplate, 0},
		{"-", MissingNameplate, 0},
		{"alkali-assume", BadNameplate, 0},
		{"alkali", BadNameplate, 0},
		{"4a-alkali", BadNameplate, 0},
		{"+4-alkali", BadNameplate, 0},
		{"٤-alkali", BadNameplate, 0}, // Arabic-Indic digit: the reference accepts it
		{"４-alkali", BadNameplate, 0}, // fullwidth digit
		{"4", MissingWords, 0},
		{"4-", MissingWords, 0},
		{"0-", MissingWords, 0}, // the reference's zero-mode code
		{"4--x", EmptyWord, 0},
		{"4-x-", EmptyWord, 0},
		{"4-x--y", EmptyWord, 0},
		{"4---", EmptyWord, 0},
	} {
		got, err := Parse(c.in)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Parse(%q) = %q, %v; want *Error", c.in, got, err)
			continue
		}
		if got != "" || e.Kind != c.kind || e.Char != c.char {
			t.Errorf("Parse(%q) = %q, {%v %q %U}; want {%v %U}", c.in, got, e.Kind, e.Code, e.Char, c.kind, c.char)
		}
		if e.Code != strings.TrimSpace(c.in) {
			t.Errorf("Parse(%q): Code = %q", c.in, e.Code)
		}
		msg := e.Error()
		if strings.ContainsAny(msg, "\x00\x1b\u200b\ufeff\u202e\t\n") || !strings.Contains(msg, "code") {
			t.Errorf("Parse(%q): message %q", c.in, msg)
		}
	}
}

func TestErrorMessages(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "no wormhole code given: a code looks like 7-guitarist-revenge"},
		{"guitarist-revenge", `wormhole code "guitarist-revenge" needs a numeric nameplate before the first '-', like 7-guitarist-revenge`},
		{"7", `wormhole code "7" needs words after the nameplate, like 7-guitarist-revenge`},
		{"7-a b", `wormhole code "7-a b" contains a space; words are joined by '-', like 7-guitarist-revenge`},
		{"7-a\tb", `wormhole code "7-a\tb" contains whitespace (U+0009); words are joined by '-', like 7-guitarist-revenge`},
		{"7--b", `wormhole code "7--b" has an empty word: a '-' is doubled or at the end`},
		{"7-\u200b", `wormhole code "7-\u200b" contains an invisible or control character (U+200B); retype it by hand`},
		{"7-\xff", `wormhole code "7-\xff" is not valid UTF-8 text`},
		{strings.Repeat("x", 100), `wormhole code "` + strings.Repeat("x", 64) + `"… needs a numeric nameplate before the first '-', like 7-guitarist-revenge`},
	} {
		_, err := Parse(c.in)
		if err == nil || err.Error() != c.want {
			t.Errorf("Parse(%q) error:\n got %v\nwant %s", c.in, err, c.want)
		}
	}
	if s := ErrorKind(99).String(); s != "ErrorKind(99)" {
		t.Errorf("ErrorKind(99) = %q", s)
	}
	if s := EmptyWord.String(); s != "EmptyWord" {
		t.Errorf("EmptyWord = %q", s)
	}
}

func TestNameplate(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"4-alkali-assume", "4"},
		{"123-x", "123"},
		{"123", "123"},
		{"-x", ""},
		{"", ""},
	} {
		if got := Nameplate(c.in); got != c.want {
			t.Errorf("Nameplate(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCheckWords(t *testing.T) {
	for _, c := range []struct {
		code  string
		want  *UnknownWordError // nil: no error
		first string            // if set, only check the first suggestion
	}{
		{code: "4-alkali-assume"},
		{code: "4-adroitness-aardvark-yucatan-zulu"},
		{code: "4"},
		{code: "4-"},
		{code: "4--aardvark"}, // empty word skipped, "aardvark" at position 1 is fine
		{code: "4-alkalai-assume", want: &UnknownWordError{Word: "alkalai", Position: 0, Suggestions: []string{"alkali"}}},
		{code: "4-alkali-asume", want: &UnknownWordError{Word: "asume", Position: 1, Suggestions: []string{"assume"}}},
		{code: "4-alkali-asusme", want: &UnknownWordError{Word: "asusme", Position: 1, Suggestions: []string{"assume"}}},
		{code: "4-akladi-assume", first: "alkali", want: &UnknownWordError{Word: "akladi", Position: 0}},
		{code: "4-Alkali-assume", want: &UnknownWordError{Word: "Alkali", Position: 0, Suggestions: []string{"alkali"}}},
		{code: "4-alkali-ASSUME", want: &UnknownWordError{Word: "ASSUME", Position: 1, Suggestions: []string{"assume"}}},
		{code: "4-armis-x", want: &UnknownWordError{Word: "armis", Position: 0, Suggestions: []string{"armistice"}}},
		{code: "4-alkali-assume-ardvark", want: &UnknownWordError{Word: "ardvark", Position: 2, OtherList: false, Suggestions: []string{"aardvark"}}},
		// Swapped words: each is on the other list.
		{code: "4-assume-alkali", want: &UnknownWordError{Word: "assume", Position: 0, OtherList: true}},
		// Dropped word: "assume" now sits in the first position.
		{code: "4-assume", want: &UnknownWordError{Word: "assume", Position: 0, OtherList: true}},
		{code: "4-purple-elephant", want: &UnknownWordError{Word: "purple", Position: 0}},
		{code: "4-zzzzzzzzzz", want: &UnknownWordError{Word: "zzzzzzzzzz", Position: 0}},
		{code: "4-ü-x", want: &UnknownWordError{Word: "ü", Position: 0}},
	} {
		err := CheckWords(c.code)
		if c.want == nil {
			if err != nil {
				t.Errorf("CheckWords(%q) = %v, want nil", c.code, err)
			}
			continue
		}
		var u *UnknownWordError
		if !errors.As(err, &u) {
			t.Errorf("CheckWords(%q) = %v, want *UnknownWordError", c.code, err)
			continue
		}
		if u.Word != c.want.Word || u.Position != c.want.Position || u.OtherList != c.want.OtherList {
			t.Errorf("CheckWords(%q) = %+v, want %+v", c.code, u, c.want)
		}
		if c.first != "" {
			if len(u.Suggestions) == 0 || u.Suggestions[0] != c.first {
				t.Errorf("CheckWords(%q) suggests %q, want %q first", c.code, u.Suggestions, c.first)
			}
		} else if !slices.Equal(u.Suggestions, c.want.Suggestions) {
			t.Errorf("CheckWords(%q) suggests %q, want %q", c.code, u.Suggestions, c.want.Suggestions)
		}
		if len(u.Suggestions) > 3 {
			t.Errorf("CheckWords(%q): %d suggestions", c.code, len(u.Suggestions))
		}
	}
}

func TestSuggestionsLimitAndOrder(t *testing.T) {
	// "ba" words at position 1 (even list) abound; a short typo gets at most
	// three, the list for the position first.
	err := CheckWords("4-alkali-banjp")
	var u *UnknownWordError
	if !errors.As(err, &u) || len(u.Suggestions) == 0 || u.Suggestions[0] != "banjo" || len(u.Suggestions) > 3 {
		t.Fatalf("CheckWords = %#v", err)
	}
	// A typo of a word from the other list is still offered, after any
	// from the right list: "autopsi" is one edit from odd "autopsy", and
	// at position 1 only even words fit.
	err = CheckWords("4-alkali-autopsi")
	if !errors.As(err, &u) || !slices.Contains(u.Suggestions, "autopsy") {
		t.Fatalf("CheckWords = %#v", err)
	}
	for _, s := range u.Suggestions {
		if _, ok := evenWords.index[s]; !ok && s != "autopsy" {
			t.Errorf("unexpected suggestion %q", s)
		}
	}
}

func TestUnknownWordErrorMessage(t *testing.T) {
	for _, c := range []struct {
		e    UnknownWordError
		want string
	}{
		{UnknownWordError{Word: "asume", Position: 1, Suggestions: []string{"assume"}},
			`word 2 of the wormhole code, "asume", is not in the word list; did you mean "assume"?`},
		{UnknownWordError{Word: "x", Position: 0},
			`word 1 of the wormhole code, "x", is not in the word list`},
		{UnknownWordError{Word: "ab", Position: 0, Suggestions: []string{"a", "b", "c"}},
			`word 1 of the wormhole code, "ab", is not in the word list; did you mean "a", "b" or "c"?`},
		{UnknownWordError{Word: "assume", Position: 0, OtherList: true},
			`word 1 of the wormhole code, "assume", belongs in another position: is a word missing or swapped?`},
	} {
		if got := c.e.Error(); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}

func TestComplete(t *testing.T) {
	nameplates := []string{"12", "1", "123", "7", "12", "abc", "", "٤"}
	for _, c := range []struct {
		name   string
		typed  string
		length int
		want   []string // nil: expect none
	}{
		{"all nameplates", "", 2, []string{"1-", "12-", "123-", "7-"}},
		{"nameplate prefix", "1", 2, []string{"1-", "12-", "123-"}},
		{"nameplate exact", "12", 2, []string{"12-", "123-"}},
		{"unknown nameplate", "9", 2, nil},
		{"non-digit nameplate", "a", 2, nil},
		{"first word, odd list", "12-ar", 2, []string{"12-armistice-", "12-article-"}},
		{"first word narrowed", "12-armis", 2, []string{"12-armistice-"}},
		{"first word complete", "12-armistice", 2, []string{"12-armistice-"}},
		{"second word, even list", "12-armistice-ba", 2, []string{"12-armistice-baboon", "12-armistice-backfield", "12-armistice-backward", "12-armistice-banjo"}},
		{"second word, longer code", "12-armistice-ba", 3, []string{"12-armistice-baboon-", "12-armistice-backfield-", "12-armistice-backward-", "12-armistice-banjo-"}},
		{"last word done", "12-armistice-baboon", 2, []string{"12-armistice-baboon"}},
		{"middle word done", "12-armistice-baboon", 3, []string{"12-armistice-baboon-"}},
		{"length 4", "12-armistice-baboon", 4, []string{"12-armistice-baboon-"}},
		{"third word, odd list, last", "12-armistice-baboon-arm", 3, []string{"12-armistice-baboon-armistice"}},
		{"beyond length", "12-armistice-baboon-arm", 2, []string{"12-armistice-baboon-armistice"}},
		{"default length", "12-armistice-ba", 0, []string{"12-armistice-baboon", "12-armistice-backfield", "12-armistice-backward", "12-armistice-banjo"}},
		{"nameplate not on server list", "99-alka", 2, []string{"99-alkali-"}},
		{"upper-case prefix", "12-AR", 2, []string{"12-armistice-", "12-article-"}},
		{"mixed case", "12-ArMiS", 2, []string{"12-armistice-"}},
		{"earlier words kept as typed", "12-ARMISTICE-bab", 2, []string{"12-ARMISTICE-baboon"}},
		{"even word in odd position", "12-baboon", 2, nil},
		{"odd word in even position", "12-armistice-armis", 2, nil},
		{"no match", "12-qqq", 2, nil},
		{"non-ASCII prefix", "12-ärm", 2, nil},
		{"Kelvin sign is not k", "12-\u212a", 2, nil},
		{"space", "12-ar ", 2, nil},
		{"bad nameplate", "x-ar", 2, nil},
		{"empty nameplate", "-ar", 2, nil},
		{"leading space", " 12-ar", 2, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := Complete(nameplates, c.typed, c.length)
			if !slices.Equal(got, c.want) {
				t.Errorf("Complete(%q, %d) = %q, want %q", c.typed, c.length, got, c.want)
			}
		})
	}
}

func TestCompleteWholeLists(t *testing.T) {
	// After "N-" every odd word is offered; after "N-x-" every even word
	// (upstream: gc("armistice-", 2) has 256 entries).
	first := Complete(nil, "5-", 2)
	second := Complete(nil, "5-armistice-", 2)
	if len(first) != 256 || len(second) != 256 {
		t.Fatalf("got %d and %d completions, want 256 each", len(first), len(second))
	}
	if !slices.IsSorted(first) || !slices.IsSorted(second) {
		t.Error("not sorted")
	}
	for _, c := range first {
		w := strings.TrimSuffix(strings.TrimPrefix(c, "5-"), "-")
		if _, ok := oddWords.index[w]; !ok || !strings.HasSuffix(c, "-") {
			t.Errorf("first-word completion %q", c)
		}
	}
	for _, c := range second {
		w := strings.TrimPrefix(c, "5-armistice-")
		if _, ok := evenWords.index[w]; !ok {
			t.Errorf("second-word completion %q", c)
		}
	}
	if got := Complete(nil, "", 2); len(got) != 0 {
		t.Errorf("no nameplates: %q", got)
	}
}

func TestCompleteRandomPrefixes(t *testing.T) {
	// Every completion starts with what was typed, ignoring case.
	buf := make([]byte, 64)
	for i := 0; i < 200; i++ {
		rand.Read(buf)
		code, _ := Generate(bytes.NewReader(buf), "3", 4)
		typed := strings.ToUpper(code[:1+int(buf[63])%len(code)])
		for _, c := range Complete([]string{"3", "30", "4"}, typed, 4) {
			if !strings.EqualFold(c[:len(typed)], typed) {
				t.Fatalf("Complete(%q) gave %q", typed, c)
			}
		}
	}
}
