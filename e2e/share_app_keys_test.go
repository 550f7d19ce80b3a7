package e2e

import (
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// The guest asks for the keyboard from inside its full-screen view, with
// the ssh-style escape Enter ~ k (session.AskKeyboardEscape), without
// detaching: the host's dialog comes up, the host allows, and the guest,
// still in the view, runs a command on the host. Once allowed, "~k" at a
// line's start is no escape: the shell gets it. Revoked, the escape asks
// again; the host keeps it read-only. Both terminals are clean after.
func TestShareAppAskKeyboardInView(t *testing.T) {
	mailbox := startMailbox(t)
	host, guest := startTerminal(t, "host"), startTerminal(t, "guest")
	allowed := filepath.Join(t.TempDir(), "allowed")
	host.useSharedShell()
	pairGanderApps(t, mailbox.URL, host, guest)
	confirmVerifiers(host, guest)

	host.keys("t")
	host.waitScreen(shareAppPrompt, 10*time.Second)
	host.keys("C-]")
	host.waitScreen(shareAppBack, 10*time.Second)
	guest.waitScreen(regexp.MustCompile(`Enter ~ k asks for the keyboard`), 30*time.Second) // the offer's notice
	guest.waitScreen(shareAppOffered, 10*time.Second)
	guest.keys("w")
	guest.waitScreen(regexp.MustCompile(`Ctrl-\] returns to the app; Enter ~ k asks to type`), 10*time.Second)
	host.waitScreen(regexp.MustCompile(`peer watching`), 10*time.Second)

	// Read-only, in the view: Enter ~ k asks; the host allows.
	guest.keys("Enter")
	guest.typeText("~k")
	host.waitScreen(shareAppAsked, 10*time.Second)
	host.keys("y")
	host.waitScreen(shareAppBoth, 10*time.Second)

	// Still in the view, the guest types a command that runs on the host.
	guest.makeOnTheHost(allowed)
	// Allowed, nothing is taken from the guest's keys: ~k reaches bash.
	guest.run("~k")
	guest.waitScreen(regexp.MustCompile(`~k: command not found`), 10*time.Second)

	// Revoked, the escape asks again; the host keeps it read-only.
	host.keys("R")
	host.waitScreen(shareAppOnlyYou, 10*time.Second)
	time.Sleep(1100 * time.Millisecond) // the host looks at one request a second
	guest.keys("Enter")
	guest.typeText("~k")
	host.waitScreen(shareAppAsked, 10*time.Second)
	host.keys("n")
	for end := time.Now().Add(10 * time.Second); shareAppAsked.MatchString(host.screen()); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the keyboard dialog stayed after n:\n%s", host.screen())
		}
	}
	host.waitScreen(shareAppOnlyYou, 10*time.Second)

	guest.keys("C-]")
	guest.waitScreen(shareAppOffered, 10*time.Second)
	quitGuestThenHost(host, guest)
	for _, term := range []*terminal{host, guest} {
		term.assertCleanAfterExit("shared$", "⌨")
	}
}
