package e2e

import (
	"regexp"
	"testing"
	"time"
)

// How the TUI tests pair two gander apps, written once: the way a person
// does it, in tmux, with the code typed by Tab completion.

var tuiVerifierConfirmed = regexp.MustCompile(`Verifier ✓`)

// pairGanderApps starts a gander app on first, which makes a new code,
// then one on second, which types it (see joinWithCode): in that order, as
// a person who has just been told the code does.
func pairGanderApps(t *testing.T, mailboxURL string, first, second *terminal) {
	t.Helper()
	first.startGanderApp(mailboxURL)
	code := first.newCode()
	second.startGanderApp(mailboxURL)
	joinWithCode(t, first, second, code)
}

// newCode asks term's app, on its landing screen, for a new code (an
// empty line) and returns the code it shows.
func (term *terminal) newCode() string {
	term.t.Helper()
	term.keys("Enter")
	return term.waitScreen(tuiCode, 30*time.Second)[1]
}

// joinWithCode has second type first's code with Tab completion; both must
// then show the same verifier. The verifier is left unconfirmed
// (confirmVerifiers confirms it).
func joinWithCode(t *testing.T, first, second *terminal, code string) {
	t.Helper()
	second.typeCodeWithCompletion(code)
	if a, b := first.verifier(), second.verifier(); a != b {
		t.Fatalf("the verifiers differ: %q on the side that made the code, %q on the side that typed it", a, b)
	}
}

// confirmVerifiers presses v on both apps, as people do once they have
// read the verifier aloud, and waits until both show it confirmed.
func confirmVerifiers(first, second *terminal) {
	first.t.Helper()
	first.keys("v")
	second.keys("v")
	first.waitScreen(tuiVerifierConfirmed, 10*time.Second)
	second.waitScreen(tuiVerifierConfirmed, 10*time.Second)
}
