package codes

import (
	"slices"
	"testing"
)

// The PGP word list's own example: E582 94F2 is "topmost Istanbul
// Pluto vagabond".
func TestWords(t *testing.T) {
	got := Words([]byte{0xE5, 0x82, 0x94, 0xF2})
	if want := []string{"topmost", "istanbul", "pluto", "vagabond"}; !slices.Equal(got, want) {
		t.Errorf("Words = %q, want %q", got, want)
	}
	if len(Words(nil)) != 0 {
		t.Error("no bytes, no words")
	}
}
