package session

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gander-pair/gander/session/transfer"
)

// A person refusing, the configuration refusing and nobody answering are
// said differently on both sides.
func TestRefusalsSayWho(t *testing.T) {
	for _, tt := range []struct {
		name       string
		recv       Config
		answer     bool // refuse the offer by command
		wantKind   transfer.RefusalKind
		sender     string
		receiver   string // "": no event expected on the receiver
		wantOffers bool
	}{
		{"by the person", Config{AskPeer: true}, true, transfer.RefusalByUser,
			"the peer refused x.txt", "you refused x.txt", true},
		{"by the configuration", Config{}, false, transfer.RefusalPolicy,
			"x.txt: the peer does not accept files (it was started without --accept-files)",
			"refused x.txt: files are not accepted here (start gander with --accept-files, or without --no-tui)", false},
		{"nobody answered", Config{AskFiles: true, FileAnswerTimeout: 300 * time.Millisecond}, false, transfer.RefusalTimeout,
			"nobody answered x.txt on the peer's side: not answered within 300ms",
			"refused x.txt: not answered within 300ms", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.recv.SaveDir = t.TempDir()
			sender, receiver, sendCmds, recvCmds := twoSessions(t, tt.recv)
			path := filepath.Join(t.TempDir(), "x.txt")
			os.WriteFile(path, []byte("x"), 0o644)
			sendCmds <- SendFiles{Paths: []string{path}}
			if tt.wantOffers {
				offered := waitEvent[TransferOffered](t, receiver)
				if tt.answer {
					recvCmds <- RefuseTransfer{ID: offered.ID}
				}
			}
			sent := waitEvent[TransferFinished](t, sender)
			var refused *transfer.RefusedError
			if !errors.As(sent.Err, &refused) || refused.Kind != tt.wantKind {
				t.Fatalf("the sender saw %#v, want a refusal of kind %v", sent.Err, tt.wantKind)
			}
			if got := sent.Summary(); got != tt.sender {
				t.Errorf("sender: %q, want %q", got, tt.sender)
			}
			got := waitEvent[TransferFinished](t, receiver)
			var here *RefusedHereError
			if !errors.As(got.Err, &here) || here.Kind != tt.wantKind {
				t.Fatalf("the receiver saw %#v", got.Err)
			}
			if s := got.Summary(); s != tt.receiver {
				t.Errorf("receiver: %q, want %q", s, tt.receiver)
			}
		})
	}
}

// While the peer decides, the sender's transfer says so, with the real
// size; once accepted, it is no longer waiting.
func TestSendWaitsWithTheRealSize(t *testing.T) {
	sender, receiver, sendCmds, recvCmds := twoSessions(t, Config{AskPeer: true, SaveDir: t.TempDir()})
	path := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(path, make([]byte, 12345), 0o644)
	sendCmds <- SendFiles{Paths: []string{path}}
	offered := waitEvent[TransferOffered](t, receiver)
	first := waitEvent[TransferProgress](t, sender)
	if !first.Waiting || first.Size != 12345 || first.Files != 1 || first.Done != 0 {
		t.Fatalf("first progress %+v, want waiting with the size", first)
	}
	recvCmds <- AcceptTransfer{ID: offered.ID}
	waitEvent[TransferFinished](t, sender)
	for _, p := range eventsOf[TransferProgress](sender) {
		if p.Size != 12345 {
			t.Errorf("progress %+v: size", p)
		}
		if p != first && p.Waiting {
			t.Errorf("progress %+v after accepting still waits", p)
		}
	}
}

// A folder that is missing is reported, not fatal: the person creates it
// (Create) and the same offer arrives there. "~" is the home directory.
func TestAcceptIntoMissingFolder(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	sender, receiver, sendCmds, recvCmds := twoSessions(t, Config{AskPeer: true, SaveDir: t.TempDir()})
	path := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(path, []byte("hello"), 0o644)
	sendCmds <- SendFiles{Paths: []string{path}}
	offered := waitEvent[TransferOffered](t, receiver)
	recvCmds <- AcceptTransfer{ID: offered.ID, Dir: "~/incoming"}
	failed := waitEvent[TransferFolderFailed](t, receiver)
	want := filepath.Join(home, "incoming")
	if failed.Dir != want || !failed.Missing || failed.Offer.ID != offered.ID {
		t.Fatalf("folder failed %+v, want %s missing", failed, want)
	}
	recvCmds <- AcceptTransfer{ID: offered.ID, Dir: "~/incoming", Create: true}
	got := waitEvent[TransferFinished](t, receiver)
	if got.Err != nil || got.SavedAs != filepath.Join(want, "notes.txt") {
		t.Fatalf("received %+v", got)
	}
	if sent := waitEvent[TransferFinished](t, sender); sent.Err != nil {
		t.Fatalf("sent: %v", sent.Err)
	}
}

