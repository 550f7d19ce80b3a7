package transfer

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gander-pair/gander/internal/testkit"
)

// Findings 6b, 7 and 10 of issue 11: a peer that stalls, offers too
// much, or a crash that leaves partial files behind.

// shorten sets *v to d for the test.
func shorten(t *testing.T, v *time.Duration, d time.Duration) {
	old := *v
	*v = d
	t.Cleanup(func() { *v = old })
}

// within runs f and fails the test if it takes longer than limit (the
// code before the fix waited forever).
func within[T any](t *testing.T, limit time.Duration, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(limit):
		t.Fatalf("still waiting after %v", limit)
		panic("unreachable")
	}
}

func isTimeout(err error) bool { var e *TimeoutError; return errors.As(err, &e) }
func isLimit(err error) bool   { var e *LimitError; return errors.As(err, &e) }

// A sender that offers, is accepted and then sends nothing (or stops
// half-way) is canceled after the idle timeout: the partial file is
// removed and both sides hear why.
func TestStalledSenderTimesOut(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream []byte
	}{
		{"nothing after accept", nil},
		{"stops mid-file", frames(dataMsg("abc"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckNoLeaks(t)
			dir := t.TempDir()
			a, b := tcpPair(t)
			said := stallingSender(a, frames(fileOffer("x", 6)), tc.stream)
			in, err := ReadOffer(context.Background(), b)
			if err != nil {
				t.Fatal(err)
			}
			in.Limits.IdleTimeout = 200 * time.Millisecond
			err = within(t, 5*time.Second, func() error { _, err := in.Accept(context.Background(), dir, nil); return err })
			if !isTimeout(err) || !strings.Contains(err.Error(), "nothing received for 200ms") {
				t.Fatalf("Accept: %v, want a timeout", err)
			}
			if got := <-said; len(got) == 0 || !isCancel(got[len(got)-1]) || got[len(got)-1].(cancelMsg).Reason != "nothing received for 200ms" {
				t.Fatalf("the sender got %+v, want a CANCEL saying why", got)
			}
			assertOnly(t, dir)
		})
	}
}

// stallingSender writes offer, then stream once accepted, and then
// nothing, without closing, until the receiver cancels; it returns what
// the receiver said.
func stallingSender(c net.Conn, offer, stream []byte) <-chan []message {
	said := make(chan []message, 1)
	go func() {
		var got []message
		defer func() { c.Close(); said <- got }()
		c.Write(offer)
		r := bufio.NewReader(c)
		buf := make([]byte, maxData)
		for {
			m, err := readMessage(r, buf)
			if err != nil {
				return
			}
			got = append(got, m)
			switch m.(type) {
			case acceptMsg:
				c.Write(stream)
			case cancelMsg, refuseMsg:
				return
			}
		}
	}()
	return said
}

// A subchannel on which no offer ever comes is closed after offerTimeout,
// with the peer told.
func TestNoOfferTimesOut(t *testing.T) {
	testkit.CheckNoLeaks(t)
	shorten(t, &offerTimeout, 200*time.Millisecond)
	a, b := tcpPair(t)
	said := stallingSender(a, nil, nil)
	err := within(t, 5*time.Second, func() error { _, err := ReadOffer(context.Background(), b); return err })
	if !isTimeout(err) {
		t.Fatalf("ReadOffer: %v, want a timeout", err)
	}
	if got := <-said; len(got) != 1 || !isCancel(got[0]) {
		t.Fatalf("the peer got %+v, want a CANCEL", got)
	}
}

// A receiver that never answers the offer: Send gives up after
// answerTimeout and tells it.
func TestUnansweredOfferTimesOut(t *testing.T) {
	testkit.CheckNoLeaks(t)
	shorten(t, &answerTimeout, 200*time.Millisecond)
	path := filepath.Join(t.TempDir(), "x")
	writeFile(t, path, 10)
	a, b := tcpPair(t)
	got := make(chan []message, 1)
	go func() { got <- readAll(b) }()
	err := within(t, 5*time.Second, func() error { return Send(context.Background(), a, path, nil) })
	if !isTimeout(err) || !strings.Contains(err.Error(), "no answer to the offer within 200ms") {
		t.Fatalf("Send: %v, want a timeout", err)
	}
	if msgs := <-got; len(msgs) != 2 || !isCancel(msgs[1]) {
		t.Fatalf("the receiver got %+v, want the offer and a CANCEL", msgs)
	}
}

