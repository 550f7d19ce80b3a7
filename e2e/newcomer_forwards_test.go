package e2e

import (
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// What a newcomer hit with forwards (issue 14), driven as they did: two
// gander apps in tmux, a web server, curl.

// pairForwardApps starts two apps in tmux and pairs them: alice makes
// the code, bob types it; both confirm the verifier.
func pairForwardApps(t *testing.T, mailboxURL string) (alice, bob *terminal) {
	t.Helper()
	alice, bob = startTerminal(t, "alice"), startTerminal(t, "bob")
	pairGanderApps(t, mailboxURL, alice, bob)
	confirmVerifiers(alice, bob)
	return alice, bob
}

// offer adds one of term's services through the add form.
func (term *terminal) offer(spec string) {
	term.t.Helper()
	term.keys("a")
	term.waitScreen(regexp.MustCompile(`\(•\) offer a service of mine`), 5*time.Second)
	term.typeText(spec)
	term.keys("Enter")
}

// allowOnce answers the peer's request for name with "allow once" and
// returns the address term listens on for it.
func (term *terminal) allowOnce(name string) string {
	term.t.Helper()
	term.waitScreen(regexp.MustCompile(`Your peer asks to listen for service "`+regexp.QuoteMeta(name)+`"`), 30*time.Second)
	term.keys("o")
	return term.waitScreen(regexp.MustCompile(regexp.QuoteMeta(name)+`\s+← peer\s+(127\.0\.0\.1:\d+)`), 30*time.Second)[1]
}

// removeSelected removes the selected forward, named name, confirming.
func (term *terminal) removeSelected(name string) {
	term.t.Helper()
	term.keys("d")
	term.waitScreen(regexp.MustCompile(`Remove the forward "`+regexp.QuoteMeta(name)+`"\?`), 5*time.Second)
	term.keys("y")
}

// waitRefused waits until nothing listens at addr any more.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	eventually(t, "the listener at "+addr+" to close", func() error {
		if err := exec.Command("curl", "-sS", "--max-time", "5", "http://"+addr+"/").Run(); err == nil {
			return fmt.Errorf("%s still answers", addr)
		}
		return nil
	})
}

// Item 1: a removal reaches the peer's screen, both ways round.
func TestNewcomerForwardsRemovalReachesThePeer(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (e2e/test.sh installs it)")
	}
	mailbox := startMailbox(t)
	docs, web := tuiWebServer(t), tuiWebServer(t)
	alice, bob := pairForwardApps(t, mailbox.URL)

	// Bob offers something and removes it while Alice's dialog is up:
	// the question goes.
	bob.offer("early:" + strconv.Itoa(docs))
	alice.waitScreen(regexp.MustCompile(`Your peer asks to listen for service "early"`), 30*time.Second)
	bob.removeSelected("early")
	bob.waitScreen(regexp.MustCompile(`removed "early"`), 10*time.Second)
	eventually(t, "alice's question to go", func() error {
		if strings.Contains(alice.screen(), `service "early"`) {
			return fmt.Errorf("still asked:\n%s", alice.screen())
		}
		return nil
	})
	if s := bob.screen(); regexp.MustCompile(`early\s+→`).MatchString(s) {
		t.Errorf("the removed offer is listed:\n%s", s)
	}

	// Bob offers docs, Alice lets him; then Bob removes his offer.
	bob.offer("docs:" + strconv.Itoa(docs))
	addr := alice.allowOnce("docs")
	if got := curl(t, "http://"+addr+"/docs"); got != page+"/docs" {
		t.Fatalf("curl through docs got %q", got)
	}
	bob.waitScreen(regexp.MustCompile(`docs\s+→ peer\s+127\.0\.0\.1:`+strconv.Itoa(docs)), 10*time.Second)
	bob.removeSelected("docs")
	bob.waitScreen(regexp.MustCompile(`removed "docs"`), 10*time.Second)
	alice.waitScreen(regexp.MustCompile(`docs\s+← peer\s+–\s+withdrawn by the peer`), 10*time.Second)
	alice.waitScreen(regexp.MustCompile(`your peer withdrew "docs"`), 5*time.Second)
	if s := alice.screen(); strings.Contains(s, addr) {
		t.Errorf("alice's screen still shows the closed %s:\n%s", addr, s)
	}
	waitRefused(t, addr)

	// Alice offers web, Bob lets her; then Bob removes his listener.
	alice.offer("web:" + strconv.Itoa(web))
	addr = bob.allowOnce("web")
	if got := curl(t, "http://"+addr+"/web"); got != page+"/web" {
		t.Fatalf("curl through web got %q", got)
	}
	alice.waitScreen(regexp.MustCompile(`web\s+→ peer\s+127\.0\.0\.1:`+strconv.Itoa(web)+`\s`), 10*time.Second)
	bob.removeSelected("web")
	bob.waitScreen(regexp.MustCompile(`removed "web"`), 10*time.Second)
	waitRefused(t, addr)
	alice.waitScreen(regexp.MustCompile(`web\s+→ peer\s+127\.0\.0\.1:\d+\s+withdrawn by the peer`), 10*time.Second)
	alice.waitScreen(regexp.MustCompile(`your peer stopped listening for "web"`), 5*time.Second)

	// The withdrawn rows clear with d, as any other.
	alice.removeSelected("docs")
	alice.waitScreen(regexp.MustCompile(`removed "docs"`), 10*time.Second)
	if s := alice.screen(); regexp.MustCompile(`docs\s+←`).MatchString(s) {
		t.Errorf("docs still listed after d:\n%s", s)
	}
	alice.quit()
	bob.waitScreen(regexp.MustCompile(`(?i)closed|peer.*(left|closed)`), 15*time.Second)
	bob.quit()
}

