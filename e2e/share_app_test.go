package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The shared terminal between two gander apps (terminal-v1), in tmux as
// people use it: the host shares a shell with t and returns to the app;
// the guest watches with w, its keys are dropped while read-only, it asks
// for the keyboard with r, the host allows it in a dialog, a command the
// guest types runs on the host (the file it touches exists, its output is
// on both screens), the host takes the keyboard back with R and the
// guest's keys are dropped again (checked on the file system); the guest
// detaches and re-attaches; both terminals are clean after quitting.

var (
	shareAppPrompt  = regexp.MustCompile(`(?m)^shared\$`)
	shareAppBack    = regexp.MustCompile(`⌨ sharing "shell"`)
	shareAppOffered = regexp.MustCompile(`⌨ your peer shares "shell" · read-only`)
	shareAppAsked   = regexp.MustCompile(`Your peer asks for the keyboard`)
	shareAppMayType = regexp.MustCompile(`⌨ your peer shares "shell" · you may type`)
	shareAppBoth    = regexp.MustCompile(`you and your peer type`)
	shareAppOnlyYou = regexp.MustCompile(`only you type`)
	shareAppDropped = regexp.MustCompile(`\(\d+ keys dropped\)`)
	shareAppWatch   = regexp.MustCompile(`gander: your peer's terminal; Ctrl-\] returns to the app`)
	shareAppShow    = regexp.MustCompile(`gander: your shared terminal; Ctrl-\] returns to the app`)
)

// useSharedShell makes the shell that term's app shares a plain bash
// with a prompt of its own (shareAppPrompt).
func (term *terminal) useSharedShell() {
	term.t.Helper()
	shell := filepath.Join(term.t.TempDir(), "shell")
	if err := os.WriteFile(shell, []byte("#!/bin/sh\nPS1='shared$ ' exec bash --norc --noprofile\n"), 0o755); err != nil {
		term.t.Fatal(err)
	}
	term.run("export SHELL=" + shell)
}

var madeByTheGuest = regexp.MustCompile(`(?m)^made-by-the-guest`)

// makeOnTheHost has term, a guest allowed to type in its view of the
// host's share, run a command that makes path: path must then exist (the
// command ran on the host) and its output be on the guest's screen.
func (term *terminal) makeOnTheHost(path string) {
	term.t.Helper()
	term.run("touch " + path + " && echo made-by-the-guest")
	term.waitScreen(madeByTheGuest, 10*time.Second)
	if !exists(path) {
		term.t.Fatalf("%s is not on the host: the allowed guest's command did not run there", path)
	}
}

// quitGuestThenHost quits the guest's app; the host's then says the
// session closed, and quits too.
func quitGuestThenHost(host, guest *terminal) {
	host.t.Helper()
	guest.quit()
	host.waitScreen(regexp.MustCompile(`(?i)closed|peer.*(left|closed)`), 15*time.Second)
	host.quit()
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// stillAbsent checks, for a while, that path does not appear.
func stillAbsent(t *testing.T, path string, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if exists(path) {
			t.Fatalf("%s was made on the host: the guest's keys ran", path)
		}
	}
}

func TestShareAppGanderWithGander(t *testing.T) {
	mailbox := startMailbox(t)
	host, guest := startTerminal(t, "host"), startTerminal(t, "guest")
	made := t.TempDir()
	readOnly, allowed, revoked := filepath.Join(made, "read-only"), filepath.Join(made, "allowed"), filepath.Join(made, "revoked")

	host.useSharedShell()
	pairGanderApps(t, mailbox.URL, host, guest)
	confirmVerifiers(host, guest)
	host.waitScreen(regexp.MustCompile(`t share terminal`), 10*time.Second)

	// The host shares: full-screen at once, then back to the app.
	host.keys("t")
	host.waitScreen(shareAppShow, 10*time.Second)
	host.waitScreen(shareAppPrompt, 10*time.Second)
	host.keys("C-]")
	host.waitScreen(shareAppBack, 10*time.Second)
	host.waitScreen(shareAppOnlyYou, 5*time.Second)

	// The guest watches; the host shows its share again and presses
	// Enter, so that a prompt is drawn for both.
	guest.waitScreen(shareAppOffered, 30*time.Second)
	guest.keys("w")
	guest.waitScreen(shareAppWatch, 10*time.Second)
	host.waitScreen(regexp.MustCompile(`peer watching`), 10*time.Second)
	host.keys("t")
	host.waitScreen(shareAppShow, 10*time.Second)
	host.keys("Enter")
	guest.waitScreen(shareAppPrompt, 10*time.Second)
	host.keys("C-]")
	host.waitScreen(shareAppBack, 10*time.Second)

	// Read-only: the guest's keys are dropped on the host.
	guest.run("touch " + readOnly)
	host.waitScreen(shareAppDropped, 10*time.Second)
	stillAbsent(t, readOnly, 2*time.Second)

	// The guest detaches, asks for the keyboard; the host allows.
	guest.keys("C-]")
	guest.waitScreen(shareAppOffered, 10*time.Second)
	guest.keys("r")
	host.waitScreen(shareAppAsked, 10*time.Second)
	host.keys("y")
	host.waitScreen(shareAppBoth, 10*time.Second)
	guest.waitScreen(shareAppMayType, 10*time.Second)

	// Re-attached, the guest runs a command: it runs on the host, and
	// both screens show its output.
	guest.keys("w")
	guest.waitScreen(shareAppWatch, 10*time.Second)
	guest.makeOnTheHost(allowed)
	host.keys("t")
	host.waitScreen(madeByTheGuest, 10*time.Second)
	host.keys("C-]")
	host.waitScreen(shareAppBack, 10*time.Second)

	// The host takes the keyboard back: the guest's keys are dropped.
	host.keys("R")
	host.waitScreen(shareAppOnlyYou, 10*time.Second)
	time.Sleep(1100 * time.Millisecond) // the next drop gets a report of its own
	guest.run("touch " + revoked)
	stillAbsent(t, revoked, 3*time.Second)
	host.waitScreen(shareAppDropped, 10*time.Second)

	// The guest detaches; its app is back, its terminal too; both quit.
	guest.keys("C-]")
	guest.waitScreen(shareAppOffered, 10*time.Second)
	quitGuestThenHost(host, guest)
	for _, term := range []*terminal{host, guest} {
		term.assertCleanAfterExit("shared$", "⌨")
	}
}