// readAll reads messages until the peer closes, answering nothing.
func readAll(c net.Conn) []message {
	defer c.Close()
	var got []message
	r := bufio.NewReader(c)
	buf := make([]byte, maxData)
	for {
		m, err := readMessage(r, buf)
		if err != nil {
			return got
		}
		got = append(got, m)
	}
}

// A receiver that accepts and then stops reading would block the sender's
// write for good: after the idle timeout Send ends and closes.
func TestReceiverThatStopsReadingTimesOut(t *testing.T) {
	testkit.CheckNoLeaks(t)
	shorten(t, &idleTimeout, 300*time.Millisecond)
	path := filepath.Join(t.TempDir(), "big")
	f, _ := os.Create(path)
	f.Truncate(256 << 20) // far more than the socket buffers hold
	f.Close()
	a, b := tcpPair(t)
	go func() {
		r := bufio.NewReader(b)
		readMessage(r, make([]byte, maxData)) // the offer
		b.Write(frames(acceptMsg{}))
		// and read nothing more until Send has given up
	}()
	err := within(t, 5*time.Second, func() error { return Send(context.Background(), a, path, nil) })
	if !isTimeout(err) || !strings.Contains(err.Error(), "the peer read nothing for 300ms") {
		t.Fatalf("Send: %v, want a timeout", err)
	}
	b.Close()
}

// fakeSpace reports a file system with free bytes and inodes.
func fakeSpace(free, total, freeFiles, files int64) func(string) (Space, bool, error) {
	return func(string) (Space, bool, error) {
		return Space{Free: free, Total: total, FreeFiles: freeFiles, Files: files}, true, nil
	}
}

func TestFits(t *testing.T) {
	const gib = 1 << 30
	big := Limits{MaxSize: 100 * gib, MaxEntries: 1000}
	tests := []struct {
		name     string
		offer    Offer
		limits   Limits
		space    func(string) (Space, bool, error)
		reserved int64
		want     string // "" fits; else part of the reason
	}{
		{"fits", Offer{Size: gib, Files: 1}, big, fakeSpace(10*gib, 100*gib, 100, 1000), 0, ""},
		{"over the per-offer cap", Offer{Size: 2 * gib, Files: 1}, Limits{MaxSize: gib}, fakeSpace(10*gib, 100*gib, 100, 1000), 0,
			"too large: 2.0 GiB, the limit is 1.0 GiB"},
		{"too many entries", Offer{Size: 0, Files: 900, Dirs: 200}, big, fakeSpace(10*gib, 100*gib, 1e6, 1e6), 0,
			"too many files: 1100, the limit is 1000"},
		{"not enough room", Offer{Size: 9 * gib, Files: 1}, big, fakeSpace(9*gib, 100*gib, 100, 1000), 0,
			"not enough room: needs 9.0 GiB, 9.0 GiB free (1.0 GiB is kept free)"},
		{"room taken by other transfers", Offer{Size: 5 * gib, Files: 1}, big, fakeSpace(10*gib, 100*gib, 100, 1000), 5 * gib,
			"not enough room: needs 5.0 GiB, 5.0 GiB free"},
		{"a small disk keeps 5%", Offer{Size: 96 << 20, Files: 1}, big, fakeSpace(100<<20, 100<<20, 100, 1000), 0,
			"not enough room: needs 96 MiB, 100 MiB free (5.0 MiB is kept free)"},
		{"a small disk, a small file", Offer{Size: 90 << 20, Files: 1}, big, fakeSpace(100<<20, 100<<20, 100, 1000), 0, ""},
		{"no inodes", Offer{Files: 50, Dirs: 50}, big, fakeSpace(10*gib, 100*gib, 10, 1000), 0, "not enough room: needs 101 files, 10 free"},
		{"inodes not counted", Offer{Files: 50, Dirs: 50}, big, fakeSpace(10*gib, 100*gib, 0, 0), 0, ""},
		{"no limits, huge", Offer{Size: 1 << 62, Files: 1}, Limits{}, fakeSpace(10*gib, 100*gib, 100, 1000), 0, "not enough room"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &Incoming{Offer: tt.offer, Limits: tt.limits, space: tt.space}
			err := in.Fits(t.TempDir(), tt.reserved)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Fits: %v", err)
			case tt.want != "" && (!isLimit(err) || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Fits: %v, want a *LimitError saying %q", err, tt.want)
			}
		})
	}
	// The real disk answers too.
	in := &Incoming{Offer: Offer{Size: 1 << 62, Files: 1}, space: diskSpace}
	if err := in.Fits(t.TempDir(), 0); !isLimit(err) {
		t.Fatalf("an offer of 4 EiB fits the disk: %v", err)
	}
}

