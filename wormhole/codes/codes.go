// Package codes makes, checks and completes Magic Wormhole codes.
//
// A code looks like "7-guitarist-revenge": a decimal nameplate, which names
// the channel on the mailbox server, then words joined by '-'. Generated
// codes use the PGP word list (see [assets.PGPWords]), alternating between
// its two halves so that a dropped or swapped word can be noticed: the first
// word comes from the "odd" list, the second from the "even" list, and so
// on. The whole code, exactly as typed, is the password for SPAKE2, so two
// codes that differ only in case do not match.
//
// This follows the reference implementation (magic-wormhole's _wordlist.py,
// _code.py, _input.py and _rlcompleter.py). Where it differs, the doc
// comment says so.
package codes

import (
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gander-pair/gander/assets"
)

// DefaultLength is the number of words after the nameplate in a generated
// code, as in the reference's --code-length default.
const DefaultLength = 2

// wordList is one half of the PGP word list.
type wordList struct {
	words [256]string    // by byte value, lowercased
	index map[string]int // lowercased word to byte value
}

// evenWords and oddWords are the two halves of the PGP word list: even
// words have two syllables ("aardvark"), odd words three ("adroitness").
var evenWords, oddWords = parseWordList(assets.PGPWords)

// parseWordList reads the "HH even odd" lines of the embedded list. The file
// is fixed at build time, so a malformed one is a programming error.
func parseWordList(text string) (even, odd *wordList) {
	even = &wordList{index: make(map[string]int, 256)}
	odd = &wordList{index: make(map[string]int, 256)}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 256 {
		panic(fmt.Sprintf("codes: PGP word list has %d lines, want 256", len(lines)))
	}
	for i, line := range lines {
		f := strings.Split(line, " ")
		if len(f) != 3 || f[0] != fmt.Sprintf("%02X", i) {
			panic(fmt.Sprintf("codes: PGP word list line %d is malformed: %q", i+1, line))
		}
		for _, p := range []struct {
			l *wordList
			w string
		}{{even, f[1]}, {odd, f[2]}} {
			w := strings.ToLower(p.w)
			if w == "" || strings.ContainsAny(w, "- \t") {
				panic(fmt.Sprintf("codes: PGP word list line %d has a bad word: %q", i+1, line))
			}
			if _, dup := p.l.index[w]; dup {
				panic(fmt.Sprintf("codes: PGP word list repeats %q", w))
			}
			p.l.words[i] = w
			p.l.index[w] = i
		}
	}
	return even, odd
}

// listFor returns the word list for word number pos (0-based, counting
// after the nameplate), and the other list. The reference starts with an
// odd word: even positions take odd words, odd positions even words.
func listFor(pos int) (right, other *wordList) {
	if pos%2 == 0 {
		return oddWords, evenWords
	}
	return evenWords, oddWords
}

// Generate returns nameplate + "-" + length words, word i drawn from one
// byte read from random: for even i from the odd list, for odd i from the
// even list (the reference rule; the upstream test has the bytes 0x04, 0x10
// give "alkali-assume"). Words are lowercase. A nil random means
// crypto/rand. The nameplate must be a decimal number and length at least 1.
func Generate(random io.Reader, nameplate string, length int) (string, error) {
	if !validNameplate(nameplate) {
		return "", fmt.Errorf("codes: nameplate %q is not a decimal number", nameplate)
	}
	if length < 1 {
		return "", fmt.Errorf("codes: code length %d: a code needs at least one word", length)
	}
	if random == nil {
		random = rand.Reader
	}
	buf := make([]byte, length)
	if _, err := io.ReadFull(random, buf); err != nil {
		return "", fmt.Errorf("codes: reading random bytes: %w", err)
	}
	var b strings.Builder
	b.WriteString(nameplate)
	for i, c := range buf {
		right, _ := listFor(i)
		b.WriteByte('-')
		b.WriteString(right.words[c])
	}
	return b.String(), nil
}