// Items 14 and 13: a person's refusal reads as one on the offerer's
// screen, and the one asked chooses the port in the dialog.
func TestNewcomerForwardsRefusalAndPort(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (e2e/test.sh installs it)")
	}
	mailbox := startMailbox(t)
	web := tuiWebServer(t)
	alice, bob := pairForwardApps(t, mailbox.URL)

	bob.offer("secret:" + strconv.Itoa(freePort(t)))
	alice.waitScreen(regexp.MustCompile(`Your peer asks to listen for service "secret"`), 30*time.Second)
	alice.keys("d")
	alice.waitScreen(regexp.MustCompile(`you refused "secret"`), 10*time.Second)
	bob.waitScreen(regexp.MustCompile(`secret\s+→ peer\s+\S+\s+your peer refused\s`), 30*time.Second)
	bob.waitScreen(regexp.MustCompile(`your peer refused "secret"\s`), 5*time.Second)
	if s := bob.screen(); strings.Contains(s, "failed") || strings.Contains(s, "No service permitted") {
		t.Errorf("bob reads the protocol's words:\n%s", s)
	}

	// Bob asks for no port; Alice types the one she wants.
	port := freePort(t)
	bob.offer("web:" + strconv.Itoa(web))
	alice.waitScreen(regexp.MustCompile(`Listen here on port: any free port`), 30*time.Second)
	alice.waitScreen(regexp.MustCompile(`a always allow "web" from this peer, this session`), 5*time.Second)
	alice.typeText(strconv.Itoa(port))
	alice.waitScreen(regexp.MustCompile(`Listen here on port: `+strconv.Itoa(port)), 5*time.Second)
	alice.keys("o")
	alice.waitScreen(regexp.MustCompile(`web\s+← peer\s+127\.0\.0\.1:`+strconv.Itoa(port)+`\s`), 30*time.Second)
	eventually(t, "curl through the chosen port", func() error {
		out, err := exec.Command("curl", "-sS", "--max-time", "10", fmt.Sprintf("http://127.0.0.1:%d/chosen", port)).Output()
		if err == nil && string(out) != page+"/chosen" {
			err = fmt.Errorf("got %q", out)
		}
		return err
	})
	alice.quit()
	bob.waitScreen(regexp.MustCompile(`(?i)closed|peer.*(left|closed)`), 15*time.Second)
	bob.quit()
}
