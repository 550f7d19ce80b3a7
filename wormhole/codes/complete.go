package codes

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Complete returns the full-text completions for what a person has typed so
// far, as a code-entry widget needs them, sorted and without repeats.
//
// With no '-' typed yet, they are the nameplates from the server's list
// that start with typed, each followed by "-" (nameplates that are not
// decimal numbers are ignored). After the nameplate, they are typed with its
// last, partial word replaced by each word that starts with it (ignoring
// ASCII case) from the list for that position: the odd list after an even
// number of '-' following the nameplate, the even list after an odd number.
// A '-' is appended unless the word is at position length-1 or later (the
// last word); length < 1 means DefaultLength. Nothing is offered if the
// nameplate typed is not a decimal number.
//
// This matches the reference (_input.py's nameplate completions and
// PGPWordList.get_completions, joined as _rlcompleter.py does), except that
// the reference matches case-sensitively, offers non-numeric nameplates
// from the server, and, when receiving, always completes as if length were
// 2. Like the reference, words are still offered past the last position
// (without a '-'), since the receiver may not know the code's length; and
// earlier words are kept as typed, even if they are not on the list.
func Complete(nameplates []string, typed string, length int) []string {
	if length < 1 {
		length = DefaultLength
	}
	var out []string
	nameplate, words, found := strings.Cut(typed, "-")
	if !found {
		for _, n := range nameplates {
			if validNameplate(n) && strings.HasPrefix(n, typed) {
				out = append(out, n+"-")
			}
		}
	} else if validNameplate(nameplate) {
		pos := strings.Count(words, "-")
		partial := words[strings.LastIndexByte(words, '-')+1:]
		head := typed[:len(typed)-len(partial)]
		lp, ok := asciiLower(partial)
		if !ok {
			return nil
		}
		right, _ := listFor(pos)
		suffix := ""
		if pos+1 < length {
			suffix = "-"
		}
		for _, w := range right.words {
			if strings.HasPrefix(w, lp) {
				out = append(out, head+w+suffix)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// asciiLower lowercases s, reporting false if it is not all ASCII (no word
// on the list can then match it).
func asciiLower(s string) (string, bool) {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= utf8.RuneSelf:
			return "", false
		case 'A' <= c && c <= 'Z':
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b), true
}

// UnknownWordError is what [CheckWords] reports for a word not on the PGP
// list for its position.
type UnknownWordError struct {
	Word     string // as typed
	Position int    // 0 for the first word after the nameplate
	// OtherList is true if Word is a PGP word (ignoring case) but from the
	// list for the other positions: a word was probably dropped, added or
	// swapped.
	OtherList bool
	// Suggestions holds up to 3 words close to Word, best first: first
	// from the list for this position, then any from the other list.
	Suggestions []string
}

func (e *UnknownWordError) Error() string {
	var b strings.Builder
	if e.OtherList {
		fmt.Fprintf(&b, "word %d of the wormhole code, %s, belongs in another position: is a word missing or swapped?", e.Position+1, quoteShort(e.Word))
	} else {
		fmt.Fprintf(&b, "word %d of the wormhole code, %s, is not in the word list", e.Position+1, quoteShort(e.Word))
	}
	for i, s := range e.Suggestions {
		switch {
		case i == 0:
			b.WriteString("; did you mean ")
		case i == len(e.Suggestions)-1:
			b.WriteString(" or ")
		default:
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%q", s)
	}
	if len(e.Suggestions) > 0 {
		b.WriteString("?")
	}
	return b.String()
}

// CheckWords reports the first word of code (after the nameplate) that is
// not on the PGP list for its position, as an *[UnknownWordError], or nil if
// every word is. The check is case-sensitive, because generated codes are
// lowercase and the peer compares the code exactly: "Alkali" is reported,
// with "alkali" suggested. Empty words are skipped (see [Parse]).
//
// A code with other words is still a valid code: people may agree a code
// offline, and the reference's "wormhole send --code" accepts any. Use this
// for hints, not for rejecting codes.
func CheckWords(code string) error {
	_, words, found := strings.Cut(code, "-")
	if !found {
		return nil
	}
	for pos, w := range strings.Split(words, "-") {
		if w == "" {
			continue
		}
		right, other := listFor(pos)
		if _, ok := right.index[w]; ok {
			continue
		}
		_, inOther := other.index[strings.ToLower(w)]
		return &UnknownWordError{
			Word:        w,
			Position:    pos,
			OtherList:   inOther,
			Suggestions: suggest(w, right, other),
		}
	}
	return nil
}

// maxSuggestions bounds UnknownWordError.Suggestions.
const maxSuggestions = 3

// suggest returns up to maxSuggestions words close to word (compared in
// lower case). From the list for the position: words within an edit
// distance (insert, delete, substitute or swap two neighbours) of 1 for
// typed words of up to 4 letters and 2 for longer ones, and, for 3 letters
// or more, words that start with it (a word cut short). From the other
// list: words one edit away. Costs are in half-steps: 2 per edit, 3 for a
// cut-short word, plus 2 for the other list. Only words costing at most one
// half-step more than the best are kept, cheapest first; ties go to the
// list for the position, then alphabetical order.
func suggest(word string, right, other *wordList) []string {
	lw := []rune(strings.ToLower(word))
	maxDist := 2
	if len(lw) <= 4 {
		maxDist = 1
	}
	type cand struct {
		w     string
		cost  int
		other bool
	}
	var cands []cand
	for _, l := range []*wordList{right, other} {
		isOther := l == other
		for _, w := range l.words {
			cost := -1
			rw := []rune(w)
			if d := len(rw) - len(lw); d >= -maxDist && d <= maxDist {
				if e := editDistance(lw, rw, maxDist); e <= maxDist {
					cost = 2 * e
				}
			}
			if cost < 0 || cost > 3 {
				if len(lw) >= 3 && len(rw) > len(lw) && strings.HasPrefix(w, string(lw)) {
					cost = 3
				}
			}
			if isOther {
				if cost != 2 {
					continue // only one edit away, and not the very word typed
				}
				cost += 2
			}
			if cost < 0 {
				continue
			}
			cands = append(cands, cand{w, cost, isOther})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if a.cost != b.cost {
			return a.cost - b.cost
		}
		if a.other != b.other {
			if a.other {
				return 1
			}
			return -1
		}
		return strings.Compare(a.w, b.w)
	})
	var out []string
	for _, c := range cands {
		if len(out) == maxSuggestions || c.cost > cands[0].cost+1 {
			break
		}
		out = append(out, c.w)
	}
	return out
}

// editDistance returns the optimal-string-alignment distance between a and
// b (Levenshtein plus swaps of neighbours), or max+1 if it exceeds max.
func editDistance(a, b []rune, max int) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			sub := 1
			if a[i-1] == b[j-1] {
				sub = 0
			}
			d := min(prev[j]+1, cur[j-1]+1, prev[j-1]+sub)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d = min(d, prev2[j-2]+1)
			}
			cur[j] = d
			rowMin = min(rowMin, d)
		}
		if rowMin > max {
			return max + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(b)], max+1)
}