// A link cut while the host's shared terminal prints: the guest's view
// resumes over the new connection with no line lost, in order.
func TestShareAppLinkCutLosesNoOutput(t *testing.T) {
	mailbox := startMailbox(t)
	relay := startRelay(t)
	proxy := startProxy(t, relay.Addr)
	host, guest := startTerminal(t, "host"), startTerminal(t, "guest")
	host.useSharedShell()
	app := "gander --mailbox " + mailbox.URL + " --relay tcp:" + proxy.Addr + " --no-direct"
	host.run(app)
	host.waitScreen(tuiLanding, 30*time.Second)
	code := host.newCode()
	guest.run(app)
	guest.waitScreen(tuiLanding, 30*time.Second)
	joinWithCode(t, host, guest, code)
	host.keys("t")
	host.waitScreen(shareAppPrompt, 10*time.Second)
	guest.waitScreen(shareAppOffered, 30*time.Second)
	guest.keys("w")
	guest.waitScreen(shareAppWatch, 10*time.Second)
	host.waitScreen(regexp.MustCompile(`(?m)^shared\$`), 5*time.Second)

	// The host types into its own share (its keys always go in): 15
	// numbered lines, 0.2 s apart; the link is cut after the fifth. 15,
	// so that all of them, the command line and the prompts fit on the
	// shared terminal's 21 rows (the host's 30 less the app's lines):
	// with 20, out-1 once scrolled off its top (CI), which is no loss.
	host.run(`for i in $(seq 1 15); do echo out-$i; sleep 0.2; done; echo out-end`)
	guest.waitScreen(regexp.MustCompile(`(?m)^out-5$`), 20*time.Second)
	if n := proxy.Cut(); n == 0 {
		t.Fatal("the proxy had no connection to cut")
	}
	if regexp.MustCompile(`(?m)^out-end$`).MatchString(guest.screen()) {
		t.Fatal("the output ended before the cut")
	}
	guest.waitScreen(regexp.MustCompile(`(?m)^out-end$`), 60*time.Second)
	screen := guest.screen()
	want := ""
	for i := 1; i <= 15; i++ {
		want += "out-" + strconv.Itoa(i) + "\n"
	}
	if !strings.Contains(screen, want+"out-end") {
		t.Fatalf("the guest lost or reordered output across the cut:\n%s", screen)
	}

	guest.keys("C-]")
	guest.waitScreen(shareAppOffered, 10*time.Second)
	host.keys("C-]")
	host.waitScreen(shareAppBack, 10*time.Second)
	// The link did drop and come back (the guest's log says so).
	log, err := os.ReadFile(filepath.Join(guest.home, "state", "gander", "gander.log"))
	if err != nil || !strings.Contains(string(log), "connection lost") || !strings.Contains(string(log), "reconnected") {
		t.Errorf("the guest's log shows no reconnection (%v):\n%s", err, log)
	}
	quitGuestThenHost(host, guest)
}

// The host's window size follows its terminal while its share is shown:
// larger than the guest's, the guest is told its window is too small;
// smaller, less redraws for it on both sides.
func TestShareAppHostResize(t *testing.T) {
	mailbox := startMailbox(t)
	file := shareFile(t)
	host, guest := startTerminal(t, "host"), startTerminal(t, "guest")
	host.useSharedShell()
	pairGanderApps(t, mailbox.URL, host, guest)
	host.keys("t")
	host.waitScreen(shareAppPrompt, 10*time.Second)
	guest.waitScreen(shareAppOffered, 30*time.Second)
	guest.keys("w")
	guest.waitScreen(shareAppWatch, 10*time.Second)
	host.run("less " + file)
	host.waitScreen(lessTop, 10*time.Second)
	guest.waitScreen(lessTop, 10*time.Second)

	host.tmux("resize-window", "-x", "120", "-y", "40")
	guest.waitScreen(regexp.MustCompile(`Your window is smaller than the host's`), 15*time.Second)
	host.tmux("resize-window", "-x", "80", "-y", "20")
	nineteen := regexp.MustCompile(`(?m)^share line 019\b.*\n:`)
	host.waitScreen(nineteen, 15*time.Second)
	guest.waitScreen(nineteen, 15*time.Second)
	if strings.Contains(guest.screen(), "smaller than the host's") {
		t.Errorf("the notice stayed once the host's window became smaller:\n%s", guest.screen())
	}

	host.typeText("q")
	host.waitScreen(shareAppPrompt, 10*time.Second)
	host.keys("C-]")
	host.waitScreen(shareAppBack, 10*time.Second)
	guest.keys("C-]")
	guest.waitScreen(shareAppOffered, 10*time.Second)
	quitGuestThenHost(host, guest)
}