// validNameplate reports whether s is a non-empty string of ASCII digits.
func validNameplate(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Parse validates a code typed or pasted by a person and returns it
// normalised: surrounding whitespace is trimmed, and nothing else changes
// (case matters to the peer, so it is kept). The nameplate, before the
// first '-', must be ASCII digits; at least one word must follow; words must
// not be empty ("4--x", "4-x-") and the code must not contain whitespace,
// control or invisible formatting characters, or invalid UTF-8. Words need
// not be on the PGP list; see [CheckWords]. Errors are *[Error].
//
// The reference (validate_code) is looser: it rejects only ' ', accepts any
// Unicode digit in the nameplate, and accepts "4", "4-" and "4--x". Its
// zero mode (-0) uses the literal code "0-", which Parse rejects; callers
// that implement zero mode should use "0-" directly, not through Parse.
func Parse(s string) (string, error) {
	code := strings.TrimSpace(s)
	if code == "" {
		return "", &Error{Kind: Empty, Code: code}
	}
	for i, r := range code {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(code[i:], "\uFFFD"):
			return "", &Error{Kind: InvalidText, Code: code, Char: r}
		case unicode.IsSpace(r):
			return "", &Error{Kind: InnerSpace, Code: code, Char: r}
		case unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r):
			return "", &Error{Kind: InvalidText, Code: code, Char: r}
		}
	}
	nameplate, words, found := strings.Cut(code, "-")
	switch {
	case nameplate == "":
		return "", &Error{Kind: MissingNameplate, Code: code}
	case !validNameplate(nameplate):
		return "", &Error{Kind: BadNameplate, Code: code}
	case !found || words == "":
		return "", &Error{Kind: MissingWords, Code: code}
	}
	for _, w := range strings.Split(words, "-") {
		if w == "" {
			return "", &Error{Kind: EmptyWord, Code: code}
		}
	}
	return code, nil
}

// Nameplate returns the part of code before the first '-' (all of it if
// there is no '-').
func Nameplate(code string) string {
	nameplate, _, _ := strings.Cut(code, "-")
	return nameplate
}

// ErrorKind says what is wrong with a code rejected by [Parse].
type ErrorKind int

const (
	// Empty: nothing but whitespace was given.
	Empty ErrorKind = iota + 1
	// InvalidText: the code is not valid UTF-8, or holds a control or
	// invisible formatting character (Unicode Cc or Cf, such as U+200B or
	// a byte-order mark); Error.Char has it (U+FFFD for invalid UTF-8).
	InvalidText
	// InnerSpace: whitespace inside the code; Error.Char has it.
	InnerSpace
	// MissingNameplate: the code starts with '-'.
	MissingNameplate
	// BadNameplate: the text before the first '-' (or the whole code, if it
	// has none) is not all ASCII digits.
	BadNameplate
	// MissingWords: nothing follows the nameplate ("7" or "7-").
	MissingWords
	// EmptyWord: two '-' in a row, or a '-' at the end ("7--x", "7-x-").
	EmptyWord
)

var kindNames = [...]string{
	Empty:            "Empty",
	InvalidText:      "InvalidText",
	InnerSpace:       "InnerSpace",
	MissingNameplate: "MissingNameplate",
	BadNameplate:     "BadNameplate",
	MissingWords:     "MissingWords",
	EmptyWord:        "EmptyWord",
}

func (k ErrorKind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("ErrorKind(%d)", int(k))
}

// Error is the error [Parse] returns for a malformed code.
type Error struct {
	Kind ErrorKind
	Code string // the input, surrounding whitespace trimmed
	Char rune   // for InnerSpace and InvalidText, the offending character
}

// example is the code shown in error messages.
const example = "7-guitarist-revenge"

// Error returns a message for the person who typed the code, quoting it
// (shortened if long, with unprintable characters escaped).
func (e *Error) Error() string {
	if e.Kind == Empty {
		return "no wormhole code given: a code looks like " + example
	}
	q := quoteShort(e.Code)
	switch e.Kind {
	case InvalidText:
		if e.Char == utf8.RuneError {
			return fmt.Sprintf("wormhole code %s is not valid UTF-8 text", q)
		}
		return fmt.Sprintf("wormhole code %s contains an invisible or control character (%U); retype it by hand", q, e.Char)
	case InnerSpace:
		what := "a space"
		if e.Char != ' ' {
			what = fmt.Sprintf("whitespace (%U)", e.Char)
		}
		return fmt.Sprintf("wormhole code %s contains %s; words are joined by '-', like %s", q, what, example)
	case MissingNameplate, BadNameplate:
		return fmt.Sprintf("wormhole code %s needs a numeric nameplate before the first '-', like %s", q, example)
	case MissingWords:
		return fmt.Sprintf("wormhole code %s needs words after the nameplate, like %s", q, example)
	case EmptyWord:
		return fmt.Sprintf("wormhole code %s has an empty word: a '-' is doubled or at the end", q)
	}
	return fmt.Sprintf("wormhole code %s is malformed (%v)", q, e.Kind)
}

// quoteShort quotes s with %q, keeping at most 64 runes of it.
func quoteShort(s string) string {
	const max = 64
	if utf8.RuneCountInString(s) <= max {
		return fmt.Sprintf("%q", s)
	}
	n := 0
	for i := range s {
		if n == max {
			return fmt.Sprintf("%q…", s[:i])
		}
		n++
	}
	return fmt.Sprintf("%q", s)
}
