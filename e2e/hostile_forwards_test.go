package e2e

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A hostile fowl peer (e2e/hostile_forwards_peer.py: magic-wormhole's
// Dilation and fowl's own command protocol, made to misbehave) against a
// real gander process: what it can make gander spend is bounded, and it is
// told why when it reaches a bound.

// hostileReport is the peer's {"done": ...} line.
type hostileReport struct {
	Done      string
	Listening int
	Reasons   map[string]int
	Replies   int
	Closed    int
	Seconds   float64
}

var hostileDone = regexp.MustCompile(`(?m)^(\{"done".*\})$`)

// startHostilePeer joins gander's code and misbehaves as args say.
func startHostilePeer(t *testing.T, mailboxURL, code string, args ...string) *process {
	t.Helper()
	all := append([]string{"hostile_forwards_peer.py", "--mailbox", mailboxURL, "--code", code}, args...)
	return startProcess(t, ".", venvBin(t, "python"), all...)
}

func hostileResult(t *testing.T, peer *process, timeout time.Duration) hostileReport {
	t.Helper()
	line := peer.waitFor(t, hostileDone, timeout)[1]
	var r hostileReport
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	return r
}

// Finding 4 and 5: a peer asking again and again for the same name gets one
// listener, on a port it did not choose, and a reason for each repeat; and
// it gets at most 64 listeners in all.
func TestHostilePeerListenerFlood(t *testing.T) {
	mailbox := startMailbox(t)

	t.Run("the same name", func(t *testing.T) {
		g := startGander(t, mailbox.URL, "--no-tui", "--local", "web")
		code := g.waitFor(t, ganderCode, 30*time.Second)[1]
		peer := startHostilePeer(t, mailbox.URL, code, "--mode", "listen-flood", "--count", "100", "--port", "22")
		r := hostileResult(t, peer, 60*time.Second)
		if r.Listening != 1 || r.Reasons["Already listening for web"] != 99 {
			t.Fatalf("100 requests for web: %+v, want one listener and 99 refusals", r)
		}
		addrs := ganderListening.FindAllStringSubmatch(g.stdoutText(), -1)
		if len(addrs) != 1 || strings.HasSuffix(addrs[0][2], ":22") {
			t.Fatalf("gander listens on %v: want one listener, on a port of its own choosing", addrs)
		}
	})

	t.Run("distinct names", func(t *testing.T) {
		g := startGander(t, mailbox.URL, "--no-tui", "--allow-listen", "dev-*")
		code := g.waitFor(t, ganderCode, 30*time.Second)[1]
		peer := startHostilePeer(t, mailbox.URL, code, "--mode", "listen-flood", "--count", "100", "--name", "dev", "--distinct", "--port", "80")
		r := hostileResult(t, peer, 60*time.Second)
		if r.Listening != 64 || r.Reasons["Too many listeners for the peer (at most 64)"] != 36 {
			t.Fatalf("100 requests for distinct names: %+v, want 64 listeners and 36 refusals", r)
		}
		if strings.Contains(g.stdoutText(), ":80\n") {
			t.Fatalf("gander listened on the peer's privileged port:\n%s", g.stdoutText())
		}
	})
}

// Finding 6: subchannels that never send their request are bounded; those
// beyond the bound are told why at once.
func TestHostilePeerSilentSubchannels(t *testing.T) {
	mailbox := startMailbox(t)
	g := startGander(t, mailbox.URL, "--no-tui", "--local", "web")
	code := g.waitFor(t, ganderCode, 30*time.Second)[1]
	peer := startHostilePeer(t, mailbox.URL, code, "--mode", "silent", "--count", "300", "--settle", "2")
	r := hostileResult(t, peer, 60*time.Second)
	const want = "Too many subchannels waiting for their first message (at most 128)"
	if r.Reasons[want] != 300-128 || r.Replies != 300-128 {
		t.Fatalf("300 silent subchannels: %+v, want %d refused with %q", r, 300-128, want)
	}
	g.waitFor(t, regexp.MustCompile(regexp.QuoteMeta(want)), 10*time.Second)
}

// Finding 1: 60 frames of 11 bytes whose msgpack claims ~4 GB cost gander
// nothing to speak of (before, they took it from 0.5 to 10 GB).
func TestHostilePeerLengthBomb(t *testing.T) {
	mailbox := startMailbox(t)
	g := startGander(t, mailbox.URL, "--no-tui", "--local", "web")
	code := g.waitFor(t, ganderCode, 30*time.Second)[1]
	peer := startHostilePeer(t, mailbox.URL, code, "--mode", "bomb", "--count", "60", "--settle", "2")
	r := hostileResult(t, peer, 60*time.Second)
	if r.Closed != 0 {
		t.Logf("gander closed %d of the bombs' channels", r.Closed)
	}
	if peak := peakRSS(t, g); peak > 200<<20 {
		t.Fatalf("gander peaked at %d MiB after 60 length bombs", peak>>20)
	}
}
