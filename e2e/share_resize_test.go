package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The host's window size follows its terminal: when the host's tmux
// window shrinks, less redraws for the new size on both sides; when it
// grows past the guest's (shwim's tty-share), the guest says its window
// is too small, as tty-share does.
func TestShareHostResizePropagates(t *testing.T) {
	shwim := requireTTYShare(t)
	mailbox := startMailbox(t)
	file := shareFile(t)
	host := startTerminal(t, "host")
	guest := startTerminal(t, "guest")
	host.run(fmt.Sprintf("gander share --read-only --mailbox %s --relay tcp:127.0.0.1:1 --command 'less %s'", mailbox.URL, file))
	code := host.waitScreen(ganderShareCode, 30*time.Second)[1]
	guest.run(fmt.Sprintf("%s --mailbox %s %s", shwim, mailbox.URL, code))
	sameScreens(t, host, guest, lessTop)

	// Smaller: less shows 19 lines and its prompt, on both sides.
	host.tmux("resize-window", "-x", "80", "-y", "20")
	nineteen := regexp.MustCompile(`(?m)^share line 019\b.*\n:`)
	host.waitScreen(nineteen, 15*time.Second)
	guest.waitScreen(nineteen, 15*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, g := host.screen(), strings.Join(strings.Split(guest.screen(), "\n")[:20], "\n")
		if strings.TrimRight(h, "\n") == strings.TrimRight(g, "\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the resize the guest's first 20 rows differ:\n--- host\n%s\n--- guest\n%s", h, g)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Larger than the guest's 100x30: the guest is told.
	host.tmux("resize-window", "-x", "120", "-y", "40")
	guest.waitScreen(regexp.MustCompile(`Your window is smaller than the remote window`), 15*time.Second)

	host.typeText("q")
	host.assertCleanAfterExit("share line")
	guest.waitScreen(shwimGuestBack, 30*time.Second)
}
