package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The shared terminal against the real shwim 26.8 (which runs Debian's
// tty-share 2.4), both ways: gander share ↔ shwim CODE, shwim ↔ gander
// join CODE. Each side is a tmux terminal; a full-screen program (less on
// a file) must look the same on both (capture-pane compared), typing from
// the side allowed to type must work, and --read-only must hold.

var (
	ganderShareCode = regexp.MustCompile(`the code is (\d+-[a-z]+-[a-z]+)`)
	shwimHostCode   = regexp.MustCompile(`Magic Code\s*│\s*(\d+-[a-z]+-[a-z]+)`)
	// shwim's guest types a newline as it connects (cli.py's
	// connectionMade), which scrolls less by a line where guests may type.
	lessTop    = regexp.MustCompile(`(?m)^share line 00[12]\b`)
	lessBottom = regexp.MustCompile(`(?m)^share line 200\b`)
)

// shareFile writes the file less shows: 200 numbered lines.

// shwimGuestBack is shwim's guest back at its shell after the share
// ended. Its tty-share sometimes exits with a traceback that leaves the
// terminal without newline translation: the prompt then comes back, but
// not at a line's start.
var shwimGuestBack = regexp.MustCompile(`e2e\$\s*\z`)

func shareFile(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for i := 1; i <= 200; i++ {
		fmt.Fprintf(&b, "share line %03d: the quick brown fox jumps over the lazy dog\n", i)
	}
	path := filepath.Join(t.TempDir(), "shared.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func requireTTYShare(t *testing.T) string {
	t.Helper()
	shwim := venvBin(t, "shwim")
	if _, err := exec.LookPath("tty-share"); err != nil {
		t.Skip("tty-share is not installed (e2e/test.sh installs it)")
	}
	return shwim
}

// sameScreens waits until both terminals show what match finds, and
// then the same rows (the whole screen, compared line by line).
func sameScreens(t *testing.T, a, b *terminal, match *regexp.Regexp) {
	t.Helper()
	a.waitScreen(match, 30*time.Second)
	b.waitScreen(match, 30*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		sa, sb := a.screen(), b.screen()
		if sa == sb {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the two sides differ:\n--- host\n%s\n--- guest\n%s", sa, sb)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stillShows checks, for a while, that the screen keeps matching and
// never matches not.
func stillShows(t *testing.T, term *terminal, match, not *regexp.Regexp, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		s := term.screen()
		if not.MatchString(s) || !match.MatchString(s) {
			t.Fatalf("the screen changed (%s should stay, %s should not come):\n%s", match, not, s)
		}
	}
}

func TestShareGanderHostShwimGuest(t *testing.T) {
	shwim := requireTTYShare(t)
	for _, readOnly := range []bool{false, true} {
		t.Run(map[bool]string{false: "typing", true: "read-only"}[readOnly], func(t *testing.T) {
			mailbox := startMailbox(t)
			file := shareFile(t)
			host := startTerminal(t, "host")
			guest := startTerminal(t, "guest")
			flags := ""
			if readOnly {
				flags = " --read-only"
			}
			host.run(fmt.Sprintf("gander share%s --mailbox %s --relay tcp:127.0.0.1:1 --command 'less %s'", flags, mailbox.URL, file))
			code := host.waitScreen(ganderShareCode, 30*time.Second)[1]
			guest.run(fmt.Sprintf("%s --mailbox %s %s", shwim, mailbox.URL, code))
			sameScreens(t, host, guest, lessTop)

			// The guest types G (less: to the end).
			guest.typeText("G")
			if readOnly {
				stillShows(t, host, lessTop, lessBottom, 3*time.Second)
				stillShows(t, guest, lessTop, lessBottom, time.Second)
				host.typeText("G") // the host always can
			}
			sameScreens(t, host, guest, lessBottom)

			// less ends, and with it the share: both are back at their shell.
			host.typeText("q")
			host.assertCleanAfterExit("share line")
			guest.waitScreen(shwimGuestBack, 30*time.Second)
		})
	}
}

func TestShareShwimHostGanderGuest(t *testing.T) {
	shwim := requireTTYShare(t)
	for _, readOnly := range []bool{false, true} {
		t.Run(map[bool]string{false: "typing", true: "read-only"}[readOnly], func(t *testing.T) {
			mailbox := startMailbox(t)
			file := shareFile(t)
			host := startTerminal(t, "host")
			guest := startTerminal(t, "guest")
			flags := ""
			if readOnly {
				flags = " --read-only"
			}
			// tty-share runs $SHELL: the test's plain bash, with its prompt.
			shell := filepath.Join(t.TempDir(), "shell")
			if err := os.WriteFile(shell, []byte("#!/bin/sh\nexec bash --norc --noprofile\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			host.run("export SHELL=" + shell)
			host.run(fmt.Sprintf("%s%s --mailbox %s", shwim, flags, mailbox.URL))
			code := host.waitScreen(shwimHostCode, 30*time.Second)[1]
			guest.run(fmt.Sprintf("gander join --mailbox %s --relay tcp:127.0.0.1:1 %s", mailbox.URL, code))
			guest.waitScreen(regexp.MustCompile(`gander: joined`), 60*time.Second)
			host.waitScreen(regexp.MustCompile(`Press Enter to continue`), 30*time.Second)
			host.keys("Enter")
			host.waitScreen(atPrompt, 30*time.Second)
			guest.waitScreen(atPrompt, 30*time.Second)
			host.run("less " + file)
			sameScreens(t, host, guest, lessTop)

			guest.typeText("G")
			if readOnly {
				stillShows(t, host, lessTop, lessBottom, 3*time.Second)
				stillShows(t, guest, lessTop, lessBottom, time.Second)
				host.typeText("G")
			}
			sameScreens(t, host, guest, lessBottom)

			// The guest leaves with the detach key; its terminal is clean
			// although less had the alternate screen up.
			guest.keys("C-]")
			guest.assertCleanAfterExit("share line")
			// shwim's host says the peer left, over whatever is on its screen,
			// and its tty-share may leave the terminal without newline
			// translation: the prompt then comes back off a line's start.
			host.typeText("q")
			host.waitScreen(regexp.MustCompile(`(?m)^e2e\$ less .*\n(.*\n)*.*e2e\$`), 10*time.Second)
			host.run("exit")
		})
	}
}
