package e2e

import (
	"context"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gander-pair/gander/forwards"
)

// What a newcomer hit around the connection (issue 14: 2, 9, 10), done as
// a person does it: two gander apps in tmux, the real mailbox server
// stopped and started again, wrong codes, a code nobody is on, a used one.

var (
	// tuiServerDown is the status line while the mailbox server is out
	// of reach, full ("server: reconnecting (12 s) · …") or compact.
	tuiServerDown = regexp.MustCompile(`server:? reconnecting \((\d+) s\)`)
	tuiServerUp   = regexp.MustCompile(`server(: connected| ✓)`)
	tuiWrongCode  = regexp.MustCompile(`Wrong code\.`)
	tuiNobody     = wrapped("Nobody is on this code yet — waiting for your peer. A code works only once: if it was used already, ask your peer for a new one.")
)

// wrapped matches text however the screen wraps it: any space may be a
// line break, in a box its border, and the next line's indent.
func wrapped(text string) *regexp.Regexp {
	return regexp.MustCompile(strings.Join(strings.Split(regexp.QuoteMeta(text), " "), `[\s║│]+`))
}

// startGanderWithCode runs the app joining code at once.
func (term *terminal) startGanderWithCode(mailboxURL, code string) {
	term.t.Helper()
	term.run("gander --mailbox " + mailboxURL + " --relay tcp:127.0.0.1:1 " + code)
}