// The free space is checked again as data arrives: another writer
// filling the disk stops the transfer before the disk is full.
func TestRoomRunsOutWhileReceiving(t *testing.T) {
	testkit.CheckNoLeaks(t)
	const size = roomCheckInterval + 1<<20
	src := filepath.Join(t.TempDir(), "big")
	f, _ := os.Create(src)
	f.Truncate(size)
	f.Close()
	var checks atomic.Int32
	dir := t.TempDir()
	r := transfer(t, src, dir, transferOpts{answer: func(in *Incoming, dir string) (string, error) {
		in.space = func(string) (Space, bool, error) {
			checks.Add(1)
			return Space{Free: 1 << 20, Total: 1 << 40}, true, nil // someone else filled it
		}
		return in.Accept(context.Background(), dir, nil)
	}})
	if !isLimit(r.recvErr) || !strings.Contains(r.recvErr.Error(), "not enough room left: needs") {
		t.Fatalf("receive: %v, want a *LimitError", r.recvErr)
	}
	if !isPeerCancel(r.sendErr) || !strings.Contains(r.sendErr.Error(), "not enough room left") {
		t.Fatalf("send: %v, want canceled by the peer, saying why", r.sendErr)
	}
	if checks.Load() == 0 {
		t.Fatal("the free space was not checked")
	}
	assertOnly(t, dir)
}

// Partials left by a gander that was killed are removed (and listed);
// those of a running gander, and unrelated files, are left alone.
func TestRemoveStalePartials(t *testing.T) {
	dir := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := strconv.Itoa(dead.Process.Pid)
	live := partialName("live.bin", partialSuffix())                                    // ours, running
	reused := ".reused.bin.gander-partial-" + strconv.Itoa(os.Getpid()) + "-1-0badf00d" // our pid, another start
	stale := ".stale.bin.gander-partial-" + deadPID + "-12345-deadbeef"
	staleDir := ".photos.gander-partial-" + deadPID + "-12345-0000cafe"
	legacy := ".old.bin.gander-partial-0123abcd"
	for _, name := range []string{live, reused, stale, "notes.txt", ".gander-partial-notes", legacy} {
		os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o644)
	}
	os.MkdirAll(filepath.Join(dir, staleDir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, staleDir, "sub", "f"), []byte("x"), 0o644)

	found, err := RemoveStalePartials(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantRemoved := []string{staleDir, reused, stale} // directory order: sorted
	if !slices.Equal(found.Removed, wantRemoved) || !slices.Equal(found.Unknown, []string{legacy}) {
		t.Fatalf("found %+v, want removed %q and unknown %q", found, wantRemoved, legacy)
	}
	assertOnly(t, dir, live, "notes.txt", ".gander-partial-notes", legacy)
}

// A transfer's partial name says which process writes it.
func TestPartialNameNamesItsProcess(t *testing.T) {
	name := partialName("a.txt", partialSuffix())
	m := partialPattern.FindStringSubmatch(name)
	if m == nil || m[1] != strconv.Itoa(os.Getpid()) || !processRuns(os.Getpid(), m[2]) {
		t.Fatalf("partial name %q does not name this process", name)
	}
}
