package main

import (
	"net"
	"strings"
	"testing"
)

// An unreachable mailbox server at the start is one sentence for a
// person, not the dialer's text; the help says --send is for a gander
// peer and names the command for `wormhole receive`.
func TestUnreachableMailboxAndSendHelp(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "ws://" + l.Addr().String() + "/v1"
	l.Close()
	var stdout, stderr strings.Builder
	status := run(t.Context(), []string{"--no-tui", "--mailbox", url, "--remote", "web:8000", "--log", t.TempDir() + "/log"},
		strings.NewReader(""), &stdout, &stderr)
	want := "gander: cannot reach the mailbox server at " + url +
		" (connection refused: nothing listens there): check the address (--mailbox) and the network\n"
	if status != 1 || stderr.String() != want {
		t.Errorf("status %d, stderr %q; want 1, %q", status, stderr.String(), want)
	}

	stdout.Reset()
	run(t.Context(), []string{"--help"}, strings.NewReader(""), &stdout, &stderr)
	if !strings.Contains(stdout.String(), `(a gander peer only: for "wormhole receive" and`) ||
		!strings.Contains(stdout.String(), `other wormhole clients use "gander send PATH")`) {
		t.Errorf("the help does not say what --send is not for:\n%s", stdout.String())
	}
}
