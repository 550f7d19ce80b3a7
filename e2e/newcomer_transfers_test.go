package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Issue 14's file-transfer items, driven as the newcomers did: two gander
// apps in tmux (keys in, screens read), and a controller driving
// gander --json.

// notesSize is the test file's size, shown as "12 kB".
const notesSize = 12_345

// sendTyped opens the send prompt and types path (relative to the
// shell's directory, the terminal's home), completing it with Tab after
// its first letters.
func (term *terminal) sendTyped(path string) {
	term.t.Helper()
	term.keys("s")
	term.waitScreen(regexp.MustCompile(`Send files to your peer`), 10*time.Second)
	term.typeText(path[:3])
	term.keys("Tab")
	term.waitScreen(regexp.MustCompile(`> `+regexp.QuoteMeta(path)+`\s`), 10*time.Second)
	term.keys("Enter")
}

func writeNotes(t *testing.T, dir string) []byte {
	t.Helper()
	content := bytes.Repeat([]byte("notes for the peer\n"), notesSize/19+1)[:notesSize]
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	return content
}

func noneOf(t *testing.T, who, screen string, words ...string) {
	t.Helper()
	for _, w := range words {
		if strings.Contains(screen, w) {
			t.Errorf("%s's screen says %q:\n%s", who, w, screen)
		}
	}
}

var (
	offeredNotes = regexp.MustCompile(`Your peer offers a file: "notes\.txt" \(12 kB\)`)
	waitingNotes = regexp.MustCompile(`↑ sending notes\.txt\s+12 kB\s*\n\s+waiting for the peer to accept`)
)