// waitServerDownFor waits until the status line says the server has been
// gone for at least secs seconds: the time on the line runs.
func (term *terminal) waitServerDownFor(secs int, timeout time.Duration) {
	term.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if m := tuiServerDown.FindStringSubmatch(term.screen()); m != nil {
			if n, _ := strconv.Atoi(m[1]); n >= secs {
				return
			}
		}
		if time.Now().After(deadline) {
			term.t.Fatalf("the status line did not show the server gone for %d s within %v:\n%s", secs, timeout, term.screen())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The mailbox server stops while Alice waits for her peer, and again
// mid-session: the status line says reconnecting, with the time running,
// and connected once it is back; the session goes on.
func TestNewcomerConnMailboxDown(t *testing.T) {
	mailbox := startMailbox(t)
	alice, bob := startTerminal(t, "alice"), startTerminal(t, "bob")
	alice.startGanderApp(mailbox.URL)
	code := alice.newCode()
	alice.waitScreen(tuiServerUp, 10*time.Second)

	mailbox.stop()
	alice.waitServerDownFor(1, 20*time.Second)
	alice.waitServerDownFor(3, 20*time.Second)
	mailbox.start(t)
	alice.waitScreen(tuiServerUp, 30*time.Second)
	if tuiServerDown.MatchString(alice.screen()) {
		t.Fatalf("still reconnecting once back:\n%s", alice.screen())
	}

	// Her claim was replayed: Bob finds her with the code.
	bob.startGanderApp(mailbox.URL)
	bob.typeCodeWithCompletion(code)
	if a, b := alice.verifier(), bob.verifier(); a != b {
		t.Fatalf("the verifiers differ: alice %q, bob %q", a, b)
	}

	mailbox.stop()
	alice.waitServerDownFor(2, 20*time.Second)
	bob.waitServerDownFor(2, 20*time.Second)
	for _, term := range []*terminal{alice, bob} {
		if s := term.screen(); !strings.Contains(s, "peer: gander") && !strings.Contains(s, " gander ·") {
			t.Errorf("the peer is no longer shown while the server is down:\n%s", s)
		}
	}
	mailbox.start(t)
	alice.waitScreen(tuiServerUp, 30*time.Second)
	bob.waitScreen(tuiServerUp, 30*time.Second)

	// The goodbye goes through the server, which is back.
	alice.quit()
	bob.waitScreen(regexp.MustCompile(`Your peer closed the session`), 15*time.Second)
	bob.quit()
}

// Alice quits with a forward up: the app asks first, n stays, y goes;
// Bob's screen says what stopped, and n there starts again.
func TestNewcomerConnQuitAsksFirst(t *testing.T) {
	mailbox := startMailbox(t)
	web := tuiWebServer(t)
	alice, bob := startTerminal(t, "alice"), startTerminal(t, "bob")
	pairGanderApps(t, mailbox.URL, alice, bob)
	// Both gander: the words beside the hex, the same on both screens.
	words := regexp.MustCompile(`words ((?:[a-z]+ ?\s*){8})`)
	aw, bw := alice.waitScreen(words, 5*time.Second)[1], bob.waitScreen(words, 5*time.Second)[1]
	if strings.Join(strings.Fields(aw), " ") != strings.Join(strings.Fields(bw), " ") {
		t.Fatalf("the verifier words differ: %q, %q", aw, bw)
	}

	alice.keys("a")
	alice.waitScreen(regexp.MustCompile(`\(•\) offer a service of mine`), 5*time.Second)
	alice.typeText("web:" + strconv.Itoa(web))
	alice.keys("Enter")
	bob.waitScreen(tuiHeld, 30*time.Second)
	bob.keys("v")
	bob.waitScreen(tuiAsked, 30*time.Second)
	// The verifier's note went with the state it asked for.
	if strings.Contains(bob.screen(), "compare the verifier") {
		t.Errorf("the verifier note stayed after v:\n%s", bob.screen())
	}
	bob.keys("o")
	addr := bob.waitScreen(tuiListening, 30*time.Second)[1]
	if got := curl(t, "http://"+addr+"/before-quitting"); got != page+"/before-quitting" {
		t.Fatalf("curl through the forward got %q", got)
	}
	alice.waitScreen(tuiListening, 30*time.Second)

	alice.keys("q")
	alice.waitScreen(regexp.MustCompile(`quit\? 1 forward would stop \(y/N\)`), 5*time.Second)
	alice.keys("n")
	time.Sleep(300 * time.Millisecond)
	if s := alice.screen(); strings.Contains(s, "quit?") || atPrompt.MatchString(s) || strings.Contains(s, "closing…") {
		t.Fatalf("n did not keep the session:\n%s", s)
	}
	if got := curl(t, "http://"+addr+"/still-up"); got != page+"/still-up" {
		t.Fatalf("the forward after n: %q", got)
	}
	alice.keys("C-c")
	alice.waitScreen(regexp.MustCompile(`quit\? 1 forward would stop \(y/N\)`), 5*time.Second)
	alice.keys("y")
	alice.assertCleanAfterExit("Verifier", "Forwards")

	bob.waitScreen(regexp.MustCompile(`Your peer closed the session: 1 forward closed\.`), 15*time.Second)
	bob.waitScreen(regexp.MustCompile(`n to start again`), 5*time.Second)
	bob.keys("n")
	bob.waitScreen(tuiLanding, 30*time.Second)
	bob.keys("C-c") // nothing to lose on the landing screen: no question
	bob.assertCleanAfterExit("Type the code")
}

// After a wrong code both can start again in the app: a new code, and the
// pairing works.
func TestNewcomerConnWrongCodeStartsAgain(t *testing.T) {
	mailbox := startMailbox(t)
	alice, bob := startTerminal(t, "alice"), startTerminal(t, "bob")
	alice.startGanderApp(mailbox.URL)
	code := alice.newCode()
	nameplate, words, _ := strings.Cut(code, "-")
	wrong := nameplate + "-adroitness-aardvark" // an odd word, then an even one, as codes go
	if words == "adroitness-aardvark" {
		wrong = nameplate + "-adviser-absurd"
	}
	bob.startGanderApp(mailbox.URL)
	bob.typeText(wrong)
	bob.keys("Enter")
	alice.waitScreen(tuiWrongCode, 30*time.Second)
	bob.waitScreen(tuiWrongCode, 30*time.Second)
	for _, term := range []*terminal{alice, bob} {
		term.waitScreen(regexp.MustCompile(`n to start again`), 5*time.Second)
	}

	alice.keys("n")
	alice.waitScreen(tuiLanding, 30*time.Second)
	second := alice.newCode()
	bob.keys("n")
	bob.waitScreen(tuiLanding, 30*time.Second)
	joinWithCode(t, alice, bob, second) // the pairing works
	alice.quit()
	bob.waitScreen(regexp.MustCompile(`Your peer closed the session`), 15*time.Second)
	bob.quit()
}

// Joining a nameplate nobody is on says so; a third person with a code
// already used hears the same (the server has forgotten the nameplate:
// it cannot tell a used code from a new one), with what that may mean;
// and one whose code's nameplate two others hold hears the server's
// "crowded", as a spoiled code.
func TestNewcomerConnNobodyAndUsedCode(t *testing.T) {
	mailbox := startMailbox(t)
	alice, bob, carol := startTerminal(t, "alice"), startTerminal(t, "bob"), startTerminal(t, "carol")

	carol.startGanderWithCode(mailbox.URL, "9-adroitness-aardvark")
	carol.waitScreen(tuiNobody, 30*time.Second)
	carol.keys("C-c")
	carol.assertCleanAfterExit("Nobody is on")

	alice.startGanderApp(mailbox.URL)
	code := alice.newCode()
	// Bob joins a nameplate Alice is on: no hint.
	bob.startGanderWithCode(mailbox.URL, code)
	if a, b := alice.verifier(), bob.verifier(); a != b {
		t.Fatalf("the verifiers differ: alice %q, bob %q", a, b)
	}
	if strings.Contains(bob.screen(), "Nobody is on") {
		t.Errorf("bob was told nobody was there:\n%s", bob.screen())
	}
	// Carol comes third with the same code.
	carol.startGanderWithCode(mailbox.URL, code)
	carol.waitScreen(tuiNobody, 30*time.Second)
	carol.keys("C-c")
	carol.assertCleanAfterExit("Nobody is on")
	alice.quit()
	bob.waitScreen(regexp.MustCompile(`Your peer closed the session`), 15*time.Second)
	bob.quit()

	// Alice allocates again; a stranger claims her nameplate (as a second
	// person would while typing the code); Carol, third, is told by the
	// server the nameplate is crowded.
	alice.startGanderApp(mailbox.URL)
	alice.keys("Enter")
	code = alice.waitScreen(tuiCode, 30*time.Second)[1]
	nameplate, _, _ := strings.Cut(code, "-")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := dialStranger(t, ctx, mailbox.URL)
	s.send(t, map[string]any{"type": "bind", "appid": forwards.AppID, "side": "5ec0d51de0"})
	s.send(t, map[string]any{"type": "claim", "nameplate": nameplate})
	var claimed struct{ Mailbox string }
	json.Unmarshal(s.await(t, "claimed"), &claimed)
	carol.startGanderWithCode(mailbox.URL, code)
	carol.waitScreen(regexp.MustCompile(`This code is spoiled\.`), 30*time.Second)
	carol.waitScreen(wrapped("nameplate "+nameplate+" is crowded: two other sides already use it, so someone else used this code"), 5*time.Second)
	carol.keys("q")
	carol.assertCleanAfterExit("This code is spoiled.")
	alice.keys("C-c")
	alice.assertCleanAfterExit("Verifier")
}

// An unreachable mailbox server at the start: the app says so in words,
// not the dialer's text, and n tries again, finding the server once it
// is there.
func TestNewcomerConnMailboxUnreachableAtStart(t *testing.T) {
	port := freePort(t)
	mailbox := &mailboxServer{dir: t.TempDir(), port: port}
	mailbox.Addr = "127.0.0.1:" + strconv.Itoa(port)
	mailbox.URL = "ws://" + mailbox.Addr + "/v1"
	alice := startTerminal(t, "alice")
	alice.run("gander --mailbox " + mailbox.URL + " --relay tcp:127.0.0.1:1")
	alice.waitScreen(regexp.MustCompile(`Cannot reach the mailbox server\.`), 30*time.Second)
	alice.waitScreen(wrapped("cannot reach the mailbox server at "+mailbox.URL+" (connection refused: nothing listens there): check the address (--mailbox) and the network"), 5*time.Second)
	for _, raw := range []string{"dial tcp", "WebSocket", "Get \""} {
		if strings.Contains(alice.screen(), raw) {
			t.Errorf("the screen shows the dialer's %q:\n%s", raw, alice.screen())
		}
	}
	mailbox.start(t)
	alice.keys("n")
	alice.waitScreen(tuiLanding, 30*time.Second)
	alice.waitScreen(tuiServerUp, 10*time.Second)
	alice.keys("C-c")
	alice.assertCleanAfterExit("Type the code")
}
