package session

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/gander-pair/gander/dilation/dilationtest"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gander-pair/gander/dilation"
	"github.com/gander-pair/gander/forwards"
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
		runSession(ctx, Config{MailboxURL: server.URL(), CodeLength: 2, CloseTimeout: time.Second}, sendCmds, sender.emit)
	}()
	recv.MailboxURL, recv.Code, recv.CloseTimeout = server.URL(), waitEvent[CodeReady](t, sender).Code, time.Second
	go func() {
		defer wg.Done()
		runSession(ctx, recv, recvCmds, receiver.emit)
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

// waitEvents waits for n events of type T and returns them in order.
func waitEvents[T Event](t *testing.T, r *recorder, n int) []T {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		var got []T
		r.mu.Lock()
		for _, e := range r.events {
			if v, ok := e.(T); ok {
				got = append(got, v)
			}
		}
		r.mu.Unlock()
		if len(got) >= n {
			return got[:n]
		}
		select {
		case <-r.signal:
		case <-deadline:
			var zero T
			t.Fatalf("%d %T events of %d; got %v", len(got), zero, n, r.events)
		}
	}
}

// --accept-files takes what fits the per-offer and per-session limits
// and refuses the rest with a reason the sender reads (issue 11,
// finding 7).
func TestAcceptFilesWithinLimits(t *testing.T) {
	saveDir := t.TempDir()
	sender, receiver, sendCmds, _ := twoSessions(t, Config{AcceptFiles: true, SaveDir: saveDir,
		FileLimits: FileLimits{MaxFileSize: 1000, MaxSessionBytes: 1500}})
	src := t.TempDir()
	for name, size := range map[string]int{"big": 2000, "a": 800, "b": 800} {
		os.WriteFile(filepath.Join(src, name), make([]byte, size), 0o644)
	}
	for i, tc := range []struct{ name, refusal string }{
		{"big", "too large: 2.0 KiB, the limit is 1000 B"},
		{"a", ""},
		{"b", "over this session's limit: 800 B offered, 700 B of 1.5 KiB left"},
	} {
		sendCmds <- SendFiles{Paths: []string{filepath.Join(src, tc.name)}}
		sent := waitEvents[TransferFinished](t, sender, i+1)[i]
		got := waitEvents[TransferFinished](t, receiver, i+1)[i]
		var refused *transfer.RefusedError
		var here *RefusedHereError
		switch {
		case tc.refusal == "" && (sent.Err != nil || got.Err != nil):
			t.Fatalf("%s: sent %v, received %v", tc.name, sent.Err, got.Err)
		case tc.refusal != "" && (!errors.As(sent.Err, &refused) || refused.Reason != tc.refusal):
			t.Fatalf("%s: the sender saw %v, want refused: %s", tc.name, sent.Err, tc.refusal)
		case tc.refusal != "" && (!errors.As(got.Err, &here) || here.Reason != tc.refusal):
			t.Fatalf("%s: the receiver saw %v, want refused here: %s", tc.name, got.Err, tc.refusal)
		}
	}
	accepted := waitEvent[TransferAccepted](t, receiver)
	if accepted.Name != "a" || accepted.MaxSize != 1000 || accepted.SessionLeft != 700 || accepted.Dir != saveDir {
		t.Fatalf("accepted %+v", accepted)
	}
	if names, _ := os.ReadDir(saveDir); len(names) != 1 || names[0].Name() != "a" {
		t.Fatalf("saved %v, want only a", names)
	}
}

// Partial files a killed gander left in the save directory are removed,
// and reported, when this session first saves there (finding 10).
func TestStalePartialsRemovedOnFirstAccept(t *testing.T) {
	saveDir := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := ".x.bin.gander-partial-" + strconv.Itoa(dead.Process.Pid) + "-4242-0123abcd"
	os.WriteFile(filepath.Join(saveDir, stale), []byte("half"), 0o644)
	_, receiver, sendCmds, _ := twoSessions(t, Config{AcceptFiles: true, SaveDir: saveDir})
	path := filepath.Join(t.TempDir(), "x.bin")
	os.WriteFile(path, []byte("whole"), 0o644)
	sendCmds <- SendFiles{Paths: []string{path}}
	removed := waitEvent[PartialsRemoved](t, receiver)
	if removed.Dir != saveDir || len(removed.Removed) != 1 || removed.Removed[0] != stale {
		t.Fatalf("removed %+v, want %s", removed, stale)
	}
	if got := waitEvent[TransferFinished](t, receiver); got.Err != nil {
		t.Fatal(got.Err)
	}
	if names, _ := os.ReadDir(saveDir); len(names) != 1 || names[0].Name() != "x.bin" {
		t.Fatalf("save dir holds %v", names)
	}
}

// Offers that end before the user sees them get at most maxOfferNotices
// events a second; the rest are counted for one TransfersRefused.
func TestOfferNoticesAreBounded(t *testing.T) {
	var f fileTransfers
	shown := 0
	for range 1000 {
		if f.notice() {
			shown++
		}
	}
	if refused, unnoticed := f.takeRefused(); shown != maxOfferNotices || unnoticed != 1000-maxOfferNotices || refused != 0 {
		t.Fatalf("%d shown, %d counted, %d refused; want %d shown and the rest counted", shown, unnoticed, refused, maxOfferNotices)
	}
	f.noticesSince = f.noticesSince.Add(-refusalReportInterval) // a second later
	if !f.notice() {
		t.Fatal("no notice allowed in the next interval")
	}
}