// Items 3, 4, 5, 12 and 17 between two apps.
func TestNewcomerTransfersTUI(t *testing.T) {
	mailbox := startMailbox(t)
	alice, bob := startTerminal(t, "alice"), startTerminal(t, "bob")
	content := writeNotes(t, alice.home)
	if err := os.WriteFile(filepath.Join(bob.home, "afile"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pairGanderApps(t, mailbox.URL, alice, bob)
	confirmVerifiers(alice, bob)

	// 12, 5: a relative path, completed with Tab; while Bob decides,
	// Alice's row waits with the real size and no bar.
	alice.sendTyped("notes.txt")
	bob.waitScreen(offeredNotes, 30*time.Second)
	alice.waitScreen(waitingNotes, 10*time.Second)
	noneOf(t, "alice", alice.screen(), "0 B of 0 B", "█", "░")

	// 3: Bob refuses: each reads who refused.
	bob.keys("n")
	alice.waitScreen(regexp.MustCompile(`✗ the peer refused notes\.txt`), 30*time.Second)
	bob.waitScreen(regexp.MustCompile(`✗ you refused notes\.txt`), 10*time.Second)
	noneOf(t, "alice", alice.screen(), "refused here", "does not accept files", "failed")
	noneOf(t, "bob", bob.screen(), "refused here", "refused by peer", "failed")

	// 4: into another folder: a file is no folder, retyped; a missing
	// folder is offered to be made; ~ is Bob's home.
	alice.sendTyped("notes.txt")
	bob.waitScreen(offeredNotes, 30*time.Second)
	bob.keys("f")
	bob.waitScreen(regexp.MustCompile(`folder: `), 10*time.Second)
	bob.keys("C-u")
	bob.typeText("~/afile")
	bob.keys("Enter")
	bob.waitScreen(regexp.MustCompile(`~/afile is a file, not a folder`), 10*time.Second)
	bob.keys("C-u")
	bob.typeText("~/incoming")
	bob.keys("Enter")
	bob.waitScreen(regexp.MustCompile(`~/incoming does not exist yet: enter again creates it`), 10*time.Second)
	alice.waitScreen(waitingNotes, 10*time.Second) // nothing reached her
	bob.keys("Enter")
	bob.waitScreen(regexp.MustCompile(`✓ received notes\.txt`), 30*time.Second)
	alice.waitScreen(regexp.MustCompile(`✓ sent notes\.txt`), 30*time.Second)
	got, err := os.ReadFile(filepath.Join(bob.home, "incoming", "notes.txt"))
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("bob's copy in ~/incoming: %d bytes, %v", len(got), err)
	}
	noneOf(t, "alice", alice.screen(), "no such file", "canceled by peer", "open:")

	// 17: C clears the finished rows (the list hides when empty).
	alice.keys("C")
	deadline := time.Now().Add(10 * time.Second)
	for strings.Contains(alice.screen(), "✓ sent notes.txt") || strings.Contains(alice.screen(), "✗ the peer refused") {
		if time.Now().After(deadline) {
			t.Fatalf("C did not clear the finished transfers:\n%s", alice.screen())
		}
		time.Sleep(50 * time.Millisecond)
	}

	alice.quit()
	bob.waitScreen(regexp.MustCompile(`(?i)closed|peer.*(left|closed)`), 15*time.Second)
	bob.quit()
}

// Item 3's policy refusal: an app sends to a gander --no-tui that takes
// no files; both say it is the configuration, not a person.
func TestNewcomerTransfersPolicyRefusal(t *testing.T) {
	mailbox := startMailbox(t)
	carol := startTerminal(t, "carol")
	writeNotes(t, carol.home)
	carol.startGanderApp(mailbox.URL)
	carol.keys("Enter")
	code := carol.waitScreen(tuiCode, 30*time.Second)[1]
	peer := startGander(t, mailbox.URL, "--no-tui", "--allow-listen", "nothing-here", code)
	carol.verifier()
	carol.keys("v")
	carol.sendTyped("notes.txt")
	carol.waitScreen(regexp.MustCompile(`✗ notes\.txt: the peer does not accept files \(it was started without --accept-files\)`), 30*time.Second)
	peer.waitFor(t, regexp.MustCompile(`Refused notes\.txt: files are not accepted here`), 10*time.Second)
	noneOf(t, "carol", carol.screen(), "the peer refused notes.txt")
	carol.quit()
}

// Item 6 (and 5's --json half): a controller sees transfer-offered and
// answers it with accept-file (into a folder it has made) and refuse-file;
// the sender's progress shows the size while waiting; --accept-files
// still accepts unasked.
func TestNewcomerTransfersJSON(t *testing.T) {
	mailbox := startMailbox(t)
	srcDir, saveDir := t.TempDir(), t.TempDir()
	content := writeNotes(t, srcDir)
	notes := filepath.Join(srcDir, "notes.txt")
	args := []string{"--json", "--mailbox", mailbox.URL, "--relay", "tcp:127.0.0.1:1"}
	sender := startProcess(t, srcDir, ganderBin(t), args...)
	receiver := startProcess(t, saveDir, ganderBin(t), append(args, "--save-dir", saveDir)...)
	for _, p := range []*process{sender, receiver} {
		waitEvent(t, p, "welcome", nil, 30*time.Second)
	}
	command(t, sender, `{"kind": "allocate-code", "length": 2}`)
	code := waitEvent(t, sender, "code-allocated", nil, 30*time.Second).str("code")
	command(t, receiver, `{"kind": "set-code", "code": "`+code+`"}`)
	for _, p := range []*process{sender, receiver} {
		waitEvent(t, p, "peer-connected", nil, 60*time.Second)
	}
	jsonStr := func(s string) string { b, _ := json.Marshal(s); return string(b) }

	// Accepted: first into a missing folder (reported, the offer waits),
	// then with create.
	command(t, sender, `{"kind": "send-file", "path": `+jsonStr(notes)+`}`)
	offer := waitEvent(t, receiver, "transfer-offered", nil, 30*time.Second)
	if offer.str("name") != "notes.txt" || offer.num("size") != notesSize || offer.str("save_dir") != saveDir {
		t.Fatalf("offered %v", offer)
	}
	waiting := waitEvent(t, sender, "transfer-progress", func(e event) bool { return e["waiting"] == true }, 10*time.Second)
	if waiting.num("size") != notesSize || waiting.num("bytes") != 0 {
		t.Errorf("the waiting offer: %v", waiting)
	}
	into := filepath.Join(saveDir, "new", "folder")
	command(t, receiver, `{"kind": "accept-file", "id": `+itoa(offer.num("id"))+`, "directory": `+jsonStr(into)+`}`)
	failed := waitEvent(t, receiver, "transfer-folder-failed", nil, 10*time.Second)
	if failed.num("id") != offer.num("id") || failed["missing"] != true || failed.str("directory") != into {
		t.Fatalf("folder failed: %v", failed)
	}
	command(t, receiver, `{"kind": "accept-file", "id": `+itoa(offer.num("id"))+`, "directory": `+jsonStr(into)+`, "create": true}`)
	saved := waitEvent(t, receiver, "transfer-finished", withID(offer.num("id")), 30*time.Second)
	if saved.str("saved_as") != filepath.Join(into, "notes.txt") {
		t.Fatalf("received: %v", saved)
	}
	if got, err := os.ReadFile(saved.str("saved_as")); err != nil || !bytes.Equal(got, content) {
		t.Fatalf("the received copy: %d bytes, %v", len(got), err)
	}
	sent := waitEvent(t, sender, "transfer-finished", withID(waiting.num("id")), 30*time.Second)
	if _, failed := sent["error"]; failed {
		t.Fatalf("sent: %v", sent)
	}

	// Refused: both sides say a person refused.
	command(t, sender, `{"kind": "send-file", "path": `+jsonStr(notes)+`}`)
	second := waitEvent(t, receiver, "transfer-offered", func(e event) bool { return e.num("id") != offer.num("id") }, 30*time.Second)
	command(t, receiver, `{"kind": "refuse-file", "id": `+itoa(second.num("id"))+`}`)
	refused := waitEvent(t, sender, "transfer-finished", func(e event) bool { return e.num("id") != waiting.num("id") }, 30*time.Second)
	if refused.str("refused") != "user" || refused.str("summary") != "the peer refused notes.txt" {
		t.Errorf("the sender's refusal: %v", refused)
	}
	here := waitEvent(t, receiver, "transfer-finished", withID(second.num("id")), 10*time.Second)
	if here.str("refused") != "user" || here.str("summary") != "you refused notes.txt" {
		t.Errorf("the receiver's refusal: %v", here)
	}
	events, _ := jsonLines(sender)
	for _, e := range events {
		if e.str("kind") == "transfer-progress" && e.num("size") != notesSize {
			t.Errorf("progress with size %d: %v", e.num("size"), e)
		}
	}
	for _, p := range []*process{sender, receiver} {
		command(t, p, `{"kind": "session-close", "timeout": 10}`)
	}
	for _, p := range []*process{sender, receiver} {
		p.wait(t, 30*time.Second)
	}

	// --accept-files: accepted unasked, no transfer-offered.
	autoDir := t.TempDir()
	auto := startProcess(t, autoDir, ganderBin(t), append(args, "--accept-files", "--save-dir", autoDir)...)
	waitEvent(t, auto, "welcome", nil, 30*time.Second)
	command(t, auto, `{"kind": "allocate-code", "length": 2}`)
	code = waitEvent(t, auto, "code-allocated", nil, 30*time.Second).str("code")
	startGander(t, mailbox.URL, "--no-tui", "--send", notes, code)
	done := waitEvent(t, auto, "transfer-finished", nil, 60*time.Second)
	if done.str("saved_as") != filepath.Join(autoDir, "notes.txt") || countKind(auto, "transfer-offered") != 0 {
		t.Fatalf("--accept-files: %v, %d offers asked", done, countKind(auto, "transfer-offered"))
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
