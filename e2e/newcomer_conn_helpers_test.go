package e2e

import (
	"regexp"
	"strconv"
	"testing"
	"time"
)

// tuiQuitQuestion is the app asking before a quit would stop something.
var tuiQuitQuestion = regexp.MustCompile(`quit\? (.*) would stop \(y/N\)`)

// confirmQuitIfAsked answers y if the app asks before quitting, within
// a moment of q; an app with nothing to lose has quit or is closing.
func (term *terminal) confirmQuitIfAsked() {
	term.t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		s := term.screen()
		if tuiQuitQuestion.MatchString(s) {
			term.keys("y")
			return
		}
		if atPrompt.MatchString(s) || regexp.MustCompile(`closing…`).MatchString(s) {
			return
		}
	}
}

// stop stops the mailbox server (its clients' websockets drop and their
// reconnections are refused) until start.
func (s *mailboxServer) stop() { s.proc.stop() }

// start starts a stopped server again on its port, with its database.
func (s *mailboxServer) start(t testing.TB) {
	t.Helper()
	p, err := startTwist(t, s.dir, s.port, s.args(strconv.Itoa(s.port))...)
	if err != nil {
		t.Fatalf("starting the mailbox server again on %s: %v", s.Addr, err)
	}
	s.proc = p
}
