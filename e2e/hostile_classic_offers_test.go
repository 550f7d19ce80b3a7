package e2e

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// Hostile classic senders (issue 16, "must show" 3): magic-wormhole
// 0.24's own wormhole and Transit, driven by e2e/hostile_classic_sender.py
// to offer what `wormhole send` never would, against
// `gander receive --accept-file -o DIR CODE`. Whatever arrives, nothing
// may be written outside DIR, nothing may be left in it, gander must fail
// with a reason the person can read, and the sender must be told.

var (
	jsonSent   = regexp.MustCompile(`\{"sent": \d+\}`)
	jsonEnding = regexp.MustCompile(`\{"(ack|error|closed)": .*\}`)
)

type hostileClassicCase struct {
	name string
	// receiverSays is what gander's stderr must say.
	receiverSays *regexp.Regexp
	// senderReads is what the sender's ack (or mailbox error) must say;
	// nil when the receiver may just close the connection.
	senderReads *regexp.Regexp
}

func TestHostileClassicOffers(t *testing.T) {
	cases := []hostileClassicCase{
		{"zip-slip", regexp.MustCompile(`unsafe name.*escapes the folder`), regexp.MustCompile(`unsafe name`)},
		{"absolute", regexp.MustCompile(`unsafe name.*absolute path`), regexp.MustCompile(`absolute path`)},
		{"symlink", regexp.MustCompile(`not a regular file.*symbolic link`), regexp.MustCompile(`symbolic link`)},
		{"lying-zip", regexp.MustCompile(`more data than the 10 bytes its header says`), regexp.MustCompile(`more data than`)},
		{"bomb", regexp.MustCompile(`too many bytes|compression ratio too high`), regexp.MustCompile(`too many bytes|zip bomb`)},
		{"lying-bomb", regexp.MustCompile(`more data than the 52428800 bytes its header says`), regexp.MustCompile(`more data than`)},
		// The receiver stops reading mid-stream and closes: the sender
		// sees the connection end, not yet a reason (classic sends no
		// ack record then).
		{"zip-more", regexp.MustCompile(`(?i)more (bytes|data) than`), nil},
		{"file-more", regexp.MustCompile(`(?i)more (bytes|data) than`), nil},
	}
	mailbox := startMailbox(t)
	relay := startRelay(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { hostileClassicOffer(t, mailbox.URL, relay.Hint, c) })
	}
}

func hostileClassicOffer(t *testing.T, mailboxURL, relayHint string, c hostileClassicCase) {
	root := t.TempDir()
	target := filepath.Join(root, "in")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	// Every escape aims at root, beside the target, where the test looks.
	sender := startProcess(t, ".", venvBin(t, "python"), "hostile_classic_sender.py",
		"--mailbox", mailboxURL, "--transit-helper", relayHint, "--case", c.name,
		"--escape", "../escaped.txt", "--absolute", filepath.Join(root, "absolute.txt"))
	code := sender.waitFor(t, jsonCode, 30*time.Second)[1]
	gander := startProcess(t, root, ganderBin(t), "receive", "--relay-url", mailboxURL,
		"--transit-helper", relayHint, "--hide-progress", "--accept-file", "-o", target, code)
	err := gander.wait(t, 90*time.Second)
	if err == nil {
		t.Errorf("gander receive succeeded on a hostile %s offer", c.name)
	}
	says := gander.stderrText()
	if !c.receiverSays.MatchString(says) {
		t.Errorf("gander's stderr does not match %q:\n%s", c.receiverSays, says)
	}
	ending := sender.waitFor(t, jsonEnding, 30*time.Second)[0]
	var end struct {
		Ack    map[string]any `json:"ack"`
		Error  *string        `json:"error"`
		Closed *string        `json:"closed"`
	}
	if err := json.Unmarshal([]byte(ending), &end); err != nil {
		t.Fatalf("sender's last report %q: %v", ending, err)
	}
	told := ""
	switch {
	case end.Ack != nil:
		told, _ = end.Ack["ack"].(string)
		if told == "ok" {
			t.Errorf("the sender was told ok: %s", ending)
		}
	case end.Error != nil:
		told = *end.Error
	}
	t.Logf("gander: %q; the sender: %s", lastLine(says), ending)
	if c.senderReads != nil && !c.senderReads.MatchString(told) {
		t.Errorf("the sender read %s, not %q", ending, c.senderReads)
	}
	sender.closeStdin(t)
	sender.wait(t, 30*time.Second)

	var found []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && p != root {
			rel, _ := filepath.Rel(root, p)
			found = append(found, rel)
		}
		return nil
	})
	if !slices.Equal(found, []string{"in"}) {
		t.Errorf("after the refusal %s holds %q, want only the empty target \"in\"", root, found)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