func eventsOf[T Event](r *recorder) []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []T
	for _, e := range r.events {
		if v, ok := e.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func TestTransferSummaries(t *testing.T) {
	for _, tt := range []struct {
		ev   TransferFinished
		want string
	}{
		{TransferFinished{Name: "a", Outgoing: true}, "sent a"},
		{TransferFinished{Name: "a"}, "received a"},
		{TransferFinished{Name: "a", Outgoing: true, Err: &transfer.RefusedError{Reason: "refused here"}}, "the peer refused a: refused here"},
		{TransferFinished{Name: "a", Outgoing: true, Err: &transfer.RefusedError{Kind: transfer.RefusalLimit, Reason: "too large"}},
			"the peer cannot take a: too large"},
		{TransferFinished{Name: "a", Outgoing: true, Err: &transfer.CanceledError{Reason: "could not save: no space left on device", ByPeer: true}},
			"the peer could not save a: no space left on device"},
		{TransferFinished{Name: "a", Outgoing: true, Err: &transfer.CanceledError{Reason: "nothing received for 1m0s", ByPeer: true}},
			"the peer stopped a: nothing received for 1m0s"},
		{TransferFinished{Name: "a", Err: &fs.PathError{Op: "write", Path: "/x/.a.gander-partial-1", Err: syscall.ENOSPC}},
			"receiving a failed: write: no space left on device"},
		{TransferFinished{Name: "a", Err: errors.New("transfer: digest mismatch")}, "receiving a failed: transfer: digest mismatch"},
		{TransferFinished{Name: "a\x1b[2J", Err: ErrOfferWithdrawn}, "the peer withdrew its offer of a\uFFFD[2J"},
	} {
		if got := tt.ev.Summary(); got != tt.want {
			t.Errorf("%+v: %q, want %q", tt.ev, got, tt.want)
		}
	}
}

// With --accept-files and a save folder that is gone, the offer is
// refused as unsaveable (not left hanging), and both sides say so.
func TestAcceptFilesIntoMissingFolderRefuses(t *testing.T) {
	saveDir := filepath.Join(t.TempDir(), "gone")
	sender, receiver, sendCmds, _ := twoSessions(t, Config{AcceptFiles: true, SaveDir: saveDir})
	path := filepath.Join(t.TempDir(), "x.txt")
	os.WriteFile(path, []byte("x"), 0o644)
	sendCmds <- SendFiles{Paths: []string{path}}
	sent := waitEvent[TransferFinished](t, sender)
	if kind, ok := Refusal(sent.Err); !ok || kind != RefusalCannotSave {
		t.Fatalf("the sender saw %v", sent.Err)
	}
	if got := sent.Summary(); got != "the peer cannot save x.txt: cannot save files here" {
		t.Errorf("sender: %q", got)
	}
	if got := waitEvent[TransferFinished](t, receiver); got.Summary() != "refused x.txt: cannot save files here" {
		t.Errorf("receiver: %q", got.Summary())
	}
}

// A frontend's refusal for a limit reaches the sender as a limit, not as
// the person's no.
func TestRefuseTransferForALimit(t *testing.T) {
	sender, receiver, sendCmds, recvCmds := twoSessions(t, Config{AskPeer: true, SaveDir: t.TempDir()})
	path := filepath.Join(t.TempDir(), "x.txt")
	os.WriteFile(path, []byte("x"), 0o644)
	sendCmds <- SendFiles{Paths: []string{path}}
	recvCmds <- RefuseTransfer{ID: waitEvent[TransferOffered](t, receiver).ID, Limit: true, Reason: "too many offers waiting for an answer"}
	if got := waitEvent[TransferFinished](t, sender).Summary(); got != "the peer cannot take x.txt: too many offers waiting for an answer" {
		t.Errorf("sender: %q", got)
	}
}
