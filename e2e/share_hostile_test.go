package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A guest (the real shwim and tty-share) types escape sequences that
// would query or reprogram the host's terminal, were they echoed to it,
// or its programs: an OSC 52 clipboard write, a title change, a DECRQSS
// query, a device-attributes reply and a bracketed-paste end marker.
// gander share cuts them before the PTY: the shared `cat -v` receives only
// the keys around them (an arrow key among them), and the host's tmux
// gets no clipboard buffer and no title.
func TestShareHostileGuestInput(t *testing.T) {
	shwim := requireTTYShare(t)
	mailbox := startMailbox(t)
	host := startTerminal(t, "host")
	guest := startTerminal(t, "guest")
	host.run(fmt.Sprintf("gander share --mailbox %s --relay tcp:127.0.0.1:1 --command 'read x; echo cat-ready; cat -v'", mailbox.URL))
	code := host.waitScreen(ganderShareCode, 30*time.Second)[1]
	guest.run(fmt.Sprintf("%s --mailbox %s %s", shwim, mailbox.URL, code))
	// A guest sees the output from when it joins on: it presses Enter
	// (read returns) until it sees cat start.
	ready := regexp.MustCompile(`cat-ready`)
	for deadline := time.Now().Add(30 * time.Second); !ready.MatchString(guest.screen()); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the guest never saw the shared cat start:\n%s", guest.screen())
		}
		guest.keys("Enter")
	}
	host.waitScreen(ready, 10*time.Second)

	hostile := strings.Join([]string{
		"abc",
		"\x1b]52;c;cHduZWQ=\x07", // OSC 52: set the clipboard to "pwned"
		"d",
		"\x1b[>0;276;0c", // a DA2 reply
		"e",
		"\x1bP$qm\x1b\\", // DECRQSS
		"f",
		"\x1b]0;pwned-title\x07", // the window title
		"g",
		"\x1b[201~", // the end of a bracketed paste
		"h",
		"\x1b[A", // the Up key: a key, kept
	}, "")
	guest.typeText(hostile)
	guest.keys("Enter")
	// The terminal echoes the line, then cat -v prints the line it got:
	// the keys, ESC shown as ^[.
	host.waitScreen(regexp.MustCompile(`(?m)^abcdefgh\^\[\[A\nabcdefgh\^\[\[A$`), 15*time.Second)
	screen := host.screen()
	for _, leaked := range []string{"52;c", "cHduZWQ", "276", "$q", "pwned", "201~"} {
		if strings.Contains(screen, leaked) {
			t.Errorf("the host's PTY got %q:\n%s", leaked, screen)
		}
	}
	if bufs := strings.TrimSpace(host.tmux("list-buffers")); bufs != "" {
		t.Errorf("the host's terminal got a clipboard write: %s", bufs)
	}
	if title := host.flag("pane_title"); strings.Contains(title, "pwned") {
		t.Errorf("the host's terminal title became %q", title)
	}
	host.keys("C-d")
	host.assertCleanAfterExit()
	guest.waitScreen(shwimGuestBack, 30*time.Second)
}

// A host's programs may leave the guest's terminal in any mode: the
// alternate screen, the cursor hidden, mouse reporting, application
// keys, insert mode, a scroll region. gander join gives it back clean
// when the guest detaches, and gander share its own when the share ends;
// and the host cannot write the guest's clipboard (OSC 52).
// Both sides are gander here (with shwim's app id), so this is also
// gander share ↔ gander join.
func TestShareGuestTerminalRestored(t *testing.T) {
	requireTTYShare(t)
	mailbox := startMailbox(t)
	host := startTerminal(t, "host")
	guest := startTerminal(t, "guest")
	// and an OSC 52 clipboard write, which the guest's tmux would take.
	modes := `\033]52;c;cHduZWQ=\007\033[?1049h\033[?25l\033[?1000h\033[?1003h\033[?1006h\033[?2004h\033[?1h\033=\033[4h\033[5;10r`
	guest.tmux("set-option", "-g", "set-clipboard", "on")
	host.run(fmt.Sprintf(`gander share --mailbox %s --relay tcp:127.0.0.1:1 --command "read x; printf '%s'; echo modes-set; cat"`, mailbox.URL, modes))
	code := host.waitScreen(ganderShareCode, 30*time.Second)[1]
	guest.run(fmt.Sprintf("gander join --mailbox %s --relay tcp:127.0.0.1:1 %s", mailbox.URL, code))
	guest.waitScreen(regexp.MustCompile(`gander: joined`), 60*time.Second)
	ready := regexp.MustCompile(`modes-set`)
	for deadline := time.Now().Add(30 * time.Second); !ready.MatchString(guest.screen()); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the guest never saw the host set the modes:\n%s", guest.screen())
		}
		guest.keys("Enter")
	}
	for flag, want := range map[string]string{"alternate_on": "1", "cursor_flag": "0", "mouse_any_flag": "1", "keypad_flag": "1"} {
		if got := guest.flag(flag); got != want {
			t.Fatalf("the host's modes did not reach the guest: %s=%s, want %s", flag, got, want)
		}
	}
	if bufs := strings.TrimSpace(guest.tmux("list-buffers")); bufs != "" {
		t.Errorf("the host wrote the guest's clipboard: %s", bufs)
	}
	guest.keys("C-]")
	guest.assertCleanAfterExit("modes-set")
	guest.waitScreen(regexp.MustCompile(`gander: detached`), 5*time.Second)
	host.keys("C-d")
	host.assertCleanAfterExit()
}
