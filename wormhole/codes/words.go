package codes

// Words spells b with the PGP word list, as PGP reads out fingerprints:
// a byte at an even offset is its two-syllable word, at an odd offset its
// three-syllable one, so that a swapped or dropped word shows. Two people
// holding the same bytes read the same words.
func Words(b []byte) []string {
	words := make([]string, len(b))
	for i, c := range b {
		if i%2 == 0 {
			words[i] = evenWords.words[c]
		} else {
			words[i] = oddWords.words[c]
		}
	}
	return words
}
