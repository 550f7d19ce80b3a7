package e2e

import (
	"regexp"
	"testing"
	"time"
)

// How the TUI tests pair two gander apps, written once: the way a person
// does it, in tmux, with the code typed by Tab completion.

var tuiVerifierConfirmed = regexp.MustCompile(`Verifier ✓`)

// pairGanderApps starts a gander app on first and on second against
// mailboxURL and pairs them (see pairStartedApps).
func pairGanderApps(t *testing.T, mailboxURL string, first, second *terminal) {
	t.Helper()
	first.startGanderApp(mailboxURL)
	second.startGanderApp(mailboxURL)
	pairStartedApps(t, first, second)
}

// pairStartedApps pairs two apps already on their landing screen: first
// makes a new code (an empty line), second types it with Tab completion,
// and both must show the same verifier. The verifier is left unconfirmed
// (confirmVerifiers confirms it).
func pairStartedApps(t *testing.T, first, second *terminal) {
	t.Helper()
	first.keys("Enter")
	code := first.waitScreen(tuiCode, 30*time.Second)[1]
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
