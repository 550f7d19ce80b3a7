package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gander-pair/gander/session/transfer"
	"github.com/gander-pair/gander/wormhole/mailbox/mailboxtest"
)

// twoSessions connects a sender and a receiver configured by recv and
// returns their events and command channels.
func twoSessions(t *testing.T, recv Config) (sender, receiver *recorder, sendCmds, recvCmds chan Command) {
	t.Helper()
	server := mailboxtest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	checkNoLeaks(t)
	t.Cleanup(func() { cancel(); wg.Wait() })
	sender, receiver = newRecorder(), newRecorder()
	sendCmds, recvCmds = make(chan Command, 8), make(chan Command, 8)
	sendCmds <- AllocateCode{}
	wg.Add(2)
	go func() {
		defer wg.Done()
		Run(ctx, Config{MailboxURL: server.URL(), CodeLength: 2, CloseTimeout: time.Second}, sendCmds, sender.emit)
	}()
	recv.MailboxURL, recv.Code, recv.CloseTimeout = server.URL(), waitEvent[CodeReady](t, sender).Code, time.Second
	go func() {
		defer wg.Done()
		Run(ctx, recv, recvCmds, receiver.emit)
	}()
	waitEvent[PeerConnected](t, sender)
	waitEvent[PeerConnected](t, receiver)
	return sender, receiver, sendCmds, recvCmds
}

func TestSendFileAskedAndAccepted(t *testing.T) {
	saveDir, otherDir := t.TempDir(), t.TempDir()
	sender, receiver, sendCmds, recvCmds := twoSessions(t, Config{AskPeer: true, SaveDir: saveDir})
	content := make([]byte, 3<<20)
	rand.Read(content)
	path := filepath.Join(t.TempDir(), "notes.bin")
	os.WriteFile(path, content, 0o644)

	sendCmds <- SendFiles{Paths: []string{path}}
	offered := waitEvent[TransferOffered](t, receiver)
	if offered.Name != "notes.bin" || offered.Size != int64(len(content)) || offered.Directory || offered.SaveDir != saveDir {
		t.Fatalf("offered %+v", offered)
	}
	if entries, _ := os.ReadDir(otherDir); len(entries) != 0 {
		t.Fatal("written before the answer")
	}
	recvCmds <- AcceptTransfer{ID: offered.ID, Dir: otherDir}
	got := waitEvent[TransferFinished](t, receiver)
	if got.Err != nil || got.SavedAs != filepath.Join(otherDir, "notes.bin") {
		t.Fatalf("received: %+v", got)
	}
	if data, _ := os.ReadFile(got.SavedAs); !bytes.Equal(data, content) {
		t.Fatal("the received file differs")
	}
	if sent := waitEvent[TransferFinished](t, sender); sent.Err != nil || !sent.Outgoing {
		t.Fatalf("sent: %+v", sent)
	}
}

func TestSendFileRefused(t *testing.T) {
	sender, receiver, sendCmds, recvCmds := twoSessions(t, Config{AskPeer: true, SaveDir: t.TempDir()})
	path := filepath.Join(t.TempDir(), "x.txt")
	os.WriteFile(path, []byte("x"), 0o644)
	sendCmds <- SendFiles{Paths: []string{path}}
	recvCmds <- RefuseTransfer{ID: waitEvent[TransferOffered](t, receiver).ID}
	var refused *transfer.RefusedError
	if sent := waitEvent[TransferFinished](t, sender); !errors.As(sent.Err, &refused) {
		t.Fatalf("the sender saw %v, want a refusal", sent.Err)
	}
}

func TestFilesRefusedWithoutAskingOrAccepting(t *testing.T) {
	saveDir := t.TempDir()
	sender, _, sendCmds, _ := twoSessions(t, Config{SaveDir: saveDir})
	path := filepath.Join(t.TempDir(), "x.txt")
	os.WriteFile(path, []byte("x"), 0o644)
	sendCmds <- SendFiles{Paths: []string{path}}
	var refused *transfer.RefusedError
	if sent := waitEvent[TransferFinished](t, sender); !errors.As(sent.Err, &refused) || refused.Reason != refusedReason {
		t.Fatalf("the sender saw %v, want a refusal", sent.Err)
	}
	if entries, _ := os.ReadDir(saveDir); len(entries) != 0 {
		t.Fatalf("wrote %v", entries)
	}
}

// Either side can cancel a transfer under way; both see it canceled and
// nothing is left in the save directory.
func TestCancelTransferEitherSide(t *testing.T) {
	for _, by := range []string{"sender", "receiver"} {
		t.Run(by, func(t *testing.T) {
			saveDir := t.TempDir()
			sender, receiver, sendCmds, recvCmds := twoSessions(t, Config{AskPeer: true, SaveDir: saveDir})
			path := filepath.Join(t.TempDir(), "big.bin")
			f, _ := os.Create(path)
			f.Truncate(1 << 30) // sparse: quick to make, slow enough to send
			f.Close()
			sendCmds <- SendFiles{Paths: []string{path}}
			offered := waitEvent[TransferOffered](t, receiver)
			recvCmds <- AcceptTransfer{ID: offered.ID}
			// The sender announces its transfer before the offer is even
			// answered; only data reaching the receiver proves both sides
			// are under way, so that cancelling is not a withdrawal or a
			// refusal instead.
			waitEvent[TransferProgress](t, receiver)
			progress := waitEvent[TransferProgress](t, sender)
			if by == "sender" {
				sendCmds <- CancelTransfer{ID: progress.ID}
			} else {
				recvCmds <- CancelTransfer{ID: offered.ID}
			}
			for side, r := range map[string]*recorder{"sender": sender, "receiver": receiver} {
				var canceled *transfer.CanceledError
				if done := waitEvent[TransferFinished](t, r); !errors.As(done.Err, &canceled) || canceled.ByPeer == (side == by) {
					t.Errorf("%s: finished with %v, want canceled (by peer: %v)", side, done.Err, side != by)
				}
			}
			if entries, _ := os.ReadDir(saveDir); len(entries) != 0 {
				t.Errorf("left %v", entries)
			}
		})
	}
}