// oneSessionAndAFakePeer runs a receiving session configured by recv
// against a fake gander peer, built on the wormhole and dilation packages,
// that the test drives by hand; it returns the session's events and the
// peer's connection.
func oneSessionAndAFakePeer(t *testing.T, recv Config) (*recorder, *dilation.Conn) {
	t.Helper()
	receiver, conn, _ := oneSessionAndAFakePeerWith(t, recv, AppVersions())
	return receiver, conn
}

// oneSessionAndAFakePeerWith is oneSessionAndAFakePeer with a fake peer
// that advertises versions; early are given before the peer comes, and
// commands sent later go to the session.
func oneSessionAndAFakePeerWith(t *testing.T, recv Config, versions map[string]any, early ...Command) (*recorder, *dilation.Conn, chan<- Command) {
	t.Helper()
	server := mailboxtest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	checkNoLeaks(t)
	t.Cleanup(func() { cancel(); wg.Wait() })
	receiver := newRecorder()
	cmds := make(chan Command, 4+len(early))
	cmds <- AllocateCode{}
	for _, cmd := range early {
		cmds <- cmd
	}
	recv.MailboxURL, recv.CodeLength, recv.CloseTimeout = server.URL(), 2, time.Second
	wg.Add(1)
	go func() {
		defer wg.Done()
		runSession(ctx, recv, cmds, receiver.emit)
	}()
	code := waitEvent[CodeReady](t, receiver).Code
	w, _ := dilationtest.Join(t, code, dilationtest.Mailbox(server.URL()), dilationtest.App(forwards.AppID, versions))
	conn := dilationtest.Dilate(t, w, dilation.Config{})
	fw, err := forwards.Start(conn, forwards.Config{Policy: forwards.NewPolicy(nil), PeerIsGander: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fw.Close() })
	waitEvent[PeerConnected](t, receiver)
	return receiver, conn, cmds
}

// offerFrame is a gander-files OFFER of one file, as PROTOCOL.md encodes it.
func offerFrame(name string, size int64) []byte {
	str := func(b []byte, s string) []byte { return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...) }
	body := binary.BigEndian.AppendUint64([]byte{1}, uint64(size))
	body = binary.BigEndian.AppendUint64(body, 1)
	body = binary.BigEndian.AppendUint64(body, 0)
	body = str(str(body, "sha256"), name)
	return append(binary.BigEndian.AppendUint32([]byte{1}, uint32(len(body))), body...)
}

// readFrame reads one gander-files frame: its type and body.
func readFrame(r io.Reader) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	body := make([]byte, min(binary.BigEndian.Uint32(h[1:]), 8192))
	_, err := io.ReadFull(r, body)
	return h[0], body, err
}

// A peer that offers, is accepted and then sends nothing is stopped after
// the idle timeout: both sides hear why, and the partial file goes
// (finding 6b).
func TestStalledOfferTimesOutInASession(t *testing.T) {
	saveDir := t.TempDir()
	receiver, peer := oneSessionAndAFakePeer(t, Config{AcceptFiles: true, SaveDir: saveDir,
		FileLimits: FileLimits{IdleTimeout: 300 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sc, err := peer.Open(ctx, transfer.Subprotocol)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	sc.Write(offerFrame("stall.bin", 1<<20))
	if typ, _, err := readFrame(sc); err != nil || typ != 2 {
		t.Fatalf("the offer got frame %d, %v; want an ACCEPT", typ, err)
	}
	waitEvent[TransferAccepted](t, receiver)
	typ, body, err := readFrame(sc)
	if err != nil || typ != 8 || string(body[2:]) != "nothing received for 300ms" {
		t.Fatalf("then frame %d %q, %v; want a CANCEL saying why", typ, body, err)
	}
	sc.Close() // as an honest peer does on CANCEL
	var timeout *transfer.TimeoutError
	if done := waitEvent[TransferFinished](t, receiver); !errors.As(done.Err, &timeout) {
		t.Fatalf("finished with %v, want a timeout", done.Err)
	}
	if names, _ := os.ReadDir(saveDir); len(names) != 0 {
		t.Fatalf("left %v", names)
	}
}

// Beyond 4 running and 16 waiting offers, the peer's offers are refused
// unread with the reason, and summed up in one event (finding 6b).
func TestOfferFloodIsRefusedInASession(t *testing.T) {
	saveDir := t.TempDir()
	receiver, peer := oneSessionAndAFakePeer(t, Config{AcceptFiles: true, SaveDir: saveDir})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const offers = 100
	answers := make(chan byte, offers)
	for i := range offers {
		sc, err := peer.Open(ctx, transfer.Subprotocol)
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		sc.Write(offerFrame(fmt.Sprintf("f%d", i), 1<<20))
		go func() {
			typ, body, _ := readFrame(sc)
			if typ == 3 && string(body[2:]) != busyReason {
				typ = 0
			}
			answers <- typ
		}()
	}
	got := map[byte]int{}
	for range offers - maxIncomingWaiting { // the waiting ones get no answer
		select {
		case a := <-answers:
			got[a]++
		case <-ctx.Done():
			t.Fatalf("answers so far: %v", got)
		}
	}
	if got[2] != maxIncomingRunning || got[3] != offers-maxIncomingRunning-maxIncomingWaiting {
		t.Fatalf("answers %v; want %d ACCEPT and the rest REFUSE for being busy", got, maxIncomingRunning)
	}
	refused := 0
	for _, ev := range waitEvents[TransfersRefused](t, receiver, 1) {
		refused += ev.Count
	}
	if refused == 0 {
		t.Fatal("the refusals are not reported")
	}
	entries, _ := os.ReadDir(saveDir)
	if len(entries) != maxIncomingRunning {
		t.Fatalf("%d partial files, want %d", len(entries), maxIncomingRunning)
	}
}
